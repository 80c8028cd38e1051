import GRDB
import Logging

/// The mail queue's tables, under the original's names (MAIL-2, MAIL-3): the messages
/// (`ProcessMails`), their attachments (`ProcessMailsAttachment`) and the work log
/// (`DF_WorkLogEntries`), each row a company's. Quoted everywhere so that PostgreSQL keeps
/// the names' case.
enum MailQueueTables: SQLiteRoom {
  static func registerMigrations(in migrator: inout DatabaseMigrator, logger: Logger) {
    migrator.registerMigration("mail v1: ProcessMails, ProcessMailsAttachment, DF_WorkLogEntries") { db in
      logger.info("migrating the database", metadata: ["migration": "mail v1"])
      try db.execute(
        sql: """
          CREATE TABLE "ProcessMails" (
            id INTEGER PRIMARY KEY AUTOINCREMENT,   -- never reused
            company_id INTEGER NOT NULL REFERENCES company(id) ON DELETE CASCADE,
            message_id TEXT NOT NULL,               -- the Message-ID header: the same on every attempt
            state TEXT NOT NULL,                    -- queued, sending, sent, failed (MailDeliveryState)
            to_addresses TEXT NOT NULL,             -- JSON arrays of addr-specs
            cc_addresses TEXT NOT NULL,
            bcc_addresses TEXT NOT NULL,
            subject TEXT NOT NULL,
            body_text TEXT NOT NULL,
            body_html TEXT NOT NULL,
            size_bytes INTEGER NOT NULL,            -- as sent, near enough
            attempts INTEGER NOT NULL DEFAULT 0,    -- counted when claimed
            next_attempt_at TEXT NOT NULL,
            lease_until TEXT,                       -- sending: the worker's claim ends then
            lease_token TEXT,                       -- the claim's, so that a late worker changes nothing
            last_error TEXT NOT NULL DEFAULT '',
            created_at TEXT NOT NULL,
            sent_at TEXT,
            enqueued_by TEXT NOT NULL DEFAULT ''
          );
          CREATE INDEX process_mails_due ON "ProcessMails" (state, next_attempt_at);
          CREATE INDEX process_mails_by_company ON "ProcessMails" (company_id, id);
          CREATE TABLE "ProcessMailsAttachment" (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            mail_id INTEGER NOT NULL REFERENCES "ProcessMails"(id) ON DELETE CASCADE,
            company_id INTEGER NOT NULL REFERENCES company(id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            file_name TEXT NOT NULL,
            content_type TEXT NOT NULL,
            content BLOB NOT NULL
          );
          CREATE INDEX process_mails_attachment_by_mail ON "ProcessMailsAttachment" (mail_id, position);
          CREATE TABLE "DF_WorkLogEntries" (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            company_id INTEGER NOT NULL REFERENCES company(id) ON DELETE CASCADE,
            mail_id INTEGER,                        -- the message's (it may be deleted since)
            message_id TEXT NOT NULL DEFAULT '',
            logged_at TEXT NOT NULL,
            attempt INTEGER NOT NULL DEFAULT 0,
            outcome TEXT NOT NULL,                  -- transient, permanent, gave_up
            reply_code INTEGER NOT NULL DEFAULT 0,
            message TEXT NOT NULL                   -- the server's reply or what failed; never a secret
          );
          CREATE INDEX df_work_log_entries_by_company ON "DF_WorkLogEntries" (company_id, id);
          """)
    }
  }
}

extension MailQueueTables: PostgresRoom {
  static var postgresMigrations: [PostgresMigration] {
    [
      PostgresMigration(
        "mail v1: ProcessMails, ProcessMailsAttachment, DF_WorkLogEntries",
        [
          """
          CREATE TABLE "ProcessMails" (
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            company_id BIGINT NOT NULL REFERENCES company(id) ON DELETE CASCADE,
            message_id TEXT NOT NULL,
            state TEXT NOT NULL,
            to_addresses TEXT NOT NULL,
            cc_addresses TEXT NOT NULL,
            bcc_addresses TEXT NOT NULL,
            subject TEXT NOT NULL,
            body_text TEXT NOT NULL,
            body_html TEXT NOT NULL,
            size_bytes BIGINT NOT NULL,
            attempts BIGINT NOT NULL DEFAULT 0,
            next_attempt_at TEXT NOT NULL,
            lease_until TEXT,
            lease_token TEXT,
            last_error TEXT NOT NULL DEFAULT '',
            created_at TEXT NOT NULL,
            sent_at TEXT,
            enqueued_by TEXT NOT NULL DEFAULT ''
          )
          """,
          #"CREATE INDEX process_mails_due ON "ProcessMails" (state, next_attempt_at)"#,
          #"CREATE INDEX process_mails_by_company ON "ProcessMails" (company_id, id)"#,
          """
          CREATE TABLE "ProcessMailsAttachment" (
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            mail_id BIGINT NOT NULL REFERENCES "ProcessMails"(id) ON DELETE CASCADE,
            company_id BIGINT NOT NULL REFERENCES company(id) ON DELETE CASCADE,
            position BIGINT NOT NULL,
            file_name TEXT NOT NULL,
            content_type TEXT NOT NULL,
            content BYTEA NOT NULL
          )
          """,
          #"CREATE INDEX process_mails_attachment_by_mail ON "ProcessMailsAttachment" (mail_id, position)"#,
          """
          CREATE TABLE "DF_WorkLogEntries" (
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            company_id BIGINT NOT NULL REFERENCES company(id) ON DELETE CASCADE,
            mail_id BIGINT,
            message_id TEXT NOT NULL DEFAULT '',
            logged_at TEXT NOT NULL,
            attempt BIGINT NOT NULL DEFAULT 0,
            outcome TEXT NOT NULL,
            reply_code BIGINT NOT NULL DEFAULT 0,
            message TEXT NOT NULL
          )
          """,
          #"CREATE INDEX df_work_log_entries_by_company ON "DF_WorkLogEntries" (company_id, id)"#,
        ]
          + PostgresMigrations.companyOwned(#""ProcessMails""#, policy: "process_mails_by_company")
          + PostgresMigrations.companyOwned(#""ProcessMailsAttachment""#, policy: "process_mails_attachment_by_company")
          + PostgresMigrations.companyOwned(#""DF_WorkLogEntries""#, policy: "df_work_log_entries_by_company"))
    ]
  }
}
