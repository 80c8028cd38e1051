import Foundation

/// A batch's end on PostgreSQL in one statement: the documents its jobs gathered, its
/// audit rows, the lock that orders its commit (with the `pg_notify` that wakes the other
/// instances) and its change-feed rows (`PostgresSession.commitJournal`).
///
/// PostgresNIO sends a connection's statements one at a time, each after the answer to
/// the one before: every statement of a batch is a round trip. The step-by-step way
/// (`SnapshotStore.flush`, `Journal`) takes four; this one, one. Its rows travel as
/// JSON arrays (`jsonb_to_recordset`), so that its text is the same whatever the
/// batch's size: prepared once per connection.
enum PostgresJournal {
  /// Arguments: the NOTIFY's channel and payload, the ordering lock's key, then the
  /// documents to write, those to remove, the audit rows and the feed rows (JSON).
  /// Answers one row per feed row with its position (and one NULL row when there is
  /// none: the main query reads `ordered`, so the lock and the NOTIFY are taken either
  /// way). The feed's rows are inserted in their order (`n`), after the lock (`fed`
  /// reads `ordered`): their positions follow commit order, as `Journal` says.
  static let statement = """
    WITH ordered AS MATERIALIZED (SELECT pg_notify(?, ?), pg_advisory_xact_lock(?)),
    written AS (
      INSERT INTO company_document (company_id, area, revision, body, format, updated_at)
      SELECT r.company_id, r.area, r.revision, decode(r.body, 'base64'), r.format, r.updated_at
      FROM jsonb_to_recordset(CAST(? AS JSONB))
        AS r(company_id BIGINT, area TEXT, revision BIGINT, body TEXT, format BIGINT, updated_at TEXT)
      ON CONFLICT (company_id, area) DO UPDATE SET revision = excluded.revision, body = excluded.body,
        format = excluded.format, updated_at = excluded.updated_at
      RETURNING 1),
    removed AS (
      DELETE FROM company_document d USING jsonb_to_recordset(CAST(? AS JSONB)) AS r(company_id BIGINT, area TEXT)
      WHERE d.company_id = r.company_id AND d.area = r.area
      RETURNING 1),
    audited AS (
      INSERT INTO audit_entry (company_id, company_code, at, action, area, field, revision, detail, login, peer,
        user_agent, request_id, subject)
      SELECT r.company_id, r.company_code, r.at, r.action, r.area, r.field, r.revision, r.detail, r.login, r.peer,
        r.user_agent, r.request_id, r.subject
      FROM jsonb_to_recordset(CAST(? AS JSONB))
        AS r(n BIGINT, company_id BIGINT, company_code TEXT, at TEXT, action TEXT, area TEXT, field TEXT,
          revision BIGINT, detail TEXT, login TEXT, peer TEXT, user_agent TEXT, request_id TEXT, subject TEXT)
      ORDER BY r.n
      RETURNING 1),
    fed AS (
      INSERT INTO change_feed (company_id, company_code, area, kind, revision, committed_at)
      SELECT r.company_id, r.company_code, r.area, r.kind, r.revision, r.committed_at
      FROM ordered, jsonb_to_recordset(CAST(? AS JSONB))
        AS r(n BIGINT, company_id BIGINT, company_code TEXT, area TEXT, kind TEXT, revision BIGINT, committed_at TEXT)
      ORDER BY r.n
      RETURNING position)
    SELECT fed.position FROM ordered LEFT JOIN fed ON TRUE
    """

  /// The statement's arguments after the first three.
  static func rows(
    written: [(SnapshotStore.DocumentKey, CompanySnapshot.Document)], removed: [SnapshotStore.DocumentKey],
    audits: [Journal.AuditRow], changes: [Journal.PendingChange]
  ) -> [any SQLBindable] {
    var documents = JSONRecords()
    for (key, document) in written {
      documents.append([
        ("company_id", .integer(key.company)), ("area", .text(key.area)), ("revision", .integer(document.revision)),
        ("body", .text(document.body.base64EncodedString())), ("format", .integer(Int64(document.format))),
        ("updated_at", .text(StoredDate.text(document.updatedAt))),
      ])
    }
    var gone = JSONRecords()
    for key in removed {
      gone.append([("company_id", .integer(key.company)), ("area", .text(key.area))])
    }
    var audit = JSONRecords()
    for (index, row) in audits.enumerated() {
      let entry = row.entry
      let actor = row.actor
      audit.append([
        ("n", .integer(Int64(index))), ("company_id", entry.company?.id.sqlValue ?? .null),
        ("company_code", entry.company?.code.sqlValue ?? .null), ("at", .text(row.at)),
        ("action", .text(entry.action)), ("area", .text(entry.area)), ("field", .text(entry.field)),
        ("revision", .integer(entry.revision)), ("detail", .text(entry.detail)), ("login", actor.login.sqlValue),
        ("peer", actor.peer.sqlValue), ("user_agent", actor.userAgent.sqlValue),
        ("request_id", actor.requestID.sqlValue), ("subject", .text(entry.subject)),
      ])
    }
    var feed = JSONRecords()
    for (index, row) in changes.enumerated() {
      feed.append([
        ("n", .integer(Int64(index))), ("company_id", row.companyID.sqlValue),
        ("company_code", row.change.company.sqlValue), ("area", .text(row.change.area)),
        ("kind", .text(row.change.kind.rawValue)), ("revision", .integer(row.change.revision)),
        ("committed_at", .text(row.at)),
      ])
    }
    return [documents.text, gone.text, audit.text, feed.text]
  }
}

/// Rows as a JSON array of objects (`jsonb_to_recordset`'s input).
struct JSONRecords {
  private var json = "["

  /// The array so far, closed.
  var text: String { json + "]" }

  /// Adds one object with these fields (integers, text and NULLs).
  mutating func append(_ fields: [(String, SQLValue)]) {
    if json.utf8.count > 1 { json += "," }
    json += "{"
    for (index, (name, value)) in fields.enumerated() {
      if index > 0 { json += "," }
      json += "\"\(name)\":"
      switch value {
      case .integer(let int): json += String(int)
      case .text(let text): Self.quote(text, into: &json)
      case .bool(let bool): json += bool ? "true" : "false"
      case .real(let double): json += double.isFinite ? "\(double)" : "null"
      case .blob(let data): Self.quote(data.base64EncodedString(), into: &json)
      case .null: json += "null"
      }
    }
    json += "}"
  }

  /// `text` as a JSON string.
  static func quote(_ text: String, into json: inout String) {
    json += "\""
    var plain = true
    for byte in text.utf8 where byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") {
      plain = false
      break
    }
    if plain {
      json += text
    } else {
      for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": json += "\\\""
        case "\\": json += "\\\\"
        case "\n": json += "\\n"
        case "\r": json += "\\r"
        case "\t": json += "\\t"
        case let control where control.value < 0x20:
          json += "\\u00" + (control.value < 0x10 ? "0" : "") + String(control.value, radix: 16)
        default: json.unicodeScalars.append(scalar)
        }
      }
    }
    json += "\""
  }
}
