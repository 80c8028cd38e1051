import DMSDomain
import Foundation
import Logging

/// One versioned step of the PostgreSQL schema: statements run in one transaction and
/// recorded in `dms_migration` with it.
struct PostgresMigration: Sendable {
  let name: String
  let statements: [Statement]

  struct Statement: Sendable {
    let sql: String
    let arguments: [any SQLBindable]
  }

  init(_ name: String, _ statements: [String], then extra: [Statement] = []) {
    self.name = name
    self.statements = statements.map { Statement(sql: $0, arguments: []) } + extra
  }
}

/// An area's own part of the PostgreSQL schema (its SQLite part: `SQLiteRoom`).
protocol PostgresRoom {
  static var postgresMigrations: [PostgresMigration] { get }
}

/// The PostgreSQL schema: the same tables and columns as SQLite's, in PostgreSQL's
/// types (BIGINT identities, BOOLEAN, BYTEA; dates as the same sortable text), and
/// row-level security on every company-owned table.
enum PostgresMigrations {
  /// The rooms with tables of their own, after the core (a new area adds one line).
  static var rooms: [any PostgresRoom.Type] { [AuditTrail.self, SecurityTables.self, MailQueueTables.self] }

  /// Every migration, in order.
  static var all: [PostgresMigration] {
    [core] + rooms.flatMap { $0.postgresMigrations }
  }

  /// The statements that put a company-owned table under row-level security: a
  /// transaction sees a row only when `dms.company` (set per transaction by the store)
  /// is the row's company, or `dms.scope` is `all` (the registry's privileged path).
  /// With no company set it sees nothing. FORCE: the table's owner is bound too.
  static func companyOwned(_ table: String, policy: String? = nil) -> [String] {
    [
      "ALTER TABLE \(table) ENABLE ROW LEVEL SECURITY",
      "ALTER TABLE \(table) FORCE ROW LEVEL SECURITY",
      """
      CREATE POLICY \(policy ?? "\(table)_by_company") ON \(table)
        USING (current_setting('dms.scope', TRUE) = 'all'
          OR company_id = NULLIF(current_setting('dms.company', TRUE), '')::BIGINT)
      """,
    ]
  }

  static let core = PostgresMigration(
    "v1: companies, documents, secrets, shared section, change feed",
    [
      """
      CREATE TABLE company (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,  -- never reused: bound into secrets' encryption
        code TEXT NOT NULL,                                  -- ERP-3 as entered
        code_key TEXT NOT NULL UNIQUE,                       -- upper case: unique ignoring case
        created_at TEXT NOT NULL
      )
      """,
      """
      CREATE TABLE company_document (
        company_id BIGINT NOT NULL REFERENCES company(id) ON DELETE CASCADE,
        area TEXT NOT NULL,
        revision BIGINT NOT NULL,
        body BYTEA NOT NULL,                                 -- the area's record, secrets excluded
        format BIGINT NOT NULL DEFAULT 1,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (company_id, area)
      )
      """,
      """
      CREATE TABLE company_secret (
        company_id BIGINT NOT NULL REFERENCES company(id) ON DELETE CASCADE,
        area TEXT NOT NULL,
        field TEXT NOT NULL,
        ciphertext BYTEA NOT NULL,                           -- AES-GCM, sealed by the server
        PRIMARY KEY (company_id, area, field)
      )
      """,
      """
      CREATE TABLE shared_document (
        area TEXT PRIMARY KEY,
        revision BIGINT NOT NULL,
        body BYTEA NOT NULL,
        format BIGINT NOT NULL DEFAULT 1,
        updated_at TEXT NOT NULL
      )
      """,
      "CREATE TABLE server_state (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
      """
      CREATE TABLE change_feed (
        position BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,  -- commit order: writers hold one lock
        company_id BIGINT,                                   -- NULL: the shared section; kept after deletion
        company_code TEXT,
        area TEXT NOT NULL,
        kind TEXT NOT NULL,
        revision BIGINT NOT NULL,
        committed_at TEXT NOT NULL
      )
      """,
    ] + companyOwned("company_document") + companyOwned("company_secret"))

  /// The key of the session lock migrations run under: two instances starting together
  /// migrate once.
  static let lock: Int64 = 0x0444_4D53_4D49_4752  // "DMSMIGR"

  /// How long migrating may take, the wait for another instance's included: longer than
  /// a call's statement timeout (`storage.postgres.statement-timeout-ms`), which a
  /// migration on a large database, or the wait behind one, would outlast.
  static let timeLimit: Duration = .seconds(600)

  /// Runs the migrations not yet recorded, under the advisory lock, each in its own
  /// transaction (`sql`: a connection whose watchdog allows `timeLimit`).
  static func migrate(_ sql: PostgresSession, logger: Logger) throws {
    try sql.execute("SET statement_timeout = \(timeLimit.milliseconds)")
    if try sql.value(Bool.self, "SELECT pg_try_advisory_lock(?)", [lock]) != true {
      logger.notice("storage: another instance is migrating the database; waiting for it")
      try sql.execute("SELECT pg_advisory_lock(?)", [lock])
    }
    defer { _ = try? sql.execute("SELECT pg_advisory_unlock(?)", [lock]) }
    try sql.execute("CREATE TABLE IF NOT EXISTS dms_migration (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    let done = Set(try sql.values(String.self, "SELECT name FROM dms_migration"))
    let known = Set(all.map(\.name))
    for unknown in done.subtracting(known).sorted() {
      logger.warning(
        "the database has a migration this server does not know (a newer version ran on it)",
        metadata: ["migration": "\(unknown)"])
    }
    for migration in all where !done.contains(migration.name) {
      logger.info("migrating the database", metadata: ["migration": "\(migration.name)"])
      try sql.execute("BEGIN")
      do {
        for statement in migration.statements { try sql.execute(statement.sql, statement.arguments) }
        try sql.execute(
          "INSERT INTO dms_migration (name, applied_at) VALUES (?, ?)", [migration.name, StoredDate.text(Date())])
        try sql.execute("COMMIT")
      } catch {
        _ = try? sql.execute("ROLLBACK")
        throw error
      }
    }
  }

  /// Lets `role` (the server's, when another role owns the tables) read and write
  /// every table, and nothing more: no DDL, no ownership, so row-level security binds
  /// it. Run after every migration (idempotent).
  static func grant(to role: String, _ sql: PostgresSession) throws {
    let quoted = "\"" + role.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    try sql.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO \(quoted)")
    try sql.execute("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO \(quoted)")
  }
}
