import Crypto
import DMSDomain
import Foundation
import GRDB
import Synchronization
import Testing

@testable import DMSStorage

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
    let (key, _) = try await store.create(
      "SEC", company("SEC"), secrets: [Company.Secret.operatorPassword.rawValue: .set(secret)])
    let folder = (path as NSString).deletingLastPathComponent
    var scanned = 0
    for name in try FileManager.default.contentsOfDirectory(atPath: folder) {
      let data = try Data(contentsOf: URL(fileURLWithPath: folder).appendingPathComponent(name))
      scanned += data.count
      #expect(data.range(of: Data(secret.utf8)) == nil, "plaintext found in \(name)")
    }
    #expect(scanned > 0)
    #expect(try await store.reveal(Company.self, Company.Secret.operatorPassword.rawValue, of: key) == secret)
  }

  @Test("a ciphertext copied to another company or field does not decrypt")
  func boundCiphertexts() async throws {
    let path = temporaryDatabasePath()
    let store = try SQLiteSettingsStore(path: path, secrets: SecretBox(key: testKey))
    let field = Company.Secret.operatorPassword.rawValue
    let (a, _) = try await store.create("A", company("A"), secrets: [field: .set("a-secret")])
    let (b, _) = try await store.create("B", company("B"))
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
      _ = try await store.reveal(Company.self, field, of: b)
    } throws: { error in
      (error as? StoreError)?.kind == .secretUnreadable
    }
    await #expect {
      _ = try await store.reveal(Company.self, Company.Secret.ksefToken.rawValue, of: a)
    } throws: { error in
      (error as? StoreError)?.kind == .secretUnreadable
    }
    #expect(try await store.reveal(Company.self, field, of: a) == "a-secret")
  }

  @Test("a wrong master key cannot read the secrets, and verifyMasterKey says so (nothing stored: nothing to check)")
  func wrongKey() async throws {
    let path = temporaryDatabasePath()
    let store = try SQLiteSettingsStore(path: path, secrets: SecretBox(key: testKey))
    let field = Company.Secret.operatorPassword.rawValue
    let (a, _) = try await store.create("A", company("A"), secrets: [field: .set("x")])
    let other = try SQLiteSettingsStore(path: path, secrets: SecretBox(key: SymmetricKey(size: .bits256)))
    await #expect(throws: StoreError.self) {
      _ = try await other.reveal(Company.self, field, of: a)
    }
    // Said before it serves: the check at start-up.
    try await store.verifyMasterKey()
    await #expect(throws: DatabaseStore.MasterKeyMismatch.self) { try await other.verifyMasterKey() }
    let empty = try SQLiteSettingsStore(
      path: temporaryDatabasePath(), secrets: SecretBox(key: SymmetricKey(size: .bits256)))
    try await empty.verifyMasterKey()
  }

  @Test("the database runs in WAL mode with synchronous=FULL; migrations are idempotent")
  func durabilitySettings() async throws {
    let path = temporaryDatabasePath()
    _ = try SQLiteSettingsStore(path: path, secrets: SecretBox(key: testKey))
    _ = try SQLiteSettingsStore(path: path, secrets: SecretBox(key: testKey))  // migrations again: no-op
    let pool = try DatabasePool(path: path)
    let mode = try await pool.read { db in try String.fetchOne(db, sql: "PRAGMA journal_mode") }
    #expect(mode == "wal")
    let migrations = try await pool.read { db in try String.fetchAll(db, sql: "SELECT identifier FROM grdb_migrations")
    }
    #expect(migrations.count == 8, "\(migrations)")
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

  // MARK: Database failures

  @Test("another process holding the lock past the busy timeout: busy (UNAVAILABLE), nothing half-written")
  func busy() async throws {
    let path = temporaryDatabasePath()
    var options = SQLiteSettingsStore.Options()
    options.busyTimeout = .milliseconds(100)
    let store = try SQLiteSettingsStore(path: path, secrets: SecretBox(key: testKey), options: options)
    let (key, _) = try await store.create("BUSY", company("BUSY"))
    // Another process's connection holds the write lock until told to let go.
    let other = try DatabaseQueue(path: path)
    let (locked, lockedSignal) = AsyncStream.makeStream(of: Void.self)
    let release = DispatchSemaphore(value: 0)
    async let holder: Void = other.writeWithoutTransaction { db in
      try db.execute(sql: "BEGIN EXCLUSIVE")
      lockedSignal.yield()
      release.wait()
      try db.execute(sql: "ROLLBACK")
    }
    for await _ in locked { break }
    await #expect {
      _ = try await store.write(company("BUSY", name: "x"), to: key, expectedRevision: 1)
    } throws: { error in
      let error = error as? StoreError
      return error?.kind == .busy && error?.message.contains("SQLite result code 5") == true
    }
    release.signal()
    try await holder
    try await other.close()
    #expect(await store.isHealthy())
    #expect(try await store.write(company("BUSY", name: "y"), to: key, expectedRevision: 1).revision == 2)
  }

  @Test("a full disk: full (RESOURCE_EXHAUSTED); the batch keeps nothing; the store works again after")
  func full() async throws {
    let path = temporaryDatabasePath()
    let store = try SQLiteSettingsStore(path: path, secrets: SecretBox(key: testKey))
    let (key, _) = try await store.create("FULL", company("FULL"))
    // The database's size limit stands in for the disk: the same SQLITE_FULL.
    let pages = try #require(try await store.pragma("page_count"))
    _ = try await store.pragma("max_page_count = \(pages)")
    let big = String(repeating: "x", count: 64 * 1024)
    await #expect {
      _ = try await store.write(CompanyCenters(centers: [big]), to: key, expectedRevision: 0)
    } throws: { error in
      (error as? StoreError)?.kind == .full
    }
    #expect(try await store.read(CompanyCenters.self, of: key) == nil)
    _ = try await store.pragma("max_page_count = 1073741823")
    #expect(try await store.write(CompanyCenters(centers: [big]), to: key, expectedRevision: 0).revision == 1)
  }

  @Test("a damaged file: corrupt (DATA_LOSS), reported once, and the store is no longer healthy")
  func corrupt() async throws {
    let path = temporaryDatabasePath()
    weak var first: SQLiteSettingsStore?
    do {
      let store = try SQLiteSettingsStore(path: path, secrets: SecretBox(key: testKey))
      first = store
      for index in 0..<50 { _ = try await store.create("K\(index)", company("K\(index)")) }
    }
    // Its connections close when it goes, with a checkpoint that would write the page
    // damaged below again (on a loaded machine its last writer may still hold it).
    for _ in 0..<500 where first != nil { try await Task.sleep(for: .milliseconds(10)) }
    try #require(first == nil)
    // Overwrite the documents' table (its root page) with garbage; the rest stays. Its
    // pages are first moved from the WAL into the file: a newer copy of the page left
    // in the WAL (the first store's last connection may have closed without its final
    // checkpoint) would hide the damage.
    let queue = try DatabaseQueue(path: path)
    _ = try await queue.writeWithoutTransaction { db in try db.checkpoint(.truncate) }
    let root = try #require(
      try await queue.read { db in
        try Int.fetchOne(db, sql: "SELECT rootpage FROM sqlite_master WHERE name = 'company_document'")
      })
    try await queue.close()
    let handle = try FileHandle(forUpdating: URL(fileURLWithPath: path))
    try handle.seek(toOffset: UInt64((root - 1) * 4096))
    try handle.write(contentsOf: Data((0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }))
    try handle.close()
    let reported = Counter()
    var options = SQLiteSettingsStore.Options()
    options.onCorruption = { reported.add() }
    let store = try SQLiteSettingsStore(path: path, secrets: SecretBox(key: testKey), options: options)
    await #expect {
      _ = try await store.registry.documentOfEveryCompany(Company.self)
    } throws: { error in
      (error as? StoreError)?.kind == .corrupt
    }
    await #expect(throws: StoreError.self) { _ = try await store.create("NEW", company("NEW")) }
    #expect(await !store.isHealthy())
    #expect(reported.value == 1)
  }

  @Test("documents written by release 0.2 (format 1, schema v1) read, secrets included")
  func previousRelease() async throws {
    let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
      .appendingPathComponent("Fixtures/release-1/settings.sqlite")
    let path = temporaryDatabasePath()
    try FileManager.default.copyItem(atPath: fixture.path, toPath: path)
    let key = SymmetricKey(data: Data((0..<32).map { UInt8($0) }))
    let store = try SQLiteSettingsStore(path: path, secrets: SecretBox(key: key))
    let companies = try await store.registry.companies()
    #expect(companies.map(\.code) == ["Acme", "b2"])
    let acme = try #require(try await store.read(Company.self, of: companies[0]))
    #expect(acme.revision == 2)
    #expect(
      acme.value
        == Company(
          code: "Acme", mode: .altum, name: "Acme S.A.",
          connection: ERPConnection(server: "sql01\\ERP", database: "ALTUM_ACME", authentication: .sql, user: "dms"),
          altumConfiguration: ERPConnection(server: "sql01", database: "CDN_KNF", authentication: .integrated),
          licenseKeyName: "LIC-1", mappedDatabase: "ACME_DB", defaultCenter: "North", operatorLogin: "ADMIN",
          useDomain: true, domainName: "corp.example", domainGroup: "All", nip: "5260250995",
          eDeliveryAddress: "AE:PL-12345-67890-ABCDE-12", eDeliverySystemName: "DMS",
          eDeliveryKeyFingerprint: "ab:cd"))
    #expect(acme.secretsSet == ["connection.password", "operator_password", "ksef_token"])
    #expect(try await store.reveal(Company.self, "ksef_token", of: companies[0]) == "ksef-token")
    #expect(try await store.read(CompanyCenters.self, of: companies[0])?.value.centers == ["North", "South"])
    let bravo = try #require(try await store.read(Company.self, of: companies[1]))
    #expect(bravo.value.altumConfiguration == nil && bravo.value.connection.authentication == .integrated)
    let auth = try #require(try await store.read(APIAuthorization.self, of: companies[1]))
    #expect(auth.value == APIAuthorization(companyName: "BRAVO_DB", operatorLogin: "op"))
    #expect(try await store.reveal(APIAuthorization.self, "password", of: companies[1]) == "api-pw")
    let shared = try #require(try await store.readShared(SharedSettings.self))
    #expect(
      shared.value == SharedSettings(apiVersion: 20241, documentControlMode: "Extended", analyticalDescription: true))
    #expect(try await store.registry.transaction(by: tester) { tx in try tx.serverValue("company_mode") } == "multi")
    // And it writes on: the next revision, in the current format.
    var renamed = acme.value
    renamed.name += " (renamed)"
    #expect(try await store.write(renamed, to: companies[0], expectedRevision: 2).revision == 3)
  }

  @Test("a document in an unknown format is DATA_LOSS naming the area and format, not a crash")
  func unknownFormat() async throws {
    let path = temporaryDatabasePath()
    let store = try SQLiteSettingsStore(path: path, secrets: SecretBox(key: testKey))
    let (key, _) = try await store.create("FMT", company("FMT"))
    let other = try DatabaseQueue(path: path)
    try await other.write { db in try db.execute(sql: "UPDATE company_document SET format = 99") }
    try await other.close()
    let reopened = try SQLiteSettingsStore(path: path, secrets: SecretBox(key: testKey))
    await #expect {
      _ = try await reopened.read(Company.self, of: key)
    } throws: { error in
      let error = error as? StoreError
      return error?.kind == .unreadable && error?.message.contains("erp.company") == true
        && error?.message.contains("format 99") == true
    }
  }
}

/// Counts calls from any thread.
final class Counter: Sendable {
  private let count = Mutex(0)
  func add() { count.withLock { $0 += 1 } }
  var value: Int { count.withLock { $0 } }
}

@Suite("Stored records")
struct StoredRecordTests {
  static let awkward = "Zażółć \"gęślą\" \\ jaźń / tab\t nl\n cr\r bell\u{07} nul\u{00} del\u{7F} 😀"

  @Test(
    "erp.company format 2 is format 1's JSON with the KSeF certificate's two keys (sorted keys); format 1 reads as no certificate",
    arguments: [
      Company(code: "A"),
      Company(
        code: "Acme", mode: .altum, name: awkward,
        connection: ERPConnection(server: "sql01\\ERP", database: "d/b", authentication: .sql, user: awkward),
        altumConfiguration: ERPConnection(server: "s", database: "c", authentication: .integrated),
        licenseKeyName: "L", mappedDatabase: "M", defaultCenter: "N", operatorLogin: "O", useDomain: true,
        domainName: "x.example", domainGroup: "All", nip: "5260250995", eDeliveryAddress: "AE:PL-1",
        eDeliverySystemName: "S", eDeliveryKeyFingerprint: "ab:cd",
        ksefCertificate: KSeFCertificate(
          pem: "-----BEGIN CERTIFICATE-----\nMIIB\n", thumbprint: String(repeating: "AB", count: 20))),
    ])
  func companyJSON(value: Company) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    let v1 = try encoder.encode(CompanyRecordV1(value))
    let written = try Company.encodeStored(value)
    #expect(Company.storedFormat == 2)
    let object = { (data: Data) in try JSONSerialization.jsonObject(with: data) as? NSDictionary }
    let expected = try #require(try object(v1)?.mutableCopy() as? NSMutableDictionary)
    expected["ksefCertificatePEM"] = value.ksefCertificate.pem
    expected["ksefCertificateThumbprint"] = value.ksefCertificate.thumbprint
    #expect(try object(written) == expected)
    #expect(try Company.decodeStored(written, format: 2) == value)
    var withoutCertificate = value
    withoutCertificate.ksefCertificate = KSeFCertificate()
    #expect(try Company.decodeStored(v1, format: 1) == withoutCertificate)
  }

  @Test("erp.company format 2, its bytes pinned")
  func companyBytes() throws {
    let written = try Company.encodeStored(
      Company(code: "A", ksefCertificate: KSeFCertificate(thumbprint: String(repeating: "0F", count: 20))))
    #expect(
      String(decoding: written, as: UTF8.self) == """
        {"code":"A","connection":{"authentication":"SQL","database":"","server":"","user":""},"defaultCenter":"",\
        "domainGroup":"","domainName":"","eDeliveryAddress":"","eDeliveryKeyFingerprint":"","eDeliverySystemName":"",\
        "ksefCertificatePEM":"","ksefCertificateThumbprint":"0F0F0F0F0F0F0F0F0F0F0F0F0F0F0F0F0F0F0F0F",\
        "licenseKeyName":"","mappedDatabase":"","mode":"ERP_XL","name":"","nip":"","operatorLogin":"","useDomain":false}
        """)
  }
}
