import Foundation

/// The rows a batch leaves in the journals: the audit's and the change feed's.
///
/// A transaction body does not insert them as it goes; it collects them (as
/// `CommitEffect.audit` and `.pendingChange`), and the batch writes those of its jobs
/// that succeeded just before its COMMIT, one statement per table for the whole batch
/// (not two per change). Rows are never written for a job that failed.
///
/// The feed's positions follow commit order (a reader that has seen position n has seen
/// every position below it): its rows are written after the batch has taken what
/// orders commits among writers (`WriterSession.orderCommit`: on PostgreSQL, a lock
/// held through the COMMIT), with several writer connections and several instances.
/// The audit's rows are written before it; their ids follow the order rows were
/// written in, which need not be commit order.
enum Journal {
  /// One audit row, as the transaction body described it.
  struct AuditRow: Sendable {
    var entry: AuditTrail.Entry
    var actor: AuditActor
    var at: String
  }

  /// One change-feed row before it has a position.
  struct PendingChange: Sendable {
    var companyID: Int64?
    var change: SettingsChange
    var at: String
  }

  /// Rows per INSERT (13 arguments each for the audit: far under both backends'
  /// limits on arguments per statement).
  static let rowsPerStatement = 200

  /// Inserts the audit rows among `effects`; the other effects.
  static func writeAudit(_ effects: [CommitEffect], _ sql: any SQLSession) throws -> [CommitEffect] {
    let (audits, others) = splitAudit(effects)
    for chunk in audits.chunked(rowsPerStatement) { try insert(chunk, sql) }
    return others
  }

  /// The audit rows among `effects`, and the other effects, each in their order.
  static func splitAudit(_ effects: [CommitEffect]) -> (audits: [AuditRow], others: [CommitEffect]) {
    var audits: [AuditRow] = []
    var others: [CommitEffect] = []
    others.reserveCapacity(effects.count)
    for effect in effects {
      if case .audit(let row) = effect { audits.append(row) } else { others.append(effect) }
    }
    return (audits, others)
  }

  /// Inserts the change-feed rows among `effects` (once the batch's commit is ordered);
  /// the effects with each change given its position.
  static func writeChanges(_ effects: [CommitEffect], _ sql: any SQLSession) throws -> [CommitEffect] {
    let changes = pendingChanges(effects)
    guard !changes.isEmpty else { return effects }
    var positions: [Int64] = []
    positions.reserveCapacity(changes.count)
    for chunk in changes.chunked(rowsPerStatement) { positions += try insert(chunk, sql) }
    return positioned(effects, positions)
  }

  /// The change-feed rows among `effects`, in their order.
  static func pendingChanges(_ effects: [CommitEffect]) -> [PendingChange] {
    effects.compactMap { effect in
      if case .pendingChange(let change) = effect { change } else { nil }
    }
  }

  /// `effects` with their change-feed rows given `positions` (as many, in order).
  static func positioned(_ effects: [CommitEffect], _ positions: [Int64]) -> [CommitEffect] {
    var next = positions.makeIterator()
    return effects.map { effect in
      guard case .pendingChange(var pending) = effect else { return effect }
      pending.change.position = next.next() ?? 0
      return .change(pending.change)
    }
  }

  private static func insert(_ rows: ArraySlice<AuditRow>, _ sql: any SQLSession) throws {
    var arguments: [any SQLBindable] = []
    arguments.reserveCapacity(rows.count * 13)
    for row in rows {
      let entry = row.entry
      let actor = row.actor
      arguments +=
        [
          entry.company?.id, entry.company?.code, row.at, entry.action, entry.area, entry.field, entry.revision,
          entry.detail, actor.login, actor.peer, actor.userAgent, actor.requestID, entry.subject,
        ] as [any SQLBindable]
    }
    try sql.send(
      """
      INSERT INTO audit_entry (company_id, company_code, at, action, area, field, revision, detail, login, peer,
        user_agent, request_id, subject)
      VALUES \(placeholders(rows: rows.count, columns: 13))
      """, arguments)
  }

  /// Inserts the changes; their positions, in the order of `rows`.
  private static func insert(_ rows: ArraySlice<PendingChange>, _ sql: any SQLSession) throws -> [Int64] {
    var arguments: [any SQLBindable] = []
    arguments.reserveCapacity(rows.count * 6)
    for row in rows {
      arguments +=
        [
          row.companyID, row.change.company, row.change.area, row.change.kind.rawValue, row.change.revision, row.at,
        ] as [any SQLBindable]
    }
    // Both backends number the rows of one INSERT in the order of its VALUES (SQLite:
    // one past the largest; PostgreSQL: the identity's sequence, which only writers
    // holding the ordering lock draw from), but neither promises the order of
    // RETURNING: sorting gives each row its own.
    let numbers = try sql.values(
      Int64.self,
      """
      INSERT INTO change_feed (company_id, company_code, area, kind, revision, committed_at)
      VALUES \(placeholders(rows: rows.count, columns: 6)) RETURNING position
      """, arguments
    ).sorted()
    guard numbers.count == rows.count else {
      throw StoreError(.unavailable, "the change feed gave \(numbers.count) numbers for \(rows.count) rows")
    }
    return numbers
  }

  /// `(?, …), (?, …)`: `rows` groups of `columns` placeholders.
  static func placeholders(rows: Int, columns: Int) -> String {
    let row = "(" + Array(repeating: "?", count: columns).joined(separator: ", ") + ")"
    return Array(repeating: row, count: rows).joined(separator: ", ")
  }
}

extension Array {
  /// Consecutive slices of at most `size` elements.
  func chunked(_ size: Int) -> [ArraySlice<Element>] {
    stride(from: 0, to: count, by: size).map { self[$0..<Swift.min($0 + size, count)] }
  }
}
