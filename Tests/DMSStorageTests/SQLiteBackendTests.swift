import Crypto
import DMSDomain
import DMSStorage
import Foundation
import GRDB
import Testing

extension Backend {
  /// SQLite in a fresh temporary folder.
  static let sqlite = Backend(name: "SQLite") {
    let path = temporaryDatabasePath()
    let box = SecretBox(key: testKey)
    return (try SQLiteSettingsStore(path: path, secrets: box), { try SQLiteSettingsStore(path: path, secrets: box) })
  }
}

let testKey = SymmetricKey(size: .bits256)

func temporaryDatabasePath() -> String {
  let folder = FileManager.default.temporaryDirectory.appendingPathComponent("dms-store-\(UUID().uuidString)")
  try? FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
  return folder.appendingPathComponent("settings.sqlite").path
}

@Suite("SQLite backend")
struct SQLiteBackendTests {
  @Test("secrets at rest: the database files hold no plaintext secret")
  func noPlaintextOnDisk() async throws {
    let path = temporaryDatabasePath()
    let store = try SQLiteSettingsStore(path: path, secrets: SecretBox(key: testKey))
    let secret = "Sup3r-Secret-Passw0rd-\(UUID().uuidString)"
    _ = try await store.createCompany(
      code: "SEC", document: company("SEC"), secrets: [Company.Secret.operatorPassword.rawValue: .set(secret)])
    let folder = (path as NSString).deletingLastPathComponent
    var scanned = 0
    for name in try FileManager.default.contentsOfDirectory(atPath: folder) {
      let data = try Data(contentsOf: URL(fileURLWithPath: folder).appendingPathComponent(name))
      scanned += data.count
      #expect(data.range(of: Data(secret.utf8)) == nil, "plaintext found in \(name)")
    }
    #expect(scanned > 0)
    #expect(
      try await store.scoped(to: try #require(await store.company(code: "SEC"))).revealSecret(
        Company.self, field: Company.Secret.operatorPassword.rawValue) == secret)
  }

  @Test("a ciphertext copied to another company or field does not decrypt")
  func boundCiphertexts() async throws {
    let path = temporaryDatabasePath()
    let store = try SQLiteSettingsStore(path: path, secrets: SecretBox(key: testKey))
    let field = Company.Secret.operatorPassword.rawValue
    let (a, _) = try await store.createCompany(code: "A", document: company("A"), secrets: [field: .set("a-secret")])
    let (b, _) = try await store.createCompany(code: "B", document: company("B"), secrets: [:])
    let queue = try DatabaseQueue(path: path)
    try await queue.write { db in
      try db.execute(
        sql: """
          INSERT INTO company_secret (company_id, area, field, ciphertext)
          SELECT ?, area, field, ciphertext FROM company_secret WHERE company_id = ?;
          INSERT INTO company_secret (company_id, area, field, ciphertext)
          SELECT company_id, area, ?, ciphertext FROM company_secret WHERE company_id = ? AND field = ?;
          """,
        arguments: [b.id, a.id, Company.Secret.ksefToken.rawValue, a.id, field])
    }
    try await queue.close()
    await #expect {
      _ = try await store.scoped(to: b).revealSecret(Company.self, field: field)
    } throws: { error in
      (error as? StoreError)?.kind == .secretUnreadable
    }
    await #expect {
      _ = try await store.scoped(to: a).revealSecret(Company.self, field: Company.Secret.ksefToken.rawValue)
    } throws: { error in
      (error as? StoreError)?.kind == .secretUnreadable
    }
    #expect(try await store.scoped(to: a).revealSecret(Company.self, field: field) == "a-secret")
  }

  @Test("a wrong master key cannot read the secrets")
  func wrongKey() async throws {
    let path = temporaryDatabasePath()
    let store = try SQLiteSettingsStore(path: path, secrets: SecretBox(key: testKey))
    let field = Company.Secret.operatorPassword.rawValue
    let (a, _) = try await store.createCompany(code: "A", document: company("A"), secrets: [field: .set("x")])
    let other = try SQLiteSettingsStore(path: path, secrets: SecretBox(key: SymmetricKey(size: .bits256)))
    await #expect(throws: StoreError.self) {
      _ = try await other.scoped(to: a).revealSecret(Company.self, field: field)
    }
  }

  @Test("the database runs in WAL mode with synchronous=FULL; migrations are idempotent")
  func durabilitySettings() async throws {
    let path = temporaryDatabasePath()
    _ = try SQLiteSettingsStore(path: path, secrets: SecretBox(key: testKey))
    _ = try SQLiteSettingsStore(path: path, secrets: SecretBox(key: testKey))  // migrations again: no-op
    let pool = try DatabasePool(path: path)
    let mode = try await pool.read { db in try String.fetchOne(db, sql: "PRAGMA journal_mode") }
    #expect(mode == "wal")
    let migrations = try await pool.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM grdb_migrations") }
    #expect(migrations == 1)
    let store = try SQLiteSettingsStore(path: path, secrets: SecretBox(key: testKey))
    let synchronous = try await store.synchronousMode()
    #expect(synchronous == 2, "FULL")
  }

  @Test("the master key file is created with mode 0600, then read back; a bad one is refused")
  func masterKeyFile() throws {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("dms-key-\(UUID().uuidString)")
    let path = folder.appendingPathComponent("master.key").path
    let (created, source) = try MasterKey.load(base64: nil, path: path)
    #expect(source == .createdFile(path))
    let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber
    #expect(mode?.intValue == 0o600)
    let (loaded, again) = try MasterKey.load(base64: nil, path: path)
    #expect(again == .existingFile(path))
    #expect(created == loaded)
    try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: path)
    #expect(throws: MasterKeyError.self) { _ = try MasterKey.load(base64: nil, path: path) }
    #expect(throws: MasterKeyError.self) { _ = try MasterKey.load(base64: "too-short", path: path) }
    let fromEnvironment = Data(repeating: 1, count: 32).base64EncodedString()
    #expect(try MasterKey.load(base64: fromEnvironment, path: path).1 == .environment)
  }
}
