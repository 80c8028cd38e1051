import GRDB
import Logging

/// The SQLite schema, as versioned migrations run at start-up (idempotent: a
/// migration runs once, recorded in `grdb_migrations`).
enum SQLiteMigrations {
  static func migrator(logger: Logger) -> DatabaseMigrator {
    var migrator = DatabaseMigrator()
    migrator.registerMigration("v1: companies, documents, secrets, shared section") { db in
      logger.info("migrating the database", metadata: ["migration": "v1"])
      try db.execute(
        sql: """
          CREATE TABLE company (
            id INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: bound into secrets' encryption
            code TEXT NOT NULL,                    -- ERP-3 as entered
            code_key TEXT NOT NULL UNIQUE,         -- upper case: codes are unique ignoring case
            created_at TEXT NOT NULL
          );
          CREATE TABLE company_document (
            company_id INTEGER NOT NULL REFERENCES company(id) ON DELETE CASCADE,
            area TEXT NOT NULL,
            revision INTEGER NOT NULL,
            body BLOB NOT NULL,                    -- JSON of the area's value, secrets excluded
            updated_at TEXT NOT NULL,
            PRIMARY KEY (company_id, area)
          ) WITHOUT ROWID;
          CREATE TABLE company_secret (
            company_id INTEGER NOT NULL REFERENCES company(id) ON DELETE CASCADE,
            area TEXT NOT NULL,
            field TEXT NOT NULL,
            ciphertext BLOB NOT NULL,              -- AES-GCM, bound to (company_id, area, field)
            PRIMARY KEY (company_id, area, field)
          ) WITHOUT ROWID;
          CREATE TABLE shared_document (
            area TEXT PRIMARY KEY,
            revision INTEGER NOT NULL,
            body BLOB NOT NULL,
            updated_at TEXT NOT NULL
          );
          CREATE TABLE server_state (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL
          );
          """)
    }
    return migrator
  }
}
