import GRDB
import Logging

/// The SQLite schema, as versioned migrations run at start-up (idempotent: a
/// migration runs once, recorded in `grdb_migrations`).
enum SQLiteMigrations {
  /// The rooms with tables of their own, each registering its migrations after the
  /// core ones (a new area adds one line here).
  static var rooms: [any SQLiteRoom.Type] { [AuditTrail.self, SecurityTables.self, MailQueueTables.self] }

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
    migrator.registerMigration("v2: document formats, change feed") { db in
      logger.info("migrating the database", metadata: ["migration": "v2"])
      try db.execute(
        sql: """
          ALTER TABLE company_document ADD COLUMN format INTEGER NOT NULL DEFAULT 1;  -- the record's format
          ALTER TABLE shared_document ADD COLUMN format INTEGER NOT NULL DEFAULT 1;
          CREATE TABLE change_feed (
            position INTEGER PRIMARY KEY,          -- commit order: the newest row is never deleted, so
                                                   -- each new one is one past it, never reused
            company_id INTEGER,                    -- NULL: the shared section; kept after a company is deleted
            company_code TEXT,
            area TEXT NOT NULL,
            kind TEXT NOT NULL,                    -- created, updated, deleted
            revision INTEGER NOT NULL,
            committed_at TEXT NOT NULL
          );
          """)
    }
    for room in rooms { room.registerMigrations(in: &migrator, logger: logger) }
    return migrator
  }
}

/// An area's own part of the SQLite schema.
protocol SQLiteRoom {
  /// Registers the room's migrations, named after the room ("audit v1: ...").
  static func registerMigrations(in migrator: inout DatabaseMigrator, logger: Logger)
}
