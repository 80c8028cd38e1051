import Foundation

/// The store's SQL, written once for both backends.
///
/// Every room writes its statements against `SQLSession`: `?` placeholders, SQL that
/// SQLite (3.40) and PostgreSQL (15) both read (`RETURNING`, `ON CONFLICT … DO
/// UPDATE`, `IS DISTINCT FROM`, `TRUE`/`FALSE`, `CAST(? AS BIGINT)` where a NULL
/// argument needs a type), and `SQLDialect` for the few spellings that differ. The
/// SQLite backend runs them through GRDB's cached statements; the PostgreSQL one turns
/// `?` into `$n` once per statement text and runs them on its connection.

/// A value bound to a statement or read from a row.
enum SQLValue: Sendable, Hashable {
  case null
  case integer(Int64)
  case real(Double)
  case text(String)
  case blob(Data)
  case bool(Bool)
}

/// What can be bound to a `?`.
protocol SQLBindable: Sendable {
  var sqlValue: SQLValue { get }
}

extension Int64: SQLBindable { var sqlValue: SQLValue { .integer(self) } }
extension Int: SQLBindable { var sqlValue: SQLValue { .integer(Int64(self)) } }
extension String: SQLBindable { var sqlValue: SQLValue { .text(self) } }
extension Data: SQLBindable { var sqlValue: SQLValue { .blob(self) } }
extension Bool: SQLBindable { var sqlValue: SQLValue { .bool(self) } }
extension Double: SQLBindable { var sqlValue: SQLValue { .real(self) } }
extension Date: SQLBindable { var sqlValue: SQLValue { .text(StoredDate.text(self)) } }
extension Optional: SQLBindable where Wrapped: SQLBindable {
  var sqlValue: SQLValue { self?.sqlValue ?? .null }
}

/// What a column can be read as.
protocol SQLDecodable {
  /// The value of `value`, or nil when it is not one (a schema mistake).
  static func decode(_ value: SQLValue) -> Self?
}

extension Int64: SQLDecodable {
  static func decode(_ value: SQLValue) -> Int64? {
    switch value {
    case .integer(let int): int
    case .bool(let bool): bool ? 1 : 0
    case .real(let double): Int64(exactly: double)
    default: nil
    }
  }
}

extension Int: SQLDecodable {
  static func decode(_ value: SQLValue) -> Int? { Int64.decode(value).map { Int($0) } }
}

extension Bool: SQLDecodable {
  static func decode(_ value: SQLValue) -> Bool? {
    switch value {
    case .bool(let bool): bool
    case .integer(let int): int != 0
    default: nil
    }
  }
}

extension String: SQLDecodable {
  static func decode(_ value: SQLValue) -> String? {
    switch value {
    case .text(let text): text
    case .integer(let int): String(int)
    case .blob(let data): String(data: data, encoding: .utf8)
    default: nil
    }
  }
}

extension Data: SQLDecodable {
  static func decode(_ value: SQLValue) -> Data? {
    switch value {
    case .blob(let data): data
    case .text(let text): Data(text.utf8)
    default: nil
    }
  }
}

extension Date: SQLDecodable {
  static func decode(_ value: SQLValue) -> Date? {
    guard case .text(let text) = value else { return nil }
    return StoredDate.parse(text)
  }
}

extension Optional: SQLDecodable where Wrapped: SQLDecodable {
  static func decode(_ value: SQLValue) -> Wrapped?? {
    if case .null = value { return .some(nil) }
    return Wrapped.decode(value).map { .some($0) }
  }
}

/// One row of a result, read by column name or position.
struct SQLRow {
  /// The result's column names (shared by its rows).
  let columns: [String]
  let values: [SQLValue]

  /// Column `name` as `T`. A column of another type is a mistake in the schema or the
  /// query, as with GRDB's rows: it stops the process with the column's name.
  subscript<T: SQLDecodable>(_ name: String) -> T {
    guard let index = columns.firstIndex(of: name) else {
      preconditionFailure("no column \(name) in the result (\(columns))")
    }
    return self[index]
  }

  /// A column of `SQLDialect.joined`, split back into its values (none for NULL).
  func joinedList(_ name: String) -> [String] {
    (self[name] as String?).map { $0.split(separator: "\u{1F}").map(String.init) } ?? []
  }

  /// Column `index` as `T`.
  subscript<T: SQLDecodable>(_ index: Int) -> T {
    guard let decoded = T.decode(values[index]) else {
      preconditionFailure("column \(columns[index]) holds \(values[index]), not \(T.self)")
    }
    return decoded
  }
}

/// The few spellings the two backends do not share.
struct SQLDialect: Sendable {
  /// The backend's name, for messages.
  let name: String
  /// An aggregate joining `column` of the rows with U+001F, ordered by `orderedBy`
  /// (SQLite keeps the order of an ordered subquery; PostgreSQL says it).
  let joined: @Sendable (_ column: String, _ orderedBy: String) -> String
  /// Whether the backend has row-level security to scope (PostgreSQL).
  let rowLevelSecurity: Bool
  /// Whether several instances may share the database, each following the others'
  /// commits (PostgreSQL: `security_feed`, `pg_notify`).
  let shared: Bool

  static let sqlite = SQLDialect(
    name: "SQLite", joined: { column, _ in "group_concat(\(column), char(31))" }, rowLevelSecurity: false,
    shared: false)
  static let postgres = SQLDialect(
    name: "PostgreSQL", joined: { column, order in "string_agg(\(column), chr(31) ORDER BY \(order))" },
    rowLevelSecurity: true, shared: true)
}

/// A connection's statements, inside whatever transaction is open on it.
protocol SQLSession: AnyObject {
  var dialect: SQLDialect { get }

  /// Runs a statement; the number of rows it changed.
  @discardableResult
  func execute(_ sql: String, _ arguments: [any SQLBindable]) throws -> Int

  /// Runs a query; its rows.
  func rows(_ sql: String, _ arguments: [any SQLBindable]) throws -> [SQLRow]
  /// Runs a statement whose outcome the caller does not wait for: PostgreSQL sends it
  /// and goes on, and its failure is thrown by the next statement that waits (at the
  /// latest the COMMIT, as `SentStatementFailed`); SQLite runs it at once.
  func send(_ sql: String, _ arguments: [any SQLBindable]) throws
  /// Sets the row scope's settings for the statements that follow (`scope(_:local:)`);
  /// `locking`: companies whose rows the same statement locks, in this order.
  func setScope(_ settings: RowScope.Settings, local: Bool, locking: [Int64]) throws
}

extension SQLSession {
  func send(_ sql: String, _ arguments: [any SQLBindable]) throws {
    try execute(sql, arguments)
  }

  func setScope(_ settings: RowScope.Settings, local: Bool, locking: [Int64]) throws {
    let statement = settings.statement(local: local, locking: locking.count)
    let arguments: [any SQLBindable] = [settings.company, settings.all] + locking
    // A transaction's scope is sent without waiting (its next read waits for it); a
    // reader's, for a connection that may sit idle afterwards, is waited for.
    if local { try send(statement, arguments) } else { try execute(statement, arguments) }
  }
}

extension SQLSession {
  @discardableResult
  func execute(_ sql: String) throws -> Int { try execute(sql, []) }

  func rows(_ sql: String) throws -> [SQLRow] { try rows(sql, []) }

  /// The first row, if any.
  func row(_ sql: String, _ arguments: [any SQLBindable] = []) throws -> SQLRow? {
    try rows(sql, arguments).first
  }

  /// The first column of the first row; nil when there is no row or it is NULL.
  func value<T: SQLDecodable>(_ type: T.Type, _ sql: String, _ arguments: [any SQLBindable] = []) throws -> T? {
    guard let row = try rows(sql, arguments).first, !row.values.isEmpty else { return nil }
    return Optional<T>.decode(row.values[0]) ?? nil
  }

  /// The first column of every row (NULLs left out).
  func values<T: SQLDecodable>(_ type: T.Type, _ sql: String, _ arguments: [any SQLBindable] = []) throws -> [T] {
    try rows(sql, arguments).compactMap { row in row.values.first.flatMap { T.decode($0) } }
  }

  /// Scopes what follows to one company for row-level security (PostgreSQL's
  /// policies read `dms.company`; `dms.scope = all` is the privileged registry path).
  /// SQLite has no such policies: every statement filters on `company_id` itself.
  func scope(_ scope: RowScope, local: Bool) throws {
    guard dialect.rowLevelSecurity else { return }
    try setScope(scope.settings, local: local, locking: [])
  }
}

extension SQLSession {
  /// Scopes a write transaction's statements (`scope(_:local:)`) and, on a database
  /// several writers share, locks a company-scoped one's company row until the commit:
  /// its writes then wait for any other writer of that company (another connection,
  /// another instance) to commit, and read what it committed. One statement.
  func scopeWrite(_ scope: RowScope) throws {
    guard dialect.shared, case .company(let id) = scope else { return try self.scope(scope, local: true) }
    try setScope(scope.settings, local: true, locking: [id])
  }

  /// Locks a company's row until the commit, on a database several writers share (a
  /// registry transaction about to change one of its documents); nothing on SQLite,
  /// whose one writer excludes every other.
  func lockCompany(_ id: Int64) throws {
    guard dialect.shared else { return }
    try send("SELECT id FROM company WHERE id = ? FOR UPDATE", [id])
  }
}

/// Which companies' rows a statement may see under row-level security.
enum RowScope: Sendable, Hashable {
  /// One company's.
  case company(Int64)
  /// Every company's: the registry, operators, the administrator's list.
  case all
  /// None: tables of no company only (the shared section, the audit, the feed).
  case none

  /// The values of the settings the policies read.
  struct Settings: Equatable {
    /// `dms.company`: the company's id, or empty.
    let company: String
    /// `dms.scope`: `all`, or empty.
    let all: String

    /// The statement that sets them (`local`: until the transaction ends), and locks the
    /// rows of the `locking` companies whose ids follow its two arguments, in that order.
    func statement(local: Bool, locking: Int) -> String {
      let until = local ? "TRUE" : "FALSE"
      let lock =
        switch locking {
        case 0: ""
        case 1: ", (SELECT id FROM company WHERE id = ? FOR UPDATE)"
        default:
          """
          , (SELECT count(*) FROM (SELECT id FROM company WHERE id IN \(Journal.placeholders(rows: 1, columns: locking))
            ORDER BY id FOR UPDATE) AS locked)
          """
        }
      return "SELECT set_config('dms.company', ?, \(until)), set_config('dms.scope', ?, \(until))\(lock)"
    }
  }

  var settings: Settings {
    switch self {
    case .company(let id): Settings(company: String(id), all: "")
    case .all: Settings(company: "", all: "all")
    case .none: Settings(company: "", all: "")
    }
  }
}
