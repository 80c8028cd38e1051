import DMSDomain
import Foundation

/// Two-step login (TOOLS-4) and the security policy.
extension StoreTransaction {
  /// What the operator's TOTP secret is sealed under: bound to the operator, so a
  /// ciphertext copied to another operator does not open.
  private static func binding(_ operatorID: Int64) -> (area: String, field: String) {
    ("operator/\(operatorID)", "two_step_secret")
  }

  func twoStep(operatorID: Int64) throws -> TwoStepRecord? {
    guard
      let row = try sql.row(
        "SELECT two_step_secret, two_step_confirmed, two_step_last_step FROM operator WHERE id = ?", [operatorID]),
      let sealed = row["two_step_secret"] as Data?
    else { return nil }
    let binding = Self.binding(operatorID)
    return TwoStepRecord(
      secret: try secrets.open(sealed, companyID: 0, area: binding.area, field: binding.field),
      confirmed: row["two_step_confirmed"], lastStep: row["two_step_last_step"])
  }

  func beginTwoStep(operatorID: Int64, secret: String) throws {
    let stored = try operatorByID(operatorID)
    guard !stored.twoStepEnabled else {
      throw StoreError(.inUse, "two-step login is already on for \(stored.value.login): turn it off first")
    }
    let binding = Self.binding(operatorID)
    let sealed = try secrets.seal(secret, companyID: 0, area: binding.area, field: binding.field)
    try sql.execute(
      "UPDATE operator SET two_step_secret = ?, two_step_confirmed = FALSE, two_step_last_step = 0 WHERE id = ?",
      [sealed, operatorID])
    try audit(
      AuditTrail.Entry(
        action: "operator.two-step.enrol", area: Operator.area, field: "two_step_secret: changed",
        revision: stored.revision, detail: "pending until confirmed with a code", subject: stored.value.login))
  }

  func confirmTwoStep(operatorID: Int64, step: Int64, session: SessionTokenHash?, scope: SessionRecord.Scope) throws
    -> StoredOperator
  {
    try sql.execute(
      """
      UPDATE operator SET two_step_confirmed = TRUE, two_step_last_step = ?, revision = revision + 1, updated_at = ?
      WHERE id = ? AND two_step_secret IS NOT NULL
      """, [step, nowText, operatorID])
    let stored = try operatorByID(operatorID)
    try audit(
      AuditTrail.Entry(
        action: "operator.two-step.on", area: Operator.area, field: "two_step", revision: stored.revision,
        subject: stored.value.login))
    remember(.operatorWritten(stored))
    if let session { try setSessionScope(session, scope) }
    return stored
  }

  func useTwoStep(operatorID: Int64, step: Int64) throws {
    try sql.execute("UPDATE operator SET two_step_last_step = ? WHERE id = ?", [step, operatorID])
  }

  func clearTwoStep(operatorID: Int64, detail: String) throws -> StoredOperator {
    let before = try operatorByID(operatorID)
    try sql.execute(
      """
      UPDATE operator SET two_step_secret = NULL, two_step_confirmed = FALSE, two_step_last_step = 0,
        revision = revision + ?, updated_at = ?
      WHERE id = ?
      """, [before.twoStepEnabled ? 1 : 0, nowText, operatorID])
    let stored = try operatorByID(operatorID)
    try audit(
      AuditTrail.Entry(
        action: "operator.two-step.off", area: Operator.area, field: "two_step_secret: changed",
        revision: stored.revision, detail: detail, subject: stored.value.login))
    remember(.operatorWritten(stored))
    return stored
  }

  func securityPolicy() throws -> StoredSecurityPolicy {
    try StoredSecurityPolicy.fetch(sql)
  }

  func setSecurityPolicy(_ policy: SecurityPolicy, expectedRevision: Int64) throws -> StoredSecurityPolicy {
    let current = try securityPolicy()
    guard current.revision == expectedRevision else {
      throw StoreError(
        .staleRevision, "the security policy is at revision \(current.revision), not \(expectedRevision)",
        currentRevision: current.revision)
    }
    guard policy != current.value else { return current }
    try sql.execute(
      "UPDATE security_policy SET enforce_two_step = ?, revision = revision + 1, updated_at = ? WHERE id = 1",
      [policy.enforceTwoStep, nowText])
    let stored = try securityPolicy()
    try audit(
      AuditTrail.Entry(
        action: "security-policy.update", area: "security-policy", field: "enforce_two_step",
        revision: stored.revision, detail: policy.enforceTwoStep ? "enforced" : "not enforced"))
    return stored
  }
}

extension StoredSecurityPolicy {
  /// The policy's one row (made by the migration that made the table).
  static func fetch(_ sql: any SQLSession) throws -> StoredSecurityPolicy {
    guard
      let row = try sql.row("SELECT enforce_two_step, revision, updated_at FROM security_policy WHERE id = 1")
    else { throw StoreError(.unreadable, "the security policy row is missing") }
    return StoredSecurityPolicy(
      value: SecurityPolicy(enforceTwoStep: row["enforce_two_step"]), revision: row["revision"],
      updatedAt: row["updated_at"])
  }
}

extension DatabaseStore {
  public func securityPolicy() async throws -> StoredSecurityPolicy {
    try await read(.none) { sql in try StoredSecurityPolicy.fetch(sql) }
  }
}
