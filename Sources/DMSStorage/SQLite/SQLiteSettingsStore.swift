import DMSDomain
import Foundation
import GRDB
import Logging

/// The embedded default backend: one SQLite file in the data folder.
///
/// WAL mode with `synchronous=FULL`: a write answered OK survives `kill -9` and power
/// loss. Every company-owned row carries `company_id` (the column a PostgreSQL
/// backend protects with row-level security and a distributed one shards by).
public final class SQLiteSettingsStore: SettingsStore {
  let pool: DatabasePool
  let secrets: SecretBox
  let cache = ReadCache()
  private let encoder: JSONEncoder
  private let decoder = JSONDecoder()

  /// Opens (creating if need be) the database at `path` and runs the migrations.
  public init(path: String, secrets: SecretBox, logger: Logger = Logger(label: "dms.storage")) throws {
    var configuration = Configuration()
    configuration.foreignKeysEnabled = true
    configuration.busyMode = .timeout(10)
    let directory = (path as NSString).deletingLastPathComponent
    if !directory.isEmpty {
      try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }
    pool = try DatabasePool(path: path, configuration: configuration)
    // After opening WAL, GRDB sets synchronous=NORMAL on the writer (a commit may be
    // lost on power loss). FULL syncs the WAL at every commit: an acknowledged write
    // survives. The pool keeps this one writer connection for its whole life.
    try pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
    self.secrets = secrets
    encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    try SQLiteMigrations.migrator(logger: logger).migrate(pool)
  }

  // MARK: Documents (shared helpers)

  func encode<Document: SettingsDocument>(_ document: Document) throws -> Data {
    try encoder.encode(document)
  }

  func decode<Document: SettingsDocument>(_ type: Document.Type, _ data: Data) throws -> Document {
    try decoder.decode(type, from: data)
  }

  // MARK: Registry

  public func companies() async throws -> [CompanyKey] {
    try await pool.read { db in
      try Row.fetchAll(db, sql: "SELECT id, code FROM company ORDER BY code_key").map {
        CompanyKey(id: $0["id"], code: $0["code"])
      }
    }
  }

  public func company(code: String) async throws -> CompanyKey? {
    let codeKey = Company.codeKey(code)
    if let key = cache.company(codeKey: codeKey) { return key }
    let generation = cache.generation
    let key = try await pool.read { db in
      try Row.fetchOne(db, sql: "SELECT id, code FROM company WHERE code_key = ?", arguments: [codeKey]).map {
        CompanyKey(id: $0["id"], code: $0["code"])
      }
    }
    if let key { cache.fillCompany(codeKey: codeKey, key, generation: generation) }
    return key
  }

  public func createCompany<Document: SettingsDocument>(
    code: String,
    document: Document,
    secrets changes: [String: SecretChange]
  ) async throws -> (CompanyKey, Stored<Document>) {
    let body = try encode(document)
    let key = Company.codeKey(code)
    let created = try await pool.write { db in
      if try Bool.fetchOne(db, sql: "SELECT 1 FROM company WHERE code_key = ?", arguments: [key]) == true {
        throw StoreError(.alreadyExists, "a company with the short name \(code) exists (short names ignore case)")
      }
      try db.execute(
        sql: "INSERT INTO company (code, code_key, created_at) VALUES (?, ?, ?)",
        arguments: [code, key, Date()])
      let company = CompanyKey(id: db.lastInsertedRowID, code: code)
      let scope = SQLiteCompanyStore(store: self, company: company)
      let stored = try scope.write(document, body: body, secrets: changes, expectedRevision: 0, in: db)
      return (company, stored)
    }
    cache.companyCreated(codeKey: key, created.0)
    cache.documentWritten(companyID: created.0.id, area: Document.area, ReadCache.Entry(created.1))
    return created
  }

  public func deleteCompany<Document: SettingsDocument>(
    _ company: CompanyKey,
    checking type: Document.Type,
    expectedRevision: Int64
  ) async throws {
    try await pool.write { db in
      let current = try Int64.fetchOne(
        db, sql: "SELECT revision FROM company_document WHERE company_id = ? AND area = ?",
        arguments: [company.id, Document.area])
      guard try Bool.fetchOne(db, sql: "SELECT 1 FROM company WHERE id = ?", arguments: [company.id]) == true else {
        throw StoreError(.notFound, "no company \(company.code)")
      }
      guard (current ?? 0) == expectedRevision else {
        throw StoreError(
          .staleRevision, "company \(company.code) is at revision \(current ?? 0), not \(expectedRevision)",
          currentRevision: current ?? 0)
      }
      // ON DELETE CASCADE removes every row partitioned under the company.
      try db.execute(sql: "DELETE FROM company WHERE id = ?", arguments: [company.id])
    }
    cache.companyDeleted(company, codeKey: Company.codeKey(company.code))
  }

  public func documentOfEveryCompany<Document: SettingsDocument>(
    _ type: Document.Type
  ) async throws -> [(CompanyKey, Stored<Document>)] {
    let rows = try await pool.read { db in
      try Row.fetchAll(
        db,
        sql: """
          SELECT c.id, c.code, d.revision, d.body, d.updated_at,
            (SELECT group_concat(s.field, char(31)) FROM company_secret s
              WHERE s.company_id = c.id AND s.area = d.area) AS secrets
          FROM company c JOIN company_document d ON d.company_id = c.id AND d.area = ?
          ORDER BY c.code_key
          """,
        arguments: [Document.area])
    }
    return try rows.map { row in
      let secrets = (row["secrets"] as String?).map { $0.split(separator: "\u{1F}").map(String.init) } ?? []
      return (
        CompanyKey(id: row["id"], code: row["code"]),
        Stored(
          value: try decode(type, row["body"]), revision: row["revision"], secretsSet: Set(secrets),
          updatedAt: row["updated_at"])
      )
    }
  }

  public func scoped(to company: CompanyKey) -> any CompanyScopedStore {
    SQLiteCompanyStore(store: self, company: company)
  }

  // MARK: Shared section

  public func readShared<Document: SettingsDocument>(_ type: Document.Type) async throws -> Stored<Document>? {
    if let entry = cache.document(companyID: ReadCache.shared, area: Document.area) { return entry.stored(type) }
    let generation = cache.generation
    let row = try await pool.read { db in
      try Row.fetchOne(
        db, sql: "SELECT revision, body, updated_at FROM shared_document WHERE area = ?", arguments: [Document.area])
    }
    guard let row else {
      cache.fillDocument(companyID: ReadCache.shared, area: Document.area, .absent, generation: generation)
      return nil
    }
    let stored = Stored(
      value: try decode(type, row["body"]), revision: row["revision"], secretsSet: [], updatedAt: row["updated_at"])
    cache.fillDocument(
      companyID: ReadCache.shared, area: Document.area, ReadCache.Entry(stored), generation: generation)
    return stored
  }

  public func writeShared<Document: SettingsDocument>(
    _ document: Document,
    expectedRevision: Int64
  ) async throws -> Stored<Document> {
    let body = try encode(document)
    let stored = try await pool.write { db in
      let current =
        try Int64.fetchOne(db, sql: "SELECT revision FROM shared_document WHERE area = ?", arguments: [Document.area])
        ?? 0
      guard current == expectedRevision else {
        throw StoreError(
          .staleRevision, "the shared section is at revision \(current), not \(expectedRevision)",
          currentRevision: current)
      }
      let now = Date()
      try db.execute(
        sql: """
          INSERT INTO shared_document (area, revision, body, updated_at) VALUES (?, ?, ?, ?)
          ON CONFLICT (area) DO UPDATE SET revision = excluded.revision, body = excluded.body,
            updated_at = excluded.updated_at
          """,
        arguments: [Document.area, current + 1, body, now])
      return Stored(value: document, revision: current + 1, secretsSet: [], updatedAt: now)
    }
    cache.documentWritten(companyID: ReadCache.shared, area: Document.area, ReadCache.Entry(stored))
    return stored
  }

  // MARK: Server-wide values

  public func serverValue(_ key: String) async throws -> String? {
    try await pool.read { db in
      try String.fetchOne(db, sql: "SELECT value FROM server_state WHERE key = ?", arguments: [key])
    }
  }

  public func setServerValue(_ key: String, _ value: String) async throws {
    try await pool.write { db in
      try db.execute(
        sql:
          "INSERT INTO server_state (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        arguments: [key, value])
    }
  }

  public func isHealthy() async -> Bool {
    (try? await pool.read { db in try Int.fetchOne(db, sql: "SELECT 1") }) == 1
  }
}

extension SQLiteSettingsStore {
  /// `PRAGMA synchronous` of the store's connections (2 = FULL), for tests and
  /// diagnostics.
  public func synchronousMode() async throws -> Int {
    try await pool.write { db in try Int.fetchOne(db, sql: "PRAGMA synchronous") ?? -1 }
  }
}

extension ReadCache.Entry {
  /// The entry of a stored document.
  init<Document: Sendable>(_ stored: Stored<Document>) {
    self.init(
      value: stored.value, revision: stored.revision, secretsSet: stored.secretsSet, updatedAt: stored.updatedAt)
  }

  /// "There is no such document."
  static let absent = ReadCache.Entry(
    value: nil, revision: 0, secretsSet: [], updatedAt: Date(timeIntervalSince1970: 0))

  /// The stored document, or nil when absent (or, defensively, of another type).
  func stored<Document>(_ type: Document.Type) -> Stored<Document>? {
    guard let value = value as? Document else { return nil }
    return Stored(value: value, revision: revision, secretsSet: secretsSet, updatedAt: updatedAt)
  }
}
