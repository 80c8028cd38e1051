import DMSDomain
import Foundation

/// What one commit changed in the security room, for the other instances on the same
/// PostgreSQL (`security_feed`): the keys to read again, one per line ("o 12" an
/// operator, "a 3" an API system, "s <hex>" a session, "ho 12" / "ha 3" a holder's
/// sessions, "x <date>" expired sessions, "c <code>" a deleted company). A follower
/// reads each key's rows as they are now, so applying a line twice, or late, converges
/// on the database's state.
enum SecurityFeed {
  /// The lines of `effects`; nil when they touch no security state.
  static func keys(of effects: [CommitEffect]) -> String? {
    var lines: [String] = []
    for effect in effects {
      switch effect {
      case .operatorWritten(let stored): lines.append("o \(stored.id)")
      case .operatorDeleted(let id): lines.append("o \(id)")
      case .apiSystemWritten(let stored): lines.append("a \(stored.id)")
      case .apiSystemDeleted(let id): lines.append("a \(id)")
      case .sessionOpened(let record): lines.append("s \(hex(record.tokenHash.bytes))")
      case .sessionEnded(let hash): lines.append("s \(hex(hash.bytes))")
      case .sessionsEnded(.operator(let id), _): lines.append("ho \(id)")
      case .sessionsEnded(.system(let id), _): lines.append("ha \(id)")
      case .sessionsExpired(let date): lines.append("x \(StoredDate.text(date))")
      case .companyDeleted(_, let codeKey): lines.append("c \(codeKey)")
      case .change, .pendingChange, .audit, .document, .documentRemoved, .companyCreated: continue
      }
    }
    return lines.isEmpty ? nil : lines.joined(separator: "\n")
  }

  /// Applies one row's lines to `security`, reading each key's rows with `sql` (row
  /// scope: every company).
  static func apply(_ keys: String, to security: SecurityCache, _ sql: any SQLSession) throws {
    for line in keys.split(separator: "\n") {
      let parts = line.split(separator: " ", maxSplits: 1)
      guard parts.count == 2 else { continue }
      let (kind, key) = (parts[0], String(parts[1]))
      switch kind {
      case "o":
        guard let id = Int64(key) else { continue }
        if let row = try sql.row(
          "SELECT \(StoreTransaction.operatorColumns(sql.dialect)) FROM operator o WHERE o.id = ?", [id])
        {
          security.operatorWritten(StoredOperator(row: row))
        } else {
          security.operatorDeleted(id: id)
        }
      case "a":
        guard let id = Int64(key) else { continue }
        if let row = try sql.row("SELECT \(StoreTransaction.apiSystemColumns) FROM api_system WHERE id = ?", [id]) {
          security.apiSystemWritten(StoredApiSystem(row: row))
        } else {
          security.apiSystemDeleted(id: id)
        }
      case "s":
        guard let bytes = data(hex: key) else { continue }
        if let row = try sql.row("SELECT * FROM operator_session WHERE token_hash = ?", [bytes]) {
          security.sessionOpened(SessionRecord(row: row))
        } else if let row = try sql.row("SELECT * FROM api_system_session WHERE token_hash = ?", [bytes]) {
          security.sessionOpened(SessionRecord(systemRow: row))
        } else {
          security.sessionEnded(SessionTokenHash(bytes: bytes))
        }
      case "ho", "ha":
        guard let id = Int64(key) else { continue }
        let operatorHolder = kind == "ho"
        security.sessionsEnded(holder: operatorHolder ? .operator(id) : .system(id), keeping: nil)
        let rows =
          operatorHolder
          ? try sql.rows("SELECT * FROM operator_session WHERE operator_id = ?", [id]).map(SessionRecord.init(row:))
          : try sql.rows("SELECT * FROM api_system_session WHERE system_id = ?", [id]).map(
            SessionRecord.init(systemRow:))
        for record in rows { security.sessionOpened(record) }
      case "x":
        if let date = StoredDate.parse(key) { security.sessionsExpired(before: date) }
      case "c":
        security.companyDeleted(codeKey: key)
      default:
        continue
      }
    }
  }

  private static func hex(_ data: Data) -> String {
    data.map { byte in
      let text = String(byte, radix: 16)
      return byte < 16 ? "0" + text : text
    }.joined()
  }

  private static func data(hex: String) -> Data? {
    guard hex.utf8.count % 2 == 0 else { return nil }
    var bytes: [UInt8] = []
    var index = hex.startIndex
    while index < hex.endIndex {
      let next = hex.index(index, offsetBy: 2)
      guard let byte = UInt8(hex[index..<next], radix: 16) else { return nil }
      bytes.append(byte)
      index = next
    }
    return Data(bytes)
  }
}
