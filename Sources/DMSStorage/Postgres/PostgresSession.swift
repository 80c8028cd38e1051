import Foundation
import Logging
import NIOCore
import PostgresNIO
import Synchronization

/// One PostgreSQL connection as an `SQLSession`.
///
/// Its statements block the calling thread (a thread of the store's pool, or the
/// writer's), never an event loop: the store's transaction bodies are synchronous, as
/// with SQLite. A statement that gets no answer within the statement timeout plus a
/// margin closes the connection, so a stalled server or a lost network fails the call
/// (UNAVAILABLE) instead of hanging it.
final class PostgresSession: WriterSession, @unchecked Sendable {
  let connection: PostgresConnection
  private let logger: Logger
  private let statements: PlaceholderCache
  /// When the statement under way was sent (`NIODeadline.now()` in nanoseconds); 0
  /// between statements. The watchdog reads it.
  private let statementSent = StatementClock()
  private let watching: RepeatedTask
  /// Since `markJob`: whether a statement other than a SELECT ran, or one failed.
  private var jobWrote = false
  private var jobFailed = false
  /// The key of the advisory lock a batch of the registry's, the shared section's and
  /// the operators' writes holds from its BEGIN to its end: those writers take turns
  /// across instances, so their checks (a revision, a unique name) see the latest
  /// commit. Company-scoped writes lock their company's row instead.
  static let writeLock: Int64 = 0x0444_4D53_5752_4954  // "DMSWRIT"
  /// The key of the advisory lock every batch that changed something takes just before
  /// its feed rows and holds through its COMMIT: such commits end one at a time, so the
  /// feed's positions follow commit order (a reader that has seen position n has seen
  /// every position below it). PostgreSQL's NOTIFY, which each of them sends, already
  /// serialises their commits so.
  static let orderLock: Int64 = 0x0444_4D53_4F52_4452  // "DMSORDR"
  /// Whether `begin` takes `writeLock` (the store's first writer connection).
  var takesWriteLock = true
  /// What this instance's `pg_notify` says, so that its listener can skip its own.
  var notification = ""
  private var transactionStarted = false
  private(set) var securityFeedPosition: Int64?

  /// A lost connection ends the transaction.
  var isInsideTransaction: Bool { transactionStarted && !connection.isClosed }

  init(connection: PostgresConnection, statements: PlaceholderCache, watchdog: Duration, logger: Logger) {
    self.connection = connection
    self.statements = statements
    let limit = TimeAmount.nanoseconds(Int64(watchdog.components.seconds) * 1_000_000_000 + 5_000_000_000)
    self.logger = logger
    // One check a second, rather than a timer per statement (each a wake-up of the
    // connection's event loop).
    let sent = statementSent
    watching = connection.eventLoop.scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) {
      [weak connection] task in
      guard let connection, !connection.isClosed else { return task.cancel() }
      let started = sent.sent.load(ordering: .relaxed)
      if started != 0, NIODeadline.now().uptimeNanoseconds - started > UInt64(limit.nanoseconds) {
        let closing: EventLoopFuture<Void> = connection.close()
        _ = closing
      }
    }
  }

  deinit {
    watching.cancel()
    // A connection must be closed before it goes: closing keeps it until it is.
    guard !connection.isClosed else { return }
    let connection = connection
    let closing: EventLoopFuture<Void> = connection.close()
    closing.whenComplete { _ in _ = connection }
  }

  var dialect: SQLDialect { .postgres }

  var isClosed: Bool { connection.isClosed }

  /// A statement's answer: its rows, and how many rows it changed (nil when run as a
  /// prepared statement, whose command tag PostgresNIO does not give).
  private struct Answer {
    let rows: [PostgresRow]
    let changed: Int?
    /// Whether its cells are in binary whatever they say: PostgresNIO 1.33 asks for
    /// every result in binary, but describes a prepared statement's columns as
    /// PostgreSQL's Describe did, in text.
    var binary = false
  }

  /// Sends a statement without waiting for its answer; `counting`: the caller needs
  /// the number of rows it changed.
  private func start(_ sql: String, _ arguments: [any SQLBindable], counting: Bool = false) throws
    -> EventLoopFuture<Answer>
  {
    // PostgresNIO never answers a query written to a closed channel: fail it here. (One
    // that closes between this check and the write below stays unanswered: the watchdog
    // stops with the connection. The window is a few instructions wide.)
    guard !connection.isClosed else { throw ChannelError.ioOnClosedChannel }
    let control = sql == "BEGIN" || sql == "COMMIT" || sql == "ROLLBACK"
    if control {
      // Settings made with `set_config(…, TRUE)` end with the transaction.
      wantedScope = nil
      scopeOnConnection = nil
    } else if let wanted = wantedScope, wanted != scopeOnConnection {
      scopeOnConnection = wanted
      try send(wanted.statement(local: true, locking: 0), [wanted.company, wanted.all])
    }
    if !sql.hasPrefix("SELECT") { jobWrote = true }
    // The watchdog times the oldest statement not yet answered.
    if statementSent.sent.load(ordering: .relaxed) == 0 {
      statementSent.sent.store(NIODeadline.now().uptimeNanoseconds, ordering: .relaxed)
    }
    let values = arguments.map(\.sqlValue)
    let statement = control || counting ? nil : preparedStatement(sql, values)
    // Again: preparing waited for an answer, during which the connection may have closed.
    guard !connection.isClosed else { throw ChannelError.ioOnClosedChannel }
    if let statement {
      return statement.execute(values.map(Self.data))
        .map { Answer(rows: $0, changed: nil, binary: true) }
        .flatMapErrorThrowing { throw Self.current($0) }
    }
    var binds = PostgresBindings(capacity: values.count)
    for value in values {
      switch value {
      case .null: binds.appendNull()
      case .integer(let int): binds.append(int)
      case .real(let double): binds.append(double)
      case .text(let text): binds.append(text)
      case .blob(let data): binds.append(ByteBuffer(bytes: data))
      case .bool(let bool): binds.append(bool)
      }
    }
    let query = PostgresQuery(unsafeSQL: statements.postgres(sql), binds: binds)
    return connection.query(query, logger: logger).map { Answer(rows: $0.rows, changed: $0.metadata.rows) }
  }

  /// Statements this connection has prepared (PostgreSQL's named statements, parsed and
  /// planned once rather than with every run), by text and argument types; how often
  /// each other statement was run. A statement is prepared the second time it runs:
  /// one of the many shapes a multi-row INSERT takes, run once, is not.
  private var prepared: [PreparedKey: PreparedQuery] = [:]
  private var sightings: [PreparedKey: Int] = [:]
  /// The most statements one connection prepares, and counts.
  static let preparedLimit = 256

  private struct PreparedKey: Hashable {
    let sql: String
    /// Each argument's type as spelled in SQL (nil: a NULL).
    let types: [String?]
  }

  /// The prepared statement for `sql` with arguments of these types, preparing it now
  /// (waiting for the answer, once per connection) when it is due; nil: run it unnamed.
  private func preparedStatement(_ sql: String, _ values: [SQLValue]) -> PreparedQuery? {
    let key = PreparedKey(sql: sql, types: values.map(Self.type))
    if let known = prepared[key] { return known }
    guard prepared.count < Self.preparedLimit, sightings.count < Self.preparedLimit * 4 || sightings[key] != nil
    else { return nil }
    sightings[key, default: 0] += 1
    guard sightings[key] == 2 else { return nil }
    // Each argument's type is spelled in the text (`$1::int8`), as PostgresNIO declares
    // it for an unnamed statement: left to PostgreSQL's inference an int8 bound where it
    // infers int4 would fail. A NULL's is left to the inference, as there.
    let text = PlaceholderCache.numbered(sql, types: key.types)
    do {
      // The preparation runs after the statements sent before it; a failure (the
      // transaction already failed) leaves the statement to run unnamed, which reports
      // what is wrong the usual way.
      let statement = try connection.prepare(query: text).wait()
      sightings[key] = nil
      prepared[key] = statement
      return statement
    } catch {
      sightings[key] = 1
      return nil
    }
  }

  /// The type PostgresNIO binds `value` as, as spelled in SQL (nil: a NULL, untyped).
  private static func type(_ value: SQLValue) -> String? {
    switch value {
    case .null: nil
    case .integer: "int8"
    case .real: "float8"
    case .text: "text"
    case .blob: "bytea"
    case .bool: "bool"
    }
  }

  private static func data(_ value: SQLValue) -> PostgresData {
    switch value {
    case .null: PostgresData.null
    case .integer(let int): PostgresData(int64: int)
    case .real(let double): PostgresData(double: double)
    case .text(let text): PostgresData(string: text)
    case .blob(let data): PostgresData(bytes: data)
    case .bool(let bool): PostgresData(bool: bool)
    }
  }

  /// PostgresNIO's prepared statements report failures as its older `PostgresError`:
  /// the same failures as the unnamed statements', as those report them.
  private static func current(_ error: any Error) -> any Error {
    guard let legacy = error as? PostgresError else { return error }
    switch legacy {
    case .server(let message):
      return PostgresRefusal(
        sqlState: message.fields[.sqlState] ?? "?", message: message.fields[.message] ?? "")
    case .connectionClosed:
      return ChannelError.ioOnClosedChannel
    case .protocol(let reason):
      return PostgresProtocolFailure(reason: reason)
    }
  }

  /// Runs a statement and waits for its answer (and so for every statement sent before
  /// it: PostgresNIO runs a connection's statements in order).
  private func run(_ sql: String, _ arguments: [any SQLBindable], counting: Bool = false) throws -> Answer {
    let answer: Result<Answer, any Error>
    do {
      let own = try start(sql, arguments, counting: counting)
      answer = Result { try own.wait() }
    } catch {
      answer = .failure(error)
    }
    statementSent.sent.store(0, ordering: .relaxed)
    // A statement sent before that failed is why this one failed too (PostgreSQL
    // refuses the rest of a transaction after an error), or why the transaction will
    // not commit: its failure is the one to report.
    try settleSent()
    do {
      return try answer.get()
    } catch {
      jobFailed = true
      throw error
    }
  }

  /// Statements sent without waiting (`send`), with the job that sent each.
  private var sent: [(answer: EventLoopFuture<Answer>, job: Int?)] = []
  /// The job whose statements run now (`markJob`); nil outside a batch's jobs.
  private var job: Int?

  func send(_ sql: String, _ arguments: [any SQLBindable]) throws {
    sent.append((try start(sql, arguments), job))
  }

  /// The row scope a transaction's next statement must run in, and the one last set on
  /// the connection in this transaction: a transaction's scope is set only when a
  /// statement follows (a job whose writes are all gathered, `SnapshotStore`, sends
  /// none) and when it differs.
  private var wantedScope: RowScope.Settings?
  private var scopeOnConnection: RowScope.Settings?

  func setScope(_ settings: RowScope.Settings, local: Bool, locking: [Int64]) throws {
    guard local, locking.isEmpty else {
      let arguments: [any SQLBindable] = [settings.company, settings.all] + locking
      let statement = settings.statement(local: local, locking: locking.count)
      if local {
        wantedScope = settings
        scopeOnConnection = settings
        try send(statement, arguments)
      } else {
        wantedScope = nil
        scopeOnConnection = nil
        try execute(statement, arguments)
      }
      return
    }
    wantedScope = settings
  }

  /// Throws the first failure among the statements sent without waiting, which have all
  /// been answered by now.
  private func settleSent() throws {
    guard !sent.isEmpty else { return }
    let settling = sent
    sent.removeAll(keepingCapacity: true)
    for (answer, job) in settling {
      do {
        _ = try answer.wait()
      } catch {
        jobFailed = true
        // The database refused the statement: its job is the one to leave out. Any
        // other failure (a lost connection) is the whole batch's.
        let refused = Self.sqlState(of: error) != nil
        throw SentStatementFailed(job: refused ? job : nil, refused: refused, error: error)
      }
    }
  }

  var savepointsPerJob: Bool { false }

  func markJob(_ index: Int?) {
    job = index
    jobWrote = false
    jobFailed = false
    gatheredAtMark = batchSnapshots?.gathered ?? 0
  }

  /// `batchSnapshots.gathered` at `markJob`.
  private var gatheredAtMark = 0

  var jobLeftNoTrace: Bool { !jobWrote && !jobFailed && (batchSnapshots?.gathered ?? 0) == gatheredAtMark }

  @discardableResult
  func execute(_ sql: String, _ arguments: [any SQLBindable]) throws -> Int {
    try run(sql, arguments, counting: true).changed ?? 0
  }

  func rows(_ sql: String, _ arguments: [any SQLBindable]) throws -> [SQLRow] {
    try Self.rows(of: run(sql, arguments))
  }

  private static func rows(of result: Answer) throws -> [SQLRow] {
    guard let first = result.rows.first else { return [] }
    let columns = first.map(\.columnName)
    return try result.rows.map { row in
      SQLRow(
        columns: columns,
        values: try row.map { cell in
          var cell = cell
          if result.binary { cell.format = .binary }
          return try Self.value(cell)
        })
    }
  }

  private static func value(_ cell: PostgresCell) throws -> SQLValue {
    guard cell.bytes != nil else { return .null }
    switch cell.dataType {
    case .int8, .int4, .int2: return .integer(try cell.decode(Int64.self))
    case .bool: return .bool(try cell.decode(Bool.self))
    case .bytea: return .blob(try cell.decode(Data.self))
    case .float4, .float8: return .real(try cell.decode(Double.self))
    default: return .text(try cell.decode(String.self))
    }
  }

  func begin() throws {
    job = nil
    batchSnapshots = SnapshotStore(gathersWrites: gathersWrites)
    try send("BEGIN", [])
    transactionStarted = true
    if takesWriteLock { try send("SELECT pg_advisory_xact_lock(?)", [Self.writeLock]) }
  }

  /// The companies' documents the batch's jobs read and wrote, shared by its jobs: a job
  /// that fails after changing them fails the batch, which runs again from `begin`.
  private(set) var batchSnapshots: SnapshotStore?
  var gathersWrites = true

  var writesJournalAtOnce: Bool { batchSnapshots?.gathersWrites ?? false }

  /// Writes the batch's gathered documents, audit rows and feed rows, ordering its
  /// commit, in one statement (`PostgresJournal`), then commits: two round trips, one
  /// wait. The statement is sent without waiting (its failure is the batch's own, as
  /// the gathered documents' upsert's is: `CommitQueue` runs the batch again step by
  /// step); its answer, the feed's positions, is read once the COMMIT is answered.
  func commitJournal(_ produced: [CommitEffect]) throws -> [CommitEffect] {
    job = nil
    let (audits, effects) = Journal.splitAudit(produced)
    let changes = Journal.pendingChanges(effects)
    let (written, removed) = batchSnapshots?.takePending() ?? ([], [])
    try scope(.all, local: true)
    let fed = try start(
      PostgresJournal.statement,
      [Self.channel, notification, Self.orderLock]
        + PostgresJournal.rows(written: written, removed: removed, audits: audits, changes: changes))
    sent.append((fed, nil))
    try commit(effects: effects)
    let positions = try Self.rows(of: fed.wait()).compactMap { row -> Int64? in row["position"] }.sorted()
    guard positions.count == changes.count else {
      throw StoreError(.unavailable, "the change feed gave \(positions.count) numbers for \(changes.count) rows")
    }
    return Journal.positioned(effects, positions)
  }

  func orderCommit() throws {
    job = nil
    try send("SELECT pg_notify(?, ?), pg_advisory_xact_lock(?)", [Self.channel, notification, Self.orderLock])
  }

  func mayRetry(after error: any Error) -> Bool {
    guard let state = Self.sqlState(of: error) else { return false }
    // A deadlock (two writers each waiting for a company row the other locked) or a
    // serialisation failure: the database rolled this batch back whole.
    return state == "40P01" || state == "40001"
  }

  /// Commits; when the batch changed operators, API systems or sessions, first records
  /// that for the other instances (`security_feed`, under the ordering lock the batch
  /// holds; `orderCommit` has woken them).
  func commit(effects: [CommitEffect]) throws {
    job = nil
    defer {
      transactionStarted = false
      batchSnapshots = nil
    }
    securityFeedPosition = nil
    if let keys = SecurityFeed.keys(of: effects) {
      securityFeedPosition = try value(
        Int64.self, "INSERT INTO security_feed (changes, committed_at) VALUES (?, ?) RETURNING position",
        [keys, StoredDate.text(Date())])
    }
    try execute("COMMIT")
  }

  /// The channel commits are announced on.
  static let channel = "dms_settings"

  func rollback() {
    defer {
      transactionStarted = false
      batchSnapshots = nil
    }
    guard !connection.isClosed else {
      sent.removeAll()
      return
    }
    _ = try? execute("ROLLBACK")
  }

  /// Closes the connection (best effort).
  func close() {
    let closing: EventLoopFuture<Void> = connection.close()
    try? closing.wait()
  }
}

/// A statement sent without waiting (`SQLSession.send`) failed; `job` is the batch's job
/// that sent it when the database refused it (nil: the batch's own statement, or the
/// connection was lost).
struct SentStatementFailed: Error {
  let job: Int?
  /// Whether the database refused the statement (rather than the connection failing).
  let refused: Bool
  let error: any Error
}

/// A statement PostgreSQL refused, as a prepared statement reports it (an unnamed
/// one's is a `PSQLError` of code `.server`).
struct PostgresRefusal: Error, CustomStringConvertible {
  let sqlState: String
  let message: String

  var description: String { "PostgreSQL refused the statement (SQLSTATE \(sqlState)): \(message)" }
}

/// A prepared statement's answer PostgresNIO could not read.
struct PostgresProtocolFailure: Error {
  let reason: String
}

extension PostgresSession {
  /// The SQLSTATE of a statement's failure when PostgreSQL refused it (either way
  /// PostgresNIO reports that, or sent without waiting); nil for any other failure.
  static func sqlState(of error: any Error) -> String? {
    switch error {
    case let failed as SentStatementFailed: sqlState(of: failed.error)
    case let refusal as PostgresRefusal: refusal.sqlState
    case let psql as PSQLError where psql.code == .server: psql.serverInfo?[.sqlState] ?? "?"
    default: nil
    }
  }
}

/// When a session's statement under way was sent, shared with its watchdog.
final class StatementClock: Sendable {
  let sent = Atomic<UInt64>(0)
}

/// The `$n` spelling of each statement text, made once.
final class PlaceholderCache: Sendable {
  private let cache = Mutex<[String: String]>([:])

  func postgres(_ sql: String) -> String {
    if let known = cache.withLock({ $0[sql] }) { return known }
    let converted = Self.numbered(sql)
    cache.withLock { $0[sql] = converted }
    return converted
  }

  /// `?` → `$1`, `$2`, … outside quoted text; with `types`, `$1::int8` for each one
  /// given.
  static func numbered(_ sql: String, types: [String?] = []) -> String {
    var result = ""
    result.reserveCapacity(sql.utf8.count + 16)
    var number = 0
    var quote: Character?
    for character in sql {
      if let open = quote {
        if character == open { quote = nil }
        result.append(character)
      } else if character == "'" || character == "\"" {
        quote = character
        result.append(character)
      } else if character == "?" {
        number += 1
        result += "$\(number)"
        if number <= types.count, let type = types[number - 1] { result += "::\(type)" }
      } else {
        result.append(character)
      }
    }
    return result
  }
}

/// A writer whose connection could not be made: every batch fails with the reason.
final class UnreachableSession: WriterSession {
  let error: any Error

  init(_ error: any Error) { self.error = error }

  var dialect: SQLDialect { .postgres }
  @discardableResult
  func execute(_ sql: String, _ arguments: [any SQLBindable]) throws -> Int { throw error }
  func rows(_ sql: String, _ arguments: [any SQLBindable]) throws -> [SQLRow] { throw error }
  func begin() throws { throw error }
  func orderCommit() throws { throw error }
  var savepointsPerJob: Bool { false }
  func markJob(_ index: Int?) {}
  var jobLeftNoTrace: Bool { false }
  func commit(effects: [CommitEffect]) throws { throw error }
  func mayRetry(after error: any Error) -> Bool { false }
  func rollback() {}
  var isInsideTransaction: Bool { false }
  var securityFeedPosition: Int64? { nil }
}
