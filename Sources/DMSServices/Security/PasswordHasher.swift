import Crypto
import CryptoExtras
import Foundation
import Synchronization

/// Hashes and verifies operators' passwords with scrypt (memory-hard), the parameters
/// stored with each hash so they can be raised later: a hash made with smaller ones is
/// re-made at the next successful login (`needsUpgrade`).
///
/// One derivation takes about 0.24 s of CPU and 128 MiB (N = 2^17, r = 8, p = 1), so
/// hashing runs on `maxConcurrent` threads of its own, never on the NIO event loops nor
/// on Swift concurrency's cooperative pool, and the others wait their turn (memory
/// stays bounded under a burst of logins). Not on a Dispatch queue either: on Linux the
/// cooperative pool runs on Dispatch's global threads, and a derivation there stalls
/// every task of the server (measured: a 5 ms sleep woke after 3.3 s).
public final class PasswordHasher: Sendable {
  /// scrypt's cost parameters.
  public struct Parameters: Sendable, Hashable, CustomStringConvertible {
    /// log2 of N, the CPU and memory cost.
    public var logN: Int
    /// The block size r.
    public var blockSize: Int
    /// The parallelism p.
    public var parallelism: Int

    /// N = 2^17, r = 8, p = 1: the floor (OWASP's scrypt recommendation).
    public static let standard = Parameters(logN: 17, blockSize: 8, parallelism: 1)

    public init(logN: Int, blockSize: Int, parallelism: Int) {
      self.logN = logN
      self.blockSize = blockSize
      self.parallelism = parallelism
    }

    public var description: String { "ln=\(logN),r=\(blockSize),p=\(parallelism)" }

    /// Whether these are at least as strong as `other` in every parameter.
    public func isAtLeast(_ other: Parameters) -> Bool {
      logN >= other.logN && blockSize >= other.blockSize && parallelism >= other.parallelism
    }
  }

  /// A stored hash: `$scrypt$ln=17,r=8,p=1$<salt>$<hash>` (PHC string format, base64
  /// without padding).
  public struct Hash: Sendable, Hashable, CustomStringConvertible {
    public let parameters: Parameters
    let salt: [UInt8]
    let digest: [UInt8]

    /// The stored form.
    public var encoded: String {
      "$scrypt$\(parameters)$\(Self.base64(salt))$\(Self.base64(digest))"
    }

    /// Never the digest: a hash in a log is still an offline-guessing target.
    public var description: String { "scrypt(\(parameters))" }

    /// Parses a stored hash; nil when it is not one this build can read.
    public init?(encoded: String) {
      let parts = encoded.split(separator: "$", omittingEmptySubsequences: false)
      guard parts.count == 5, parts[0].isEmpty, parts[1] == "scrypt" else { return nil }
      var values: [String: Int] = [:]
      for pair in parts[2].split(separator: ",") {
        let kv = pair.split(separator: "=", maxSplits: 1)
        guard kv.count == 2, let value = Int(kv[1]) else { return nil }
        values[String(kv[0])] = value
      }
      guard let logN = values["ln"], let r = values["r"], let p = values["p"], (1...30).contains(logN), r > 0, p > 0,
        let salt = Self.unbase64(parts[3]), let digest = Self.unbase64(parts[4]), !salt.isEmpty, digest.count >= 16
      else { return nil }
      self.init(parameters: Parameters(logN: logN, blockSize: r, parallelism: p), salt: salt, digest: digest)
    }

    init(parameters: Parameters, salt: [UInt8], digest: [UInt8]) {
      self.parameters = parameters
      self.salt = salt
      self.digest = digest
    }

    static func base64(_ bytes: [UInt8]) -> String {
      var text = Data(bytes).base64EncodedString()
      while text.last == "=" { text.removeLast() }
      return text
    }

    static func unbase64(_ text: Substring) -> [UInt8]? {
      var padded = String(text)
      while padded.count % 4 != 0 { padded += "=" }
      return Data(base64Encoded: padded).map { [UInt8]($0) }
    }
  }

  /// The parameters new hashes get.
  public let parameters: Parameters
  let workers: HashingThreads
  /// Derivations run so far (tests: a sign-in with an unknown login runs one too).
  let derivations = Atomic<Int>(0)

  /// A hasher making hashes with `parameters`, at most `maxConcurrent` at a time.
  public init(parameters: Parameters = .standard, maxConcurrent: Int = 2) {
    self.parameters = parameters
    self.workers = HashingThreads(count: max(1, maxConcurrent))
  }

  /// A new hash of `password`, with a random 16-byte salt.
  public func hash(_ password: String) async throws -> Hash {
    var salt = [UInt8](repeating: 0, count: 16)
    var generator = SystemRandomNumberGenerator()
    for index in salt.indices { salt[index] = generator.next() }
    let parameters = self.parameters
    let digest = try await derive(password, salt: salt, parameters: parameters)
    return Hash(parameters: parameters, salt: salt, digest: digest)
  }

  /// Whether `password` matches `hash` (compared in constant time).
  public func verify(_ password: String, against hash: Hash) async throws -> Bool {
    let digest = try await derive(password, salt: hash.salt, parameters: hash.parameters, length: hash.digest.count)
    return Self.constantTimeEqual(digest, hash.digest)
  }

  /// Whether `hash` was made with weaker parameters than new hashes get.
  public func needsUpgrade(_ hash: Hash) -> Bool {
    !hash.parameters.isAtLeast(parameters)
  }

  /// scrypt on the hashing threads.
  func derive(_ password: String, salt: [UInt8], parameters: Parameters, length: Int = 32) async throws -> [UInt8] {
    derivations.add(1, ordering: .relaxed)
    return try await withCheckedThrowingContinuation { continuation in
      workers.submit {
        continuation.resume(
          with: Result {
            try Self.scrypt(password, salt: salt, parameters: parameters, length: length)
          })
      }
    }
  }

  /// Runs `body` on a hashing thread, as a derivation runs (tests check where).
  func onHashingThread<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
      workers.submit { continuation.resume(returning: body()) }
    }
  }

  /// The derivation itself, synchronously (RFC 7914).
  static func scrypt(_ password: String, salt: [UInt8], parameters: Parameters, length: Int) throws -> [UInt8] {
    let key = try KDF.Scrypt.deriveKey(
      from: Array(password.utf8), salt: salt, outputByteCount: length, rounds: 1 << parameters.logN,
      blockSize: parameters.blockSize, parallelism: parameters.parallelism)
    return key.withUnsafeBytes { Array($0) }
  }

  /// Whether `a` and `b` hold the same bytes, in time that does not depend on where
  /// they differ (digests, secrets' hashes, one-time codes).
  static func constantTimeEqual(_ a: some Collection<UInt8>, _ b: some Collection<UInt8>) -> Bool {
    guard a.count == b.count else { return false }
    var difference: UInt8 = 0
    for (x, y) in zip(a, b) { difference |= x ^ y }
    return difference == 0
  }
}

/// A few threads of their own that run jobs in order of submission. They end once the
/// hasher holding them is gone and the jobs already submitted are done (a process that
/// makes many hashers, as the tests do, kept two idle threads for each: 1,200 at once).
final class HashingThreads: Sendable {
  private let jobs = JobQueue()

  init(count: Int) {
    for index in 0..<count {
      let thread = Thread { [jobs] in
        Thread.current.threadDictionary[Self.marker] = true
        jobs.threadStarted()
        while let job = jobs.next() { job() }
        jobs.threadEnded()
      }
      thread.name = "dms-password-hashing-\(index)"
      thread.start()
    }
  }

  deinit { jobs.close() }

  /// Set in each hashing thread's dictionary.
  static let marker = "dms.password-hashing"

  /// Whether the calling thread is one of the hashing threads.
  static var isHashingThread: Bool { Thread.current.threadDictionary[marker] as? Bool == true }

  func submit(_ job: @escaping @Sendable () -> Void) {
    jobs.append(job)
  }

  /// How many of these threads are running (tests: they end with their owner). A
  /// closure, so that it can be read after this object is gone.
  var runningThreads: @Sendable () -> Int { { [jobs] in jobs.running } }

  /// Jobs waiting for a thread.
  // NSCondition guards `pending`, `closed` and `running`: every access holds its lock.
  private final class JobQueue: @unchecked Sendable {
    private let condition = NSCondition()
    private var pending: [@Sendable () -> Void] = []
    private var closed = false
    private var started = 0

    func append(_ job: @escaping @Sendable () -> Void) {
      condition.lock()
      pending.append(job)
      condition.signal()
      condition.unlock()
    }

    /// The next job; nil once closed and nothing is left.
    func next() -> (@Sendable () -> Void)? {
      condition.lock()
      defer { condition.unlock() }
      while pending.isEmpty && !closed { condition.wait() }
      return pending.isEmpty ? nil : pending.removeFirst()
    }

    /// No more jobs will come: the threads end when the queue is empty.
    func close() {
      condition.lock()
      closed = true
      condition.broadcast()
      condition.unlock()
    }

    func threadStarted() {
      condition.lock()
      started += 1
      condition.unlock()
    }

    func threadEnded() {
      condition.lock()
      started -= 1
      condition.unlock()
    }

    var running: Int {
      condition.lock()
      defer { condition.unlock() }
      return started
    }
  }
}
