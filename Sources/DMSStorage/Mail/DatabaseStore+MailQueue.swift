import DMSDomain
import Foundation

extension DatabaseStore: MailQueue {
  public var mailQueue: any MailQueue { self }

  /// A listing's columns (`m`: "ProcessMails", `c`: company).
  private static func queuedColumns(_ dialect: SQLDialect) -> String {
    """
    m.id, m.company_id, c.code AS company_code, m.message_id, m.state, m.to_addresses, m.cc_addresses,
    m.bcc_addresses, m.subject, m.size_bytes, m.attempts, m.next_attempt_at, m.last_error, m.created_at, m.sent_at,
    (SELECT \(dialect.joined("a.file_name", "a.position"))
      FROM (SELECT file_name, position FROM "ProcessMailsAttachment" WHERE mail_id = m.id ORDER BY position) a)
      AS attachment_names
    """
  }

  public func enqueue(_ mail: OutgoingMail, messageID: String, for company: CompanyKey, by actor: AuditActor)
    async throws -> QueuedMail
  {
    let size = mail.encodedSize
    return try await commit(.company(company.id), by: actor) { tx in
      let sql = tx.sql
      let id = try sql.value(
        Int64.self,
        """
        INSERT INTO "ProcessMails" (company_id, message_id, state, to_addresses, cc_addresses, bcc_addresses, subject,
          body_text, body_html, size_bytes, next_attempt_at, created_at, enqueued_by)
        VALUES (?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id
        """,
        [
          company.id, messageID, Self.json(mail.to), Self.json(mail.cc), Self.json(mail.bcc), mail.subject, mail.text,
          mail.html, size, tx.nowText, tx.nowText, actor.login,
        ])
      guard let id else { throw StoreError(.unavailable, "the queue did not return the message's id") }
      for (position, attachment) in mail.attachments.enumerated() {
        try sql.execute(
          """
          INSERT INTO "ProcessMailsAttachment" (mail_id, company_id, position, file_name, content_type, content)
          VALUES (?, ?, ?, ?, ?, ?)
          """,
          [id, company.id, position, attachment.fileName, attachment.contentType, Data(attachment.content)])
      }
      // As written: no read back.
      return QueuedMail(
        id: id, company: company, messageID: messageID, state: .queued, to: mail.to, cc: mail.cc, bcc: mail.bcc,
        subject: mail.subject, attachmentNames: mail.attachments.map(\.fileName), sizeBytes: Int64(size),
        attempts: 0, nextAttemptAt: tx.now, lastError: "", createdAt: tx.now, sentAt: nil)
    }
  }

  /// One of the company's messages.
  func queuedMail(_ id: Int64, of company: CompanyKey) async throws -> QueuedMail? {
    try await read(.company(company.id)) { sql in
      try sql.row(
        """
        SELECT \(Self.queuedColumns(sql.dialect)) FROM "ProcessMails" m JOIN company c ON c.id = m.company_id
        WHERE m.company_id = ? AND m.id = ?
        """, [company.id, id]
      ).map(Self.queued(row:))
    }
  }

  public func queuedMails(of company: CompanyKey, states: Set<MailDeliveryState>, afterID: Int64, limit: Int)
    async throws -> [QueuedMail]
  {
    let states = states.isEmpty ? MailDeliveryState.allCases : states.sorted { $0.rawValue < $1.rawValue }
    return try await read(.company(company.id)) { sql in
      try sql.rows(
        """
        SELECT \(Self.queuedColumns(sql.dialect)) FROM "ProcessMails" m JOIN company c ON c.id = m.company_id
        WHERE m.company_id = ? AND m.id > ? AND m.state IN \(Journal.placeholders(rows: 1, columns: states.count))
        ORDER BY m.id LIMIT ?
        """, [company.id, afterID] + states.map(\.rawValue) + [limit]
      ).map(Self.queued(row:))
    }
  }

  public func claimDueMails(now: Date, lease: Double, limit: Int) async throws -> [ClaimedMail] {
    let token = UUID().uuidString
    let nowText = StoredDate.text(now)
    let until = StoredDate.text(now.addingTimeInterval(lease))
    return try await commit(.all, by: .system("mail worker")) { tx in
      let sql = tx.sql
      // On PostgreSQL, rows another instance is claiming are skipped, not waited for.
      let skipLocked = sql.dialect.shared ? " FOR UPDATE SKIP LOCKED" : ""
      let ids = try sql.values(
        Int64.self,
        """
        UPDATE "ProcessMails" SET state = 'sending', attempts = attempts + 1, lease_until = ?, lease_token = ?
        WHERE id IN (
          SELECT id FROM "ProcessMails"
          WHERE (state = 'queued' AND next_attempt_at <= ?) OR (state = 'sending' AND lease_until <= ?)
          ORDER BY next_attempt_at, id LIMIT ?\(skipLocked))
        RETURNING id
        """, [until, token, nowText, nowText, limit])
      guard !ids.isEmpty else { return [] }
      let list = Journal.placeholders(rows: 1, columns: ids.count)
      let queued = try sql.rows(
        """
        SELECT \(Self.queuedColumns(sql.dialect)), m.body_text, m.body_html
        FROM "ProcessMails" m JOIN company c ON c.id = m.company_id WHERE m.id IN \(list) ORDER BY m.id
        """, ids)
      var attachments: [Int64: [OutgoingMail.Attachment]] = [:]
      for row in try sql.rows(
        """
        SELECT mail_id, file_name, content_type, content FROM "ProcessMailsAttachment"
        WHERE mail_id IN \(list) ORDER BY mail_id, position
        """, ids)
      {
        attachments[row["mail_id"], default: []].append(
          .init(fileName: row["file_name"], contentType: row["content_type"], content: Array(row["content"] as Data)))
      }
      return queued.map { row in
        let summary = Self.queued(row: row)
        let mail = OutgoingMail(
          to: summary.to, cc: summary.cc, bcc: summary.bcc, subject: summary.subject, text: row["body_text"],
          html: row["body_html"], attachments: attachments[summary.id] ?? [])
        return ClaimedMail(queued: summary, mail: mail, lease: token)
      }
    }
  }

  public func nextDueDate() async throws -> Date? {
    try await read(.all) { sql in
      let text = try sql.value(
        String.self,
        """
        SELECT MIN(due) FROM (
          SELECT MIN(next_attempt_at) AS due FROM "ProcessMails" WHERE state = 'queued'
          UNION ALL SELECT MIN(lease_until) FROM "ProcessMails" WHERE state = 'sending') d
        """)
      return text.flatMap(StoredDate.parse)
    }
  }

  public func recordSent(_ claims: [ClaimedMail], at: Date, delete: Bool) async throws {
    guard !claims.isEmpty else { return }
    try await commit(.all, by: .system("mail worker")) { tx in
      for claim in claims {
        if delete {
          // CFG-3 true: gone with its attachments (ON DELETE CASCADE).
          try tx.sql.execute(
            #"DELETE FROM "ProcessMails" WHERE id = ? AND lease_token = ? AND state = 'sending'"#,
            [claim.queued.id, claim.lease])
        } else {
          try tx.sql.execute(
            """
            UPDATE "ProcessMails" SET state = 'sent', sent_at = ?, lease_until = NULL, lease_token = NULL
            WHERE id = ? AND lease_token = ? AND state = 'sending'
            """, [StoredDate.text(at), claim.queued.id, claim.lease])
        }
      }
    }
  }

  public func recordFailure(_ claim: ClaimedMail, outcome: MailFailureOutcome, at: Date, retryAt: Date?) async throws {
    try await commit(.all, by: .system("mail worker")) { tx in
      let sql = tx.sql
      let changed = try sql.execute(
        """
        UPDATE "ProcessMails" SET state = ?, next_attempt_at = ?, last_error = ?, lease_until = NULL,
          lease_token = NULL
        WHERE id = ? AND lease_token = ? AND state = 'sending'
        """,
        [
          retryAt == nil ? MailDeliveryState.failed.rawValue : MailDeliveryState.queued.rawValue,
          StoredDate.text(retryAt ?? at), outcome.message, claim.queued.id, claim.lease,
        ])
      guard changed > 0 else { return }
      try Self.log(
        sql, company: claim.queued.company.id, mailID: claim.queued.id, messageID: claim.queued.messageID,
        attempt: claim.queued.attempts, outcome: outcome, at: at)
    }
  }

  public func retryMail(_ id: Int64, of company: CompanyKey, by actor: AuditActor) async throws -> QueuedMail {
    try await commit(.company(company.id), by: actor) { tx in
      let state = try tx.sql.value(
        String.self, #"SELECT state FROM "ProcessMails" WHERE company_id = ? AND id = ?"#, [company.id, id])
      guard let state else { throw StoreError(.notFound, "no message \(id) in \(company.code)'s queue") }
      guard state == MailDeliveryState.failed.rawValue else {
        throw StoreError(.inUse, "message \(id) is \(state), not failed: only a failed message is retried")
      }
      try tx.sql.execute(
        """
        UPDATE "ProcessMails" SET state = 'queued', attempts = 0, next_attempt_at = ? WHERE company_id = ? AND id = ?
        """, [tx.nowText, company.id, id])
      try tx.audit(AuditTrail.Entry(company: company, action: "retry", area: "mail.queue", field: String(id)))
    }
    guard let queued = try await queuedMail(id, of: company) else {
      throw StoreError(.notFound, "no message \(id) in \(company.code)'s queue")
    }
    return queued
  }

  public func deleteMail(_ id: Int64, of company: CompanyKey, by actor: AuditActor) async throws {
    try await commit(.company(company.id), by: actor) { tx in
      let state = try tx.sql.value(
        String.self, #"SELECT state FROM "ProcessMails" WHERE company_id = ? AND id = ?"#, [company.id, id])
      guard let state else { throw StoreError(.notFound, "no message \(id) in \(company.code)'s queue") }
      guard state != MailDeliveryState.sending.rawValue else {
        throw StoreError(.inUse, "message \(id) is being sent: delete it once it is sent or failed")
      }
      try tx.sql.execute(#"DELETE FROM "ProcessMails" WHERE company_id = ? AND id = ?"#, [company.id, id])
      try tx.audit(
        AuditTrail.Entry(company: company, action: "delete", area: "mail.queue", field: String(id), detail: state))
    }
  }

  public func workLog(of company: CompanyKey, beforeID: Int64, limit: Int) async throws -> [MailWorkLogEntry] {
    try await read(.company(company.id)) { sql in
      try sql.rows(
        """
        SELECT id, logged_at, mail_id, message_id, attempt, outcome, reply_code, message FROM "DF_WorkLogEntries"
        WHERE company_id = ? AND (? = 0 OR id < ?) ORDER BY id DESC LIMIT ?
        """, [company.id, beforeID, beforeID, limit]
      ).map { row in
        MailWorkLogEntry(
          id: row["id"], at: row["logged_at"], mailID: row["mail_id"], messageID: row["message_id"],
          attempt: row["attempt"],
          outcome: MailFailureOutcome(outcome: row["outcome"], replyCode: row["reply_code"], message: row["message"]))
      }
    }
  }

  /// A work-log row (MAIL-3).
  static func log(
    _ sql: any SQLSession, company: Int64, mailID: Int64?, messageID: String, attempt: Int, outcome: MailFailureOutcome,
    at: Date
  ) throws {
    try sql.execute(
      """
      INSERT INTO "DF_WorkLogEntries" (company_id, mail_id, message_id, logged_at, attempt, outcome, reply_code, message)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?)
      """,
      [company, mailID, messageID, StoredDate.text(at), attempt, outcome.outcome, outcome.replyCode, outcome.message])
  }

  private static func json(_ list: [String]) -> String {
    String(decoding: (try? JSONEncoder().encode(list)) ?? Data("[]".utf8), as: UTF8.self)
  }

  private static func list(_ text: String) -> [String] {
    (try? JSONDecoder().decode([String].self, from: Data(text.utf8))) ?? []
  }

  private static func queued(row: SQLRow) -> QueuedMail {
    QueuedMail(
      id: row["id"], company: CompanyKey(id: row["company_id"], code: row["company_code"]),
      messageID: row["message_id"], state: MailDeliveryState(rawValue: row["state"]) ?? .queued,
      to: list(row["to_addresses"]), cc: list(row["cc_addresses"]), bcc: list(row["bcc_addresses"]),
      subject: row["subject"], attachmentNames: row.joinedList("attachment_names"), sizeBytes: row["size_bytes"],
      attempts: row["attempts"], nextAttemptAt: row["next_attempt_at"], lastError: row["last_error"],
      createdAt: row["created_at"], sentAt: row["sent_at"])
  }
}
