import GRDB
import Logging

/// The security room's tables: operators, their companies, their sessions.
enum SecurityTables: SQLiteRoom {
  static func registerMigrations(in migrator: inout DatabaseMigrator, logger: Logger) {
    migrator.registerMigration("security v1: operator, operator_company, operator_session") { db in
      logger.info("migrating the database", metadata: ["migration": "security v1"])
      try db.execute(
        sql: """
          CREATE TABLE operator (
            id INTEGER PRIMARY KEY AUTOINCREMENT,   -- never reused
            login TEXT NOT NULL,                    -- as entered
            login_key TEXT NOT NULL UNIQUE,         -- lower case: logins are unique ignoring case
            full_name TEXT NOT NULL DEFAULT '',
            email TEXT NOT NULL DEFAULT '',
            administrator INTEGER NOT NULL DEFAULT 0,
            disabled INTEGER NOT NULL DEFAULT 0,
            domain_login INTEGER NOT NULL DEFAULT 0,  -- DOM-4
            domain_account TEXT NOT NULL DEFAULT '',  -- DOM-4
            cooperating_system TEXT NOT NULL DEFAULT '',  -- APISYS-4
            repository_permission INTEGER NOT NULL DEFAULT 0,  -- STORE-2
            password_hash TEXT,                     -- PHC string ($scrypt$ln=17,r=8,p=1$salt$hash); NULL: none
            must_change_password INTEGER NOT NULL DEFAULT 0,
            revision INTEGER NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
          );
          CREATE TABLE operator_company (
            company_id INTEGER NOT NULL REFERENCES company(id) ON DELETE CASCADE,
            operator_id INTEGER NOT NULL REFERENCES operator(id) ON DELETE CASCADE,
            PRIMARY KEY (company_id, operator_id)
          ) WITHOUT ROWID;
          CREATE INDEX operator_company_by_operator ON operator_company (operator_id);
          CREATE TABLE operator_session (
            token_hash BLOB PRIMARY KEY,            -- SHA-256 of the token: the token itself is never stored
            operator_id INTEGER NOT NULL REFERENCES operator(id) ON DELETE CASCADE,
            scope TEXT NOT NULL,                    -- full, change-password
            created_at TEXT NOT NULL,
            expires_at TEXT NOT NULL,
            peer TEXT NOT NULL DEFAULT ''
          ) WITHOUT ROWID;
          CREATE INDEX operator_session_by_operator ON operator_session (operator_id);
          """)
    }
  }
}
