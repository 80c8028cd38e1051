import DMSDomain
import Foundation
import GRDB
import Logging
import Synchronization

/// The embedded default backend: one SQLite file in the data folder.
///
/// WAL mode with `synchronous=FULL`: a write answered OK survives `kill -9` and power
/// loss. Writes go through group commit (`CommitQueue`). Every company-owned row
/// carries `company_id` (the column a PostgreSQL backend protects with row-level
/// security).
public final class SQLiteSettingsStore: SettingsStore, CompanyRegistry {
  /// How the store opens its database.
  public struct Options: Sendable {
    /// How long a statement waits for another process's lock before failing with
    /// UNAVAILABLE (`storage.busy-timeout-ms`).
    public var busyTimeout: Duration = .seconds(10)
    /// The most transactions one commit carries.
    public var maxBatch = 256
    /// Called once when the database is found damaged (Health goes NOT_SERVING).
    public var onCorruption: (@Sendable () -> Void)?

    /// The defaults.
    public init() {}
  }

  let pool: DatabasePool
  let secrets: SecretBox
  let cache: ReadCache
  let security: SecurityCache
  private let logger: Logger
  private let corrupt = Atomic<Bool>(false)
  private let onCorruption: (@Sendable () -> Void)?
  private let commits: CommitQueue
  private let feed: ChangeFeed

  /// Opens (creating if need be) the database at `path` and runs the migrations.
  public init(
    path: String,
    secrets: SecretBox,
    options: Options = Options(),
    logger: Logger = Logger(label: "dms.storage")
  ) throws {
    var configuration = Configuration()
    configuration.foreignKeysEnabled = true
    configuration.busyMode = .timeout(
      TimeInterval(options.busyTimeout.components.seconds)
        + TimeInterval(options.busyTimeout.components.attoseconds) / 1e18)
    let directory = (path as NSString).deletingLastPathComponent
    if !directory.isEmpty {
      try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }
    let cache = ReadCache()
    self.cache = cache
    self.secrets = secrets
    self.logger = logger
    self.onCorruption = options.onCorruption
    let pool: DatabasePool
    let feed: ChangeFeed
    do {
      pool = try DatabasePool(path: path, configuration: configuration)
      // After opening WAL, GRDB sets synchronous=NORMAL on the writer (a commit may be
      // lost on power loss). FULL syncs the WAL at every commit: an acknowledged write
      // survives. The pool keeps this one writer connection for its whole life.
      try pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
      try SQLiteMigrations.migrator(logger: logger).migrate(pool)
      let last = try pool.read { db in try Int64.fetchOne(db, sql: "SELECT MAX(position) FROM change_feed") } ?? 0
      feed = ChangeFeed(last: last) { [pool] after, through, limit in
        try await pool.read { db in try Self.changes(after: after, through: through, limit: limit, in: db) }
      }
    } catch {
      throw SQLiteFailure.map(error)
    }
    self.pool = pool
    self.feed = feed
    let security = SecurityCache()
    self.security = security
    do {
      let (operators, systems, sessions) = try pool.read { db in
        let now = SQLiteDate.text(Date())
        return (
          try Row.fetchAll(db, sql: "SELECT \(SQLiteTransaction.operatorColumns) FROM operator o").map(
            StoredOperator.init(row:)),
          try Row.fetchAll(db, sql: "SELECT \(SQLiteTransaction.apiSystemColumns) FROM api_system").map(
            StoredApiSystem.init(row:)),
          try Row.fetchAll(db, sql: "SELECT * FROM operator_session WHERE expires_at >= ?", arguments: [now]).map(
            SessionRecord.init(row:))
            + Row.fetchAll(db, sql: "SELECT * FROM api_system_session WHERE expires_at >= ?", arguments: [now]).map(
              SessionRecord.init(systemRow:))
        )
      }
      security.load(operators: operators, systems: systems, sessions: sessions)
    } catch {
      throw SQLiteFailure.map(error)
    }
    commits = CommitQueue(pool: pool, maxBatch: options.maxBatch) { [cache] effects in
      var changes: [SettingsChange] = []
      for effect in effects {
        switch effect {
        case .change(let change): changes.append(change)
        case .document(let companyID, let area, let entry):
          cache.documentWritten(companyID: companyID, area: area, entry)
        case .documentRemoved(let companyID, let area): cache.documentRemoved(companyID: companyID, area: area)
        case .companyCreated(let codeKey, let key): cache.companyCreated(codeKey: codeKey, key)
        case .companyDeleted(let key, let codeKey):
          cache.companyDeleted(key, codeKey: codeKey)
          security.companyDeleted(codeKey: codeKey)
        case .operatorWritten(let stored): security.operatorWritten(stored)
        case .operatorDeleted(let id): security.operatorDeleted(id: id)
        case .sessionOpened(let record): security.sessionOpened(record)
        case .sessionEnded(let tokenHash): security.sessionEnded(tokenHash)
        case .apiSystemWritten(let stored): security.apiSystemWritten(stored)
        case .apiSystemDeleted(let id): security.apiSystemDeleted(id: id)
        case .sessionsEnded(let holder, let keeping): security.sessionsEnded(holder: holder, keeping: keeping)
        case .sessionsExpired(let date): security.sessionsExpired(before: date)
        }
      }
      feed.publish(changes)
    }
  }

  /// Runs a database operation, mapping SQLite's failures (and noting corruption).
  func database<Result>(_ operation: () async throws -> Result) async throws -> Result {
    do {
      return try await operation()
    } catch {
      throw noted(SQLiteFailure.map(error), original: error)
    }
  }

  private func noted(_ mapped: any Error, original: any Error) -> any Error {
    guard let storeError = mapped as? StoreError else { return mapped }
    switch storeError.kind {
    case .busy, .full, .unavailable, .corrupt:
      var metadata: Logger.Metadata = ["kind": "\(storeError.kind)"]
      if let database = original as? DatabaseError {
        metadata["sqlite-result-code"] = "\(database.extendedResultCode.rawValue)"
        metadata["sqlite-message"] = "\(database.message ?? "")"
      }
      logger.error("storage: \(storeError.message)", metadata: metadata)
      if storeError.kind == .corrupt, !corrupt.exchange(true, ordering: .relaxed) { onCorruption?() }
    default:
      break
    }
    return mapped
  }

  // MARK: SettingsStore

  public var registry: any CompanyRegistry { self }

  public var changes: ChangeFeed { feed }

  public func read<Document: SettingsDocument>(
    _ type: Document.Type, of company: CompanyKey
  ) async throws -> Stored<Document>? {
    let id = company.id
    if let entry = cache.document(companyID: id, area: Document.area) { return entry.stored(type) }
    let generation = cache.generation
    let stored = try await database {
      try await pool.read { db in
        try SQLiteCompanyTransaction(
          tx: SQLiteTransaction(db: db, store: self, actor: .system("read")), company: company
        )
        .read(type)
      }
    }
    cache.fillDocument(
      companyID: id, area: Document.area, stored.map(ReadCache.Entry.init) ?? .absent, generation: generation)
    return stored
  }

  public func readShared<Document: SettingsDocument>(_ type: Document.Type) async throws -> Stored<Document>? {
    if let entry = cache.document(companyID: ReadCache.shared, area: Document.area) { return entry.stored(type) }
    let generation = cache.generation
    let stored = try await database {
      try await pool.read { db in
        try SQLiteSharedTransaction(tx: SQLiteTransaction(db: db, store: self, actor: .system("read"))).read(type)
      }
    }
    cache.fillDocument(
      companyID: ReadCache.shared, area: Document.area, stored.map(ReadCache.Entry.init) ?? .absent,
      generation: generation)
    return stored
  }

  /// Runs `body` through group commit in a transaction of its own savepoint.
  func commit<Result: Sendable>(
    by actor: AuditActor, _ body: @escaping @Sendable (SQLiteTransaction) throws -> Result
  ) async throws -> Result {
    try await database {
      try await commits.run { db in
        let tx = SQLiteTransaction(db: db, store: self, actor: actor)
        let result = try body(tx)
        return (result, tx.effects)
      }
    }
  }

  public func transaction<Result: Sendable>(
    company: CompanyKey,
    by actor: AuditActor,
    _ body: @escaping @Sendable (any CompanyTransaction) throws -> Result
  ) async throws -> Result {
    try await commit(by: actor) { tx in try body(SQLiteCompanyTransaction(tx: tx, company: company)) }
  }

  public func sharedTransaction<Result: Sendable>(
    by actor: AuditActor,
    _ body: @escaping @Sendable (any SharedTransaction) throws -> Result
  ) async throws -> Result {
    try await commit(by: actor) { tx in try body(SQLiteSharedTransaction(tx: tx)) }
  }

  public func isHealthy() async -> Bool {
    guard !corrupt.load(ordering: .relaxed) else { return false }
    return (try? await pool.read { db in try Int.fetchOne(db, sql: "SELECT 1") }) == 1
  }

  // MARK: CompanyRegistry

  public func company(code: String) async throws -> CompanyKey? {
    let codeKey = Company.codeKey(code)
    if let key = cache.company(codeKey: codeKey) { return key }
    let generation = cache.generation
    let key = try await database {
      try await pool.read { db in
        try Row.fetchOne(db, sql: "SELECT id, code FROM company WHERE code_key = ?", arguments: [codeKey]).map {
          CompanyKey(id: $0["id"], code: $0["code"])
        }
      }
    }
    if let key { cache.fillCompany(codeKey: codeKey, key, generation: generation) }
    return key
  }

  public func companies() async throws -> [CompanyKey] {
    try await database {
      try await pool.read { db in
        try Row.fetchAll(db, sql: "SELECT id, code FROM company ORDER BY code_key").map {
          CompanyKey(id: $0["id"], code: $0["code"])
        }
      }
    }
  }

  public func documentOfEveryCompany<Document: SettingsDocument>(
    _ type: Document.Type
  ) async throws -> [(CompanyKey, Stored<Document>)] {
    let rows = try await database {
      try await pool.read { db in
        try Row.fetchAll(
          db,
          sql: """
            SELECT c.id, c.code, d.revision, d.body, d.format, d.updated_at,
              (SELECT group_concat(s.field, char(31)) FROM company_secret s
                WHERE s.company_id = c.id AND s.area = d.area) AS secrets
            FROM company c JOIN company_document d ON d.company_id = c.id AND d.area = ?
            ORDER BY c.code_key
            """,
          arguments: [Document.area])
      }
    }
    return try rows.map { row in
      let secrets = (row["secrets"] as String?).map { $0.split(separator: "\u{1F}").map(String.init) } ?? []
      return (
        CompanyKey(id: row["id"], code: row["code"]),
        Stored(
          value: try Document.decodeStored(row["body"], format: row["format"]), revision: row["revision"],
          secretsSet: Set(secrets), updatedAt: row["updated_at"])
      )
    }
  }

  public func transaction<Result: Sendable>(
    by actor: AuditActor,
    _ body: @escaping @Sendable (any RegistryTransaction) throws -> Result
  ) async throws -> Result {
    try await commit(by: actor) { tx in try body(tx) }
  }

  // MARK: Reading the journals

  /// The change feed's rows after `after`, up to `through`, at most `limit`.
  static func changes(after: Int64, through: Int64, limit: Int, in db: Database) throws -> [SettingsChange] {
    try Row.fetchAll(
      db,
      sql: """
        SELECT position, kind, company_code, area, revision FROM change_feed
        WHERE position > ? AND position <= ? ORDER BY position LIMIT ?
        """,
      arguments: [after, through, limit]
    ).map { row in
      SettingsChange(
        position: row["position"], kind: SettingsChange.Kind(rawValue: row["kind"]) ?? .updated,
        company: row["company_code"], area: row["area"], revision: row["revision"])
    }
  }

  public func auditRecords(matching query: AuditQuery) async throws -> [AuditRecord] {
    // Two fixed statements, one per direction, so that the id's index orders the rows
    // (a page costs its rows, not the audit's size).
    let (bound, order) = query.newestFirst ? ("(? = 0 OR id < ?)", "DESC") : ("id > ?", "ASC")
    let cursors = query.newestFirst ? [query.cursor, query.cursor] : [query.cursor]
    return try await database {
      try await pool.read { db in
        try Row.fetchAll(
          db,
          sql: """
            SELECT * FROM audit_entry
            WHERE \(bound)
              AND (? IS NULL OR company_id = ?)
              AND (? IS NULL OR upper(company_code) = upper(?))
              AND (? IS NULL OR action = ?)
              AND (? IS NULL OR lower(login) = lower(?))
              AND (? IS NULL OR lower(subject) = lower(?))
            ORDER BY id \(order)
            LIMIT ?
            """,
          arguments: StatementArguments(
            cursors.map { $0 as (any DatabaseValueConvertible)? } + [
              query.companyID, query.companyID, query.companyCode, query.companyCode, query.action, query.action,
              query.login, query.login, query.subject, query.subject, query.limit,
            ])
        ).map { row in
          AuditRecord(
            id: row["id"], company: row["company_code"], at: row["at"], action: row["action"], area: row["area"],
            field: row["field"], revision: row["revision"], detail: row["detail"], subject: row["subject"],
            actor: AuditActor(
              login: row["login"], peer: row["peer"], userAgent: row["user_agent"], requestID: row["request_id"]))
        }
      }
    }
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

extension SQLiteSettingsStore {
  /// Runs `PRAGMA <statement>` on the writer connection (tests: the size limit that
  /// stands in for a full disk).
  package func pragma(_ statement: String) async throws -> Int? {
    try await pool.writeWithoutTransaction { db in try Int.fetchOne(db, sql: "PRAGMA \(statement)") }
  }
}
