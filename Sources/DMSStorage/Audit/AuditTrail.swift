import Foundation
import GRDB
import Logging

/// The audit: one row per change and per revealed secret, written in the change's
/// own transaction. Rows outlive the company they name (a deletion is audited too).
enum AuditTrail: SQLiteRoom {
  static func registerMigrations(in migrator: inout DatabaseMigrator, logger: Logger) {
    migrator.registerMigration("audit v1: audit_entry") { db in
      logger.info("migrating the database", metadata: ["migration": "audit v1"])
      try db.execute(
        sql: """
          CREATE TABLE audit_entry (
            id INTEGER PRIMARY KEY,               -- rows are never deleted: ids only grow
            company_id INTEGER,                   -- NULL: the shared section or the server
            company_code TEXT,
            at TEXT NOT NULL,
            action TEXT NOT NULL,                 -- create, update, delete, reveal, company.create, company.delete
            area TEXT NOT NULL,
            field TEXT NOT NULL DEFAULT '',       -- the secret revealed; the secrets changed (names only)
            revision INTEGER NOT NULL DEFAULT 0,
            detail TEXT NOT NULL DEFAULT '',      -- the reason given for a reveal; never a secret
            login TEXT NOT NULL DEFAULT '',
            peer TEXT NOT NULL,
            user_agent TEXT NOT NULL DEFAULT '',
            request_id TEXT NOT NULL DEFAULT ''
          );
          """)
    }
    migrator.registerMigration("audit v2: subject") { db in
      logger.info("migrating the database", metadata: ["migration": "audit v2"])
      try db.execute(
        sql: """
          ALTER TABLE audit_entry ADD COLUMN subject TEXT NOT NULL DEFAULT '';  -- the operator or API system changed
          """)
    }
  }

  /// One audit row.
  struct Entry: Sendable {
    var company: CompanyKey?
    var action: String
    var area: String
    var field = ""
    var revision: Int64 = 0
    var detail = ""
    var subject = ""
  }
}

extension AuditTrail: PostgresRoom {
  static var postgresMigrations: [PostgresMigration] {
    [
      PostgresMigration(
        "audit v1: audit_entry",
        [
          """
          CREATE TABLE audit_entry (
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,  -- rows are never deleted: ids only grow
            company_id BIGINT,                       -- NULL: the shared section or the server
            company_code TEXT,
            at TEXT NOT NULL,
            action TEXT NOT NULL,
            area TEXT NOT NULL,
            field TEXT NOT NULL DEFAULT '',
            revision BIGINT NOT NULL DEFAULT 0,
            detail TEXT NOT NULL DEFAULT '',
            login TEXT NOT NULL DEFAULT '',
            peer TEXT NOT NULL,
            user_agent TEXT NOT NULL DEFAULT '',
            request_id TEXT NOT NULL DEFAULT '',
            subject TEXT NOT NULL DEFAULT ''         -- the operator or API system changed
          )
          """
        ])
    ]
  }
}
