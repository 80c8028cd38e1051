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
  private let watchdog: TimeAmount
  /// The key of the advisory lock a writing transaction holds until it ends: one
  /// instance's batch at a time writes, so revisions and the feed's positions follow
  /// commit order across instances.
  static let writeLock: Int64 = 0x0444_4D53_5752_4954  // "DMSWRIT"
  private var transactionStarted = false
  private(set) var securityFeedPosition: Int64?

  /// A lost connection ends the transaction.
  var isInsideTransaction: Bool { transactionStarted && !connection.isClosed }

  init(connection: PostgresConnection, statements: PlaceholderCache, watchdog: Duration, logger: Logger) {
    self.connection = connection
    self.statements = statements
    self.watchdog = .nanoseconds(Int64(watchdog.components.seconds) * 1_000_000_000 + 5_000_000_000)
    self.logger = logger
  }

  deinit {
    // A connection must be closed before it goes: closing keeps it until it is.
    guard !connection.isClosed else { return }
    let connection = connection
    let closing: EventLoopFuture<Void> = connection.close()
    closing.whenComplete { _ in _ = connection }
  }

  var dialect: SQLDialect { .postgres }

  var isClosed: Bool { connection.isClosed }

  private func run(_ sql: String, _ arguments: [any SQLBindable]) throws -> PostgresQueryResult {
    // PostgresNIO never answers a query written to a closed channel: fail it here (one
    // that closes after this check is failed by the watchdog).
    guard !connection.isClosed else { throw ChannelError.ioOnClosedChannel }
    var binds = PostgresBindings(capacity: arguments.count)
    for argument in arguments {
      switch argument.sqlValue {
      case .null: binds.appendNull()
      case .integer(let int): binds.append(int)
      case .real(let double): binds.append(double)
      case .text(let text): binds.append(text)
      case .blob(let data): binds.append(ByteBuffer(bytes: data))
      case .bool(let bool): binds.append(bool)
      }
    }
    let query = PostgresQuery(unsafeSQL: statements.postgres(sql), binds: binds)
    let future = connection.query(query, logger: logger)
    let timer = connection.eventLoop.scheduleTask(in: watchdog) { [connection] in
      let closing: EventLoopFuture<Void> = connection.close()
      _ = closing
    }
    defer { timer.cancel() }
    return try future.wait()
  }

  @discardableResult
  func execute(_ sql: String, _ arguments: [any SQLBindable]) throws -> Int {
    try run(sql, arguments).metadata.rows ?? 0
  }

  func rows(_ sql: String, _ arguments: [any SQLBindable]) throws -> [SQLRow] {
    let result = try run(sql, arguments)
    guard let first = result.rows.first else { return [] }
    let columns = first.map(\.columnName)
    return try result.rows.map { row in
      SQLRow(columns: columns, values: try row.map(Self.value))
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
    try execute("BEGIN")
    transactionStarted = true
    try execute("SELECT pg_advisory_xact_lock(?)", [Self.writeLock])
  }

  /// Commits; when the batch changed anything, first records the security changes for
  /// the other instances (`security_feed`) and wakes them (`pg_notify`, delivered at
  /// the commit).
  func commit(effects: [CommitEffect]) throws {
    defer { transactionStarted = false }
    securityFeedPosition = nil
    if !effects.isEmpty {
      if let keys = SecurityFeed.keys(of: effects) {
        securityFeedPosition = try value(
          Int64.self, "INSERT INTO security_feed (changes, committed_at) VALUES (?, ?) RETURNING position",
          [keys, StoredDate.text(Date())])
      }
      try execute("SELECT pg_notify(?, '')", [Self.channel])
    }
    try execute("COMMIT")
  }

  /// The channel commits are announced on.
  static let channel = "dms_settings"

  func rollback() {
    defer { transactionStarted = false }
    guard !connection.isClosed else { return }
    _ = try? execute("ROLLBACK")
  }

  /// Closes the connection (best effort).
  func close() {
    let closing: EventLoopFuture<Void> = connection.close()
    try? closing.wait()
  }
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

  /// `?` → `$1`, `$2`, … outside quoted text.
  static func numbered(_ sql: String) -> String {
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
  func commit(effects: [CommitEffect]) throws { throw error }
  func rollback() {}
  var isInsideTransaction: Bool { false }
  var securityFeedPosition: Int64? { nil }
}
