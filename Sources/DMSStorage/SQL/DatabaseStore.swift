import DMSDomain
import Foundation
import Logging
import Synchronization

/// What a backend gives the store: reader connections, the serial writer, and how its
/// failures read as store errors.
protocol StoreEngine: Sendable {
  var dialect: SQLDialect { get }

  /// The connections writes go through, each serially, in group commit: the first
  /// takes the registry's, the shared section's and the operators' writes (and the
  /// catch-ups with other instances); company-scoped writes are spread over the others
  /// by company (all on the first when there is only one, as on SQLite).
  var writers: [any CommitWriter] { get }

  /// Runs `body` on a reader connection, seeing the rows `scope` allows.
  func read<Result: Sendable>(
    _ scope: RowScope, _ body: @escaping @Sendable (any SQLSession) throws -> Result
  ) async throws -> Result

  /// The store error for a failure of the backend (logged when an operator must act);
  /// other errors pass through.
  func map(_ error: any Error) -> any Error

  /// Whether the database answers and was not found damaged.
  func isHealthy() async -> Bool

  /// Calls `wake` whenever another instance may have committed (and once after each
  /// reconnection, to resynchronise); nothing on a database no one else writes.
  func follow(_ wake: @escaping @Sendable () -> Void)
}

/// The store on a relational database: the rooms' SQL, the read cache, the security
/// cache, the change feed and group commit, the same for every backend. A backend
/// (`SQLiteSettingsStore`, `PostgresSettingsStore`) opens its database, runs its
/// migrations and hands over its `StoreEngine`.
///
/// Subclassed only by the two backends; every stored property is immutable and
/// `Sendable`.
public class DatabaseStore: SettingsStore, CompanyRegistry, @unchecked Sendable {
  let engine: any StoreEngine
  let secrets: SecretBox
  let cache: ReadCache
  let security: SecurityCache
  /// One group-commit queue per writer connection (`StoreEngine.writers`).
  private let lanes: [CommitQueue]
  /// Held by a batch that changed something from its journal rows to the end of
  /// applying its effects, and by a catch-up: effects are applied in commit order.
  private let ordering: NSLock
  private let feed: ChangeFeed
  /// The last `security_feed` row applied (PostgreSQL).
  private let securityPosition: Position
  /// A catch-up with the other instances' commits is queued on the writer.
  private let catchUpQueued = Atomic<Bool>(false)
  private let logger: Logger

  /// What a store keeps in memory, read when it opens.
  struct Loaded: Sendable {
    var lastPosition: Int64
    var securityPosition: Int64 = 0
    var operators: [StoredOperator]
    var systems: [StoredApiSystem]
    var sessions: [SessionRecord]

    /// Reads it (row scope: every company).
    init(_ sql: any SQLSession) throws {
      let now = StoredDate.text(Date())
      lastPosition = try sql.value(Int64.self, "SELECT MAX(position) FROM change_feed") ?? 0
      if sql.dialect.shared {
        securityPosition = try sql.value(Int64.self, "SELECT MAX(position) FROM security_feed") ?? 0
      }
      operators = try sql.rows("SELECT \(StoreTransaction.operatorColumns(sql.dialect)) FROM operator o").map(
        StoredOperator.init(row:))
      systems = try sql.rows("SELECT \(StoreTransaction.apiSystemColumns) FROM api_system").map(
        StoredApiSystem.init(row:))
      sessions =
        try sql.rows("SELECT * FROM operator_session WHERE expires_at >= ?", [now]).map(SessionRecord.init(row:))
        + sql.rows("SELECT * FROM api_system_session WHERE expires_at >= ?", [now]).map(
          SessionRecord.init(systemRow:))
    }
  }

  init(engine: any StoreEngine, secrets: SecretBox, loaded: Loaded, maxBatch: Int, logger: Logger) {
    self.engine = engine
    self.secrets = secrets
    self.logger = logger
    let securityPosition = Position(loaded.securityPosition)
    self.securityPosition = securityPosition
    let cache = ReadCache()
    self.cache = cache
    let feed = ChangeFeed(last: loaded.lastPosition) { [engine] after, through, limit in
      do {
        return try await engine.read(.none) { sql in
          try Self.changes(after: after, through: through, limit: limit, in: sql)
        }
      } catch {
        throw engine.map(error)
      }
    }
    self.feed = feed
    let security = SecurityCache()
    security.load(operators: loaded.operators, systems: loaded.systems, sessions: loaded.sessions)
    self.security = security
    let shared = engine.dialect.shared
    let ordering = NSLock()
    self.ordering = ordering
    let committed: @Sendable (any WriterSession, [CommitEffect]) -> Void = { [cache] session, effects in
      var changes: [SettingsChange] = []
      if shared, let first = effects.lazy.compactMap(\.change).first, first.position > feed.lastPosition + 1 {
        // Other instances committed between this instance's last row and this batch
        // (feed rows are written under a lock held through the commit): their rows
        // come first, in order. If they cannot be read now, nothing cached can be
        // trusted: forget it all.
        do {
          try Self.catchUp(feed: feed, cache: cache, through: first.position - 1, session)
        } catch {
          cache.clear()
        }
      }
      if shared, let own = session.securityFeedPosition {
        // The same for the security feed; this batch's own row is not read back (its
        // effects follow), so a session refused here as idle does not come back.
        // (When the others' rows cannot be read now, the position stays: the next
        // catch-up reads them, this row with them.)
        let last = securityPosition.value.load(ordering: .relaxed)
        if own == last + 1 || (try? Self.catchUpSecurity(after: last, through: own - 1, security, session)) != nil {
          securityPosition.value.store(own, ordering: .relaxed)
        }
      }
      for effect in effects {
        switch effect {
        case .change(let change): changes.append(change)
        case .pendingChange, .audit: continue  // written by `Journal` before the commit
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
    lanes = engine.writers.map { writer in
      CommitQueue(
        writer: writer, ordering: ordering, maxBatch: maxBatch,
        prepare: { companies, session in
          // Statements over several companies only where the batch's documents are
          // gathered too; else a statement per company.
          if let store = session.batchSnapshots, store.gathersWrites {
            try StoreCompanyTransaction.prefetch(companies, into: store, session)
          } else {
            try StoreCompanyTransaction.lockInOrder(companies, session)
          }
        }, committed: committed)
    }
    engine.follow { [weak self] in self?.queueCatchUp() }
  }

  /// Queues a catch-up with the other instances' commits on the writer (one at a time:
  /// wake-ups that arrive meanwhile are covered by the queued one).
  private func queueCatchUp() {
    guard !catchUpQueued.exchange(true, ordering: .acquiringAndReleasing) else { return }
    engine.writers[0].schedule { session in
      self.catchUpQueued.store(false, ordering: .releasing)
      self.ordering.lock()
      defer { self.ordering.unlock() }
      do {
        try Self.catchUp(feed: self.feed, cache: self.cache, through: Int64.max, session)
        let after = self.securityPosition.value.load(ordering: .relaxed)
        let last = try Self.catchUpSecurity(after: after, through: Int64.max, self.security, session)
        self.securityPosition.value.store(last, ordering: .relaxed)
      } catch {
        self.logger.warning(
          "storage: could not read the other instances' changes; retrying at the next notification or reconnection",
          metadata: ["error": "\(self.engine.map(error))"])
      }
    }
  }

  /// Applies the `security_feed` rows after `after`, up to `through`; the last one's
  /// position (`after` when there is none). Runs in a read transaction of its own, on
  /// the writer outside its batches, with the row scope of every company.
  @discardableResult
  private static func catchUpSecurity(
    after: Int64, through: Int64, _ security: SecurityCache, _ sql: any WriterSession
  ) throws -> Int64 {
    var after = after
    try sql.execute("BEGIN")
    defer { _ = try? sql.execute("COMMIT") }
    try sql.scope(.all, local: true)
    while after < through {
      let rows = try sql.rows(
        "SELECT position, changes FROM security_feed WHERE position > ? AND position <= ? ORDER BY position LIMIT 500",
        [after, through])
      for row in rows {
        try SecurityFeed.apply(row["changes"], to: security, sql)
        after = row["position"]
      }
      if rows.count < 500 { break }
    }
    return after
  }

  /// Reads the change feed's rows after the last one this instance applied, up to
  /// `through`, forgets what they changed in the read cache and hands them to the
  /// feed's subscribers (Watch), in order.
  private static func catchUp(
    feed: ChangeFeed, cache: ReadCache, through: Int64, _ sql: any SQLSession
  ) throws {
    var after = feed.lastPosition
    while after < through {
      let rows = try sql.rows(
        """
        SELECT position, kind, company_id, company_code, area, revision FROM change_feed
        WHERE position > ? AND position <= ? ORDER BY position LIMIT 500
        """, [after, through])
      var changes: [SettingsChange] = []
      for row in rows {
        let change = SettingsChange(
          position: row["position"], kind: SettingsChange.Kind(rawValue: row["kind"]) ?? .updated,
          company: row["company_code"], area: row["area"], revision: row["revision"])
        if let id = row["company_id"] as Int64?, let code = change.company {
          if change.area == Company.area, change.kind == .deleted {
            cache.companyDeleted(CompanyKey(id: id, code: code), codeKey: Company.codeKey(code))
          } else {
            cache.documentRemoved(companyID: id, area: change.area)
          }
        } else {
          cache.documentRemoved(companyID: ReadCache.shared, area: change.area)
        }
        changes.append(change)
      }
      feed.publish(changes)
      guard let last = changes.last, rows.count == 500 else { return }
      after = last.position
    }
  }

  /// Runs `body` on a reader, mapping the backend's failures.
  func read<Result: Sendable>(
    _ scope: RowScope, _ body: @escaping @Sendable (any SQLSession) throws -> Result
  ) async throws -> Result {
    do {
      return try await engine.read(scope, body)
    } catch {
      throw engine.map(error)
    }
  }

  /// Runs `body` through group commit in a transaction of its own savepoint, its rows
  /// scoped to `scope`.
  func commit<Result: Sendable>(
    _ scope: RowScope, by actor: AuditActor, _ body: @escaping @Sendable (StoreTransaction) throws -> Result
  ) async throws -> Result {
    do {
      let company: Int64? = if case .company(let id) = scope { id } else { nil }
      return try await lane(scope).run(company: company) { [secrets] sql in
        let snapshots = sql.batchSnapshots ?? SnapshotStore()
        if let company, snapshots[company] != nil {
          // Locked and read with the batch's other companies.
          try sql.scope(scope, local: true)
        } else {
          try sql.scopeWrite(scope)
        }
        let tx = StoreTransaction(sql: sql, secrets: secrets, actor: actor, snapshots: snapshots)
        tx.writing = true
        if let company { tx.lockedCompanies.insert(company) }
        let result = try body(tx)
        return (result, tx.effects)
      }
    } catch {
      throw engine.map(error)
    }
  }

  /// The queue of the writer connection that takes writes of `scope`: a company's
  /// always go to the same one, so that one instance's writes to a company are never
  /// on two connections at once.
  private func lane(_ scope: RowScope) -> CommitQueue {
    guard case .company(let id) = scope, lanes.count > 1 else { return lanes[0] }
    return lanes[1 + Int(UInt64(bitPattern: id) % UInt64(lanes.count - 1))]
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
    let stored = try await read(.company(id)) { [secrets] sql in
      try StoreCompanyTransaction(
        tx: StoreTransaction(sql: sql, secrets: secrets, actor: .system("read")), company: company
      )
      .read(type)
    }
    cache.fillDocument(
      companyID: id, area: Document.area, stored.map(ReadCache.Entry.init) ?? .absent, generation: generation)
    return stored
  }

  public func readShared<Document: SettingsDocument>(_ type: Document.Type) async throws -> Stored<Document>? {
    if let entry = cache.document(companyID: ReadCache.shared, area: Document.area) { return entry.stored(type) }
    let generation = cache.generation
    let stored = try await read(.none) { [secrets] sql in
      try StoreSharedTransaction(tx: StoreTransaction(sql: sql, secrets: secrets, actor: .system("read"))).read(type)
    }
    cache.fillDocument(
      companyID: ReadCache.shared, area: Document.area, stored.map(ReadCache.Entry.init) ?? .absent,
      generation: generation)
    return stored
  }

  public func transaction<Result: Sendable>(
    company: CompanyKey,
    by actor: AuditActor,
    _ body: @escaping @Sendable (any CompanyTransaction) throws -> Result
  ) async throws -> Result {
    try await commit(.company(company.id), by: actor) { tx in
      try body(StoreCompanyTransaction(tx: tx, company: company))
    }
  }

  public func sharedTransaction<Result: Sendable>(
    by actor: AuditActor,
    _ body: @escaping @Sendable (any SharedTransaction) throws -> Result
  ) async throws -> Result {
    try await commit(.none, by: actor) { tx in try body(StoreSharedTransaction(tx: tx)) }
  }

  public func isHealthy() async -> Bool {
    await engine.isHealthy()
  }

  /// SQLite has no roles: nil (PostgreSQL overrides).
  public func verifyDatabaseAdministrator(login: String, password: String) async throws
    -> DatabaseAdministratorVerdict?
  {
    nil
  }

  // MARK: CompanyRegistry

  public func company(code: String) async throws -> CompanyKey? {
    let codeKey = Company.codeKey(code)
    if let key = cache.company(codeKey: codeKey) { return key }
    let generation = cache.generation
    let key = try await read(.none) { sql in
      try sql.row("SELECT id, code FROM company WHERE code_key = ?", [codeKey]).map {
        CompanyKey(id: $0["id"], code: $0["code"])
      }
    }
    if let key { cache.fillCompany(codeKey: codeKey, key, generation: generation) }
    return key
  }

  public func companies() async throws -> [CompanyKey] {
    try await read(.none) { sql in
      try sql.rows("SELECT id, code FROM company ORDER BY code_key").map {
        CompanyKey(id: $0["id"], code: $0["code"])
      }
    }
  }

  public func documentOfEveryCompany<Document: SettingsDocument>(
    _ type: Document.Type
  ) async throws -> [(CompanyKey, Stored<Document>)] {
    let rows = try await read(.all) { sql in
      try sql.rows(
        """
        SELECT c.id, c.code, d.revision, d.body, d.format, d.updated_at,
          \(StoreCompanyTransaction.secretNames(sql.dialect))
        FROM company c JOIN company_document d ON d.company_id = c.id AND d.area = ?
        ORDER BY c.code_key
        """,
        [Document.area])
    }
    return try rows.map { row in
      return (
        CompanyKey(id: row["id"], code: row["code"]),
        Stored(
          value: try Document.decodeStored(row["body"], format: row["format"]), revision: row["revision"],
          secretsSet: Set(row.joinedList("secrets")), updatedAt: row["updated_at"])
      )
    }
  }

  public func transaction<Result: Sendable>(
    by actor: AuditActor,
    _ body: @escaping @Sendable (any RegistryTransaction) throws -> Result
  ) async throws -> Result {
    try await commit(.all, by: actor) { tx in try body(tx) }
  }

  // MARK: Reading the journals

  /// The change feed's rows after `after`, up to `through`, at most `limit`.
  static func changes(after: Int64, through: Int64, limit: Int, in sql: any SQLSession) throws -> [SettingsChange] {
    try sql.rows(
      """
      SELECT position, kind, company_code, area, revision FROM change_feed
      WHERE position > ? AND position <= ? ORDER BY position LIMIT ?
      """,
      [after, through, limit]
    ).map { row in
      SettingsChange(
        position: row["position"], kind: SettingsChange.Kind(rawValue: row["kind"]) ?? .updated,
        company: row["company_code"], area: row["area"], revision: row["revision"])
    }
  }

  public func auditRecords(matching query: AuditQuery) async throws -> [AuditRecord] {
    // Two fixed statements, one per direction, so that the id's index orders the rows
    // (a page costs its rows, not the audit's size). The casts give PostgreSQL the
    // type of an argument that may be NULL.
    let (bound, order) =
      query.newestFirst ? ("(CAST(? AS BIGINT) = 0 OR id < ?)", "DESC") : ("id > CAST(? AS BIGINT)", "ASC")
    let cursors: [any SQLBindable] = query.newestFirst ? [query.cursor, query.cursor] : [query.cursor]
    let arguments: [any SQLBindable] =
      cursors + [
        query.companyID, query.companyID, query.companyCode, query.companyCode, query.action, query.action,
        query.login, query.login, query.subject, query.subject, query.limit,
      ]
    return try await read(.none) { sql in
      try sql.rows(
        """
        SELECT * FROM audit_entry
        WHERE \(bound)
          AND (CAST(? AS BIGINT) IS NULL OR company_id = ?)
          AND (CAST(? AS TEXT) IS NULL OR upper(company_code) = upper(?))
          AND (CAST(? AS TEXT) IS NULL OR action = ?)
          AND (CAST(? AS TEXT) IS NULL OR lower(login) = lower(?))
          AND (CAST(? AS TEXT) IS NULL OR lower(subject) = lower(?))
        ORDER BY id \(order)
        LIMIT ?
        """,
        arguments
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

extension DatabaseStore {
  /// Tests: the first column of `sql`'s rows as bytes (every company's rows).
  package func inspectData(_ sql: String) async throws -> [Data] {
    try await read(.all) { session in try session.values(Data.self, sql) }
  }

  /// Tests: the number `sql` counts.
  package func inspectCount(_ sql: String) async throws -> Int {
    try await read(.all) { session in try session.value(Int.self, sql) ?? -1 }
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

/// A feed position shared with the store's commit callback.
final class Position: Sendable {
  let value: Atomic<Int64>
  init(_ value: Int64) { self.value = Atomic(value) }
}
