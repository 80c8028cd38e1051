import DMSDomain
import Foundation

extension StoreTransaction {
  /// The columns of `SELECT` that `StoredApiSystem(row:)` reads.
  static let apiSystemColumns = """
    id, identifier, name, secret_hash IS NOT NULL AS secret_set, secret_set_at, created_at
    """

  func apiSystem(identifier: String) throws -> StoredApiSystem? {
    try sql.row(
      "SELECT \(Self.apiSystemColumns) FROM api_system WHERE identifier = ?", [identifier.lowercased()]
    ).map(StoredApiSystem.init(row:))
  }

  private func apiSystemByID(_ id: Int64) throws -> StoredApiSystem {
    guard
      let found = try sql.row(
        "SELECT \(Self.apiSystemColumns) FROM api_system WHERE id = ?", [id]
      ).map(StoredApiSystem.init(row:))
    else { throw StoreError(.notFound, "no such API system") }
    return found
  }

  func addApiSystem(_ system: ApiSystem, secretHash: Data) throws -> StoredApiSystem {
    if let taken = try sql.value(
      String.self, "SELECT name FROM api_system WHERE name_key = ?", [ApiSystem.nameKey(system.name)])
    {
      throw StoreError(
        .alreadyExists, "an API system named \(taken) exists (names ignore case)", field: "name",
        rule: "api system name")
    }
    let id = try sql.value(
      Int64.self,
      """
      INSERT INTO api_system (identifier, name, name_key, secret_hash, secret_set_at, created_at)
      VALUES (?, ?, ?, ?, ?, ?) RETURNING id
      """,
      [system.identifier.lowercased(), system.name, ApiSystem.nameKey(system.name), secretHash, nowText, nowText])
    let stored = try apiSystemByID(id ?? 0)
    try audit(
      AuditTrail.Entry(action: "api-system.add", area: ApiSystem.area, field: "secret: changed", subject: system.name))
    remember(.apiSystemWritten(stored))
    return stored
  }

  func setApiSystemSecret(id: Int64, secretHash: Data) throws -> StoredApiSystem {
    _ = try apiSystemByID(id)
    try sql.execute("UPDATE api_system SET secret_hash = ?, secret_set_at = ? WHERE id = ?", [secretHash, nowText, id])
    try sql.execute("DELETE FROM api_system_session WHERE system_id = ?", [id])
    let stored = try apiSystemByID(id)
    try audit(
      AuditTrail.Entry(
        action: "api-system.secret", area: ApiSystem.area, field: "secret: changed", subject: stored.value.name))
    remember(.apiSystemWritten(stored))
    remember(.sessionsEnded(.system(id), keeping: nil))
    return stored
  }

  func deleteApiSystem(id: Int64) throws -> StoredApiSystem {
    let stored = try apiSystemByID(id)
    // Operators store the system's name as the system spells it (APISYS-4).
    let users = try sql.values(
      String.self, "SELECT login FROM operator WHERE cooperating_system = ? ORDER BY login_key", [stored.value.name])
    if !users.isEmpty {
      let shown = users.prefix(5).joined(separator: ", ") + (users.count > 5 ? " and \(users.count - 5) more" : "")
      throw StoreError(
        .inUse,
        "\(stored.value.name) is the cooperating system of \(shown) (APISYS-4): choose another for them first")
    }
    // ON DELETE CASCADE removes its sessions.
    try sql.execute("DELETE FROM api_system WHERE id = ?", [id])
    try audit(AuditTrail.Entry(action: "api-system.delete", area: ApiSystem.area, subject: stored.value.name))
    remember(.apiSystemDeleted(id: id))
    return stored
  }
}

extension StoredApiSystem {
  init(row: SQLRow) {
    self.init(
      id: row["id"], value: ApiSystem(identifier: row["identifier"], name: row["name"]), secretSet: row["secret_set"],
      secretSetAt: row["secret_set_at"], createdAt: row["created_at"])
  }
}

extension ApiSystem {
  /// The audit's area for API systems.
  static let area = "api-system"

  /// A new identifier (APISYS-1): a random UUID in lower case.
  public static func newIdentifier() -> String { UUID().uuidString.lowercased() }
}
