import DMSDomain
import Foundation
import Synchronization
import Testing

@testable import DMSServices

/// Operators' passwords: the policy, and scrypt hashes with their parameters stored.
@Suite("Passwords: policy and hashing")
struct PasswordTests {
  @Test("scrypt is RFC 7914's: the test vector of section 12 (N=1024, r=8, p=16)")
  func rfc7914Vector() throws {
    let digest = try PasswordHasher.scrypt(
      "password", salt: Array("NaCl".utf8), parameters: .init(logN: 10, blockSize: 8, parallelism: 16), length: 64)
    #expect(
      digest.map { String(format: "%02x", $0) }.joined()
        == "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b3731622eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640"
    )
  }

  @Test("a hash verifies its password and no other; its stored form carries the parameters, never the password")
  func hashAndVerify() async throws {
    // Small parameters keep the test fast; the stored form is what matters here.
    let hasher = PasswordHasher(parameters: .init(logN: 10, blockSize: 8, parallelism: 1))
    let hash = try await hasher.hash("correct horse battery staple")
    #expect(hash.encoded.hasPrefix("$scrypt$ln=10,r=8,p=1$"))
    #expect(!hash.encoded.contains("horse"))
    #expect(hash.description == "scrypt(ln=10,r=8,p=1)")
    let stored = try #require(PasswordHasher.Hash(encoded: hash.encoded))
    #expect(stored == hash)
    #expect(try await hasher.verify("correct horse battery staple", against: stored))
    #expect(try await !hasher.verify("correct horse battery stapler", against: stored))
    // The same password hashes differently each time (a random salt).
    #expect(try await hasher.hash("correct horse battery staple").encoded != hash.encoded)
  }

  @Test("a hash made with weaker parameters is upgraded at the next login; a stronger one is kept")
  func upgrade() async throws {
    let old = try await PasswordHasher(parameters: .init(logN: 10, blockSize: 8, parallelism: 1)).hash("pw-old-one")
    let current = PasswordHasher(parameters: .init(logN: 11, blockSize: 8, parallelism: 1))
    #expect(current.needsUpgrade(old))
    #expect(try await current.verify("pw-old-one", against: old), "old hashes still verify")
    #expect(!current.needsUpgrade(try await current.hash("pw-new-one")))
    #expect(PasswordHasher.Parameters.standard == .init(logN: 17, blockSize: 8, parallelism: 1))
  }

  @Test(
    "stored forms this build cannot read are refused, not guessed",
    arguments: [
      "", "plain", "$bcrypt$x$y$z", "$scrypt$ln=17,r=8$c2FsdA$ZGlnZXN0ZGlnZXN0ZGlnZXN0",
      "$scrypt$ln=99,r=8,p=1$c2FsdA$x",
      "$scrypt$ln=17,r=8,p=1$$ZGlnZXN0ZGlnZXN0ZGlnZXN0",
    ])
  func unreadable(encoded: String) {
    #expect(PasswordHasher.Hash(encoded: encoded) == nil)
  }

  @Test("hashing runs on threads of its own, at most maxConcurrent at once, not on the cooperative pool")
  func ownThreads() async throws {
    let hasher = PasswordHasher(parameters: .init(logN: 10, blockSize: 8, parallelism: 1), maxConcurrent: 2)
    // On Linux the cooperative pool is Dispatch's: a derivation there stalls every task.
    let places = await withTaskGroup(of: Bool.self) { group in
      for _ in 0..<8 { group.addTask { await hasher.onHashingThread { HashingThreads.isHashingThread } } }
      return await group.reduce(into: [Bool]()) { $0.append($1) }
    }
    #expect(places == Array(repeating: true, count: 8))
    #expect(!HashingThreads.isHashingThread, "the test itself runs elsewhere")
    // At most two at once, however many are asked for.
    let running = Running()
    await withTaskGroup(of: Void.self) { group in
      for _ in 0..<8 {
        group.addTask {
          await hasher.onHashingThread {
            running.state.withLock {
              $0.now += 1; $0.most = max($0.most, $0.now)
            }
            Thread.sleep(forTimeInterval: 0.02)
            running.state.withLock { $0.now -= 1 }
          }
        }
      }
    }
    #expect(running.state.withLock { $0.most } == 2)
  }

  @Test("a hasher's threads end once the hasher is gone, after the work it was given")
  func threadsEndWithTheHasher() async throws {
    var hasher: PasswordHasher? = PasswordHasher(parameters: .init(logN: 10, blockSize: 8, parallelism: 1))
    let running = try #require(hasher).workers.runningThreads
    _ = try await hasher?.hash("a password")
    try await eventually { running() == 2 }
    // Given a job and dropped at once: the job still runs, then the threads end.
    let ran = Mutex(false)
    hasher?.workers.submit {
      Thread.sleep(forTimeInterval: 0.2)
      ran.withLock { $0 = true }
    }
    hasher = nil
    try await eventually { running() == 0 }
    #expect(ran.withLock { $0 })
  }

  @Test(
    "the password policy names what to change",
    arguments: [
      ("short", "admin", ["must be at least 12 characters (has 5)"]),
      ("my-admin-password-2026", "Admin", ["must not contain the login"]),
      ("aaaaaaaaaaaaaaaa", "bob", ["must not be one character repeated"]),
      ("correct horse battery staple", "admin", []),
    ])
  func policy(password: String, login: String, expected: [String]) {
    let found = PasswordPolicy().violations(of: password, login: login)
    #expect(found.map(\.message).map { $0.components(separatedBy: ";")[0] } == expected)
    #expect(found.allSatisfy { $0.rule == PasswordPolicy.rule && $0.field == "password" })
    #expect(!found.contains { $0.message.contains(password) })
  }
}

/// How many jobs run at once, and the most seen.
private final class Running: Sendable {
  let state = Mutex((now: 0, most: 0))
}
