import DMSDomain
import Foundation
import GRDB
import Logging
import Synchronization

/// The embedded default backend: one SQLite file in the data folder.
///
/// WAL mode with `synchronous=FULL`: a write answered OK survives `kill -9` and power
/// loss. Writes go through group commit (`CommitQueue`) on GRDB's serial writer. Every
/// company-owned row carries `company_id` (the column PostgreSQL protects with
/// row-level security).
public final class SQLiteSettingsStore: DatabaseStore, @unchecked Sendable {
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
    let pool: DatabasePool
    let loaded: Loaded
    do {
      pool = try DatabasePool(path: path, configuration: configuration)
      // After opening WAL, GRDB sets synchronous=NORMAL on the writer (a commit may be
      // lost on power loss). FULL syncs the WAL at every commit: an acknowledged write
      // survives. The pool keeps this one writer connection for its whole life.
      try pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
      try SQLiteMigrations.migrator(logger: logger).migrate(pool)
      loaded = try pool.read { db in try Loaded(GRDBSession(db)) }
    } catch {
      throw SQLiteFailure.map(error)
    }
    self.pool = pool
    super.init(
      engine: SQLiteEngine(pool: pool, logger: logger, onCorruption: options.onCorruption), secrets: secrets,
      loaded: loaded, maxBatch: options.maxBatch, logger: logger)
  }

  /// Writes the write-ahead log into the database file and closes the connections, once
  /// nothing uses the store any more (the server has stopped). Until then the newest
  /// commits may be in `settings.sqlite-wal` alone: a stopped server whose folder was
  /// copied as `settings.sqlite` alone gave an empty database. After this, that file holds
  /// everything (with `master.key`, a backup: docs/STORAGE.md).
  public func close() async throws {
    do {
      try await pool.writeWithoutTransaction { db in try db.checkpoint(.truncate) }
      try pool.close()
    } catch {
      throw SQLiteFailure.map(error)
    }
  }

  /// `PRAGMA synchronous` of the store's connections (2 = FULL), for tests and
  /// diagnostics.
  public func synchronousMode() async throws -> Int {
    try await pool.write { db in try Int.fetchOne(db, sql: "PRAGMA synchronous") ?? -1 }
  }

  /// Runs `PRAGMA <statement>` on the writer connection (tests: the size limit that
  /// stands in for a full disk).
  package func pragma(_ statement: String) async throws -> Int? {
    try await pool.writeWithoutTransaction { db in try Int.fetchOne(db, sql: "PRAGMA \(statement)") }
  }
}

/// SQLite through GRDB: readers from the pool, the pool's serial writer.
final class SQLiteEngine: StoreEngine, CommitWriter {
  let pool: DatabasePool
  let logger: Logger
  let onCorruption: (@Sendable () -> Void)?
  private let corrupt = Atomic<Bool>(false)
  /// A full disk or a locked database fails every write: each kind of failure is
  /// logged once in a while, with a count.
  private let repeatedErrors = RepeatedErrors()

  init(pool: DatabasePool, logger: Logger, onCorruption: (@Sendable () -> Void)?) {
    self.pool = pool
    self.logger = logger
    self.onCorruption = onCorruption
  }

  var dialect: SQLDialect { .sqlite }

  var writers: [any CommitWriter] { [self] }

  func schedule(_ drain: @escaping @Sendable (any WriterSession) -> Void) {
    pool.asyncWriteWithoutTransaction { db in drain(GRDBSession(db)) }
  }

  func read<Result: Sendable>(
    _ scope: RowScope, _ body: @escaping @Sendable (any SQLSession) throws -> Result
  ) async throws -> Result {
    try await pool.read { db in try body(GRDBSession(db)) }
  }

  func map(_ error: any Error) -> any Error {
    let mapped = SQLiteFailure.map(error)
    guard let storeError = mapped as? StoreError, error is DatabaseError else { return mapped }
    switch storeError.kind {
    case .busy, .full, .unavailable, .corrupt:
      var metadata: Logger.Metadata = ["kind": "\(storeError.kind)"]
      if let database = error as? DatabaseError {
        metadata["sqlite-result-code"] = "\(database.extendedResultCode.rawValue)"
        metadata["sqlite-message"] = "\(database.message ?? "")"
      }
      repeatedErrors.error("storage: \(storeError.message)", metadata: metadata, logger)
      if storeError.kind == .corrupt, !corrupt.exchange(true, ordering: .relaxed) { onCorruption?() }
    default:
      break
    }
    return mapped
  }

  func follow(_ wake: @escaping @Sendable () -> Void) {}

  func isHealthy() async -> Bool {
    guard !corrupt.load(ordering: .relaxed) else { return false }
    return (try? await pool.read { db in try Int.fetchOne(db, sql: "SELECT 1") }) == 1
  }
}

/// A GRDB connection as an `SQLSession`: every statement a cached prepared one.
final class GRDBSession: WriterSession {
  let db: Database

  init(_ db: Database) { self.db = db }

  var dialect: SQLDialect { .sqlite }

  private static func arguments(_ values: [any SQLBindable]) -> StatementArguments {
    StatementArguments(
      values.map { value -> DatabaseValue in
        switch value.sqlValue {
        case .null: .null
        case .integer(let int): int.databaseValue
        case .real(let double): double.databaseValue
        case .text(let text): text.databaseValue
        case .blob(let data): data.databaseValue
        case .bool(let bool): (bool ? 1 : 0).databaseValue
        }
      })
  }

  @discardableResult
  func execute(_ sql: String, _ arguments: [any SQLBindable]) throws -> Int {
    try db.cachedStatement(sql: sql).execute(arguments: Self.arguments(arguments))
    return db.changesCount
  }

  func rows(_ sql: String, _ arguments: [any SQLBindable]) throws -> [SQLRow] {
    let statement = try db.cachedStatement(sql: sql)
    let columns = statement.columnNames
    let cursor = try Row.fetchCursor(statement, arguments: Self.arguments(arguments))
    var rows: [SQLRow] = []
    while let row = try cursor.next() {
      rows.append(
        SQLRow(
          columns: columns,
          values: row.databaseValues.map { value in
            switch value.storage {
            case .null: .null
            case .int64(let int): .integer(int)
            case .double(let double): .real(double)
            case .string(let text): .text(text)
            case .blob(let data): .blob(data)
            }
          }))
    }
    return rows
  }

  func begin() throws { try db.execute(sql: "BEGIN IMMEDIATE TRANSACTION") }

  func orderCommit() {}
  var savepointsPerJob: Bool { true }
  func markJob(_ index: Int?) {}
  var jobLeftNoTrace: Bool { false }
  func commit(effects: [CommitEffect]) throws { try db.execute(sql: "COMMIT") }
  func mayRetry(after error: any Error) -> Bool { false }

  func rollback() {
    if db.isInsideTransaction { try? db.execute(sql: "ROLLBACK") }
  }

  var isInsideTransaction: Bool { db.isInsideTransaction }

  var securityFeedPosition: Int64? { nil }
}
