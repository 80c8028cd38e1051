import DMSDomain
import Foundation
import GRDB

extension SQLiteTransaction {
  /// The columns of `SELECT` that `StoredApiSystem(row:)` reads.
  static let apiSystemColumns = """
    id, identifier, name, secret_hash IS NOT NULL AS secret_set, secret_set_at, created_at
    """

  func apiSystem(identifier: String) throws -> StoredApiSystem? {
    try Row.fetchOne(
      db.cachedStatement(sql: "SELECT \(Self.apiSystemColumns) FROM api_system WHERE identifier = ?"),
      arguments: [identifier.lowercased()]
    ).map(StoredApiSystem.init(row:))
  }

  private func apiSystemByID(_ id: Int64) throws -> StoredApiSystem {
    guard
      let found = try Row.fetchOne(
        db.cachedStatement(sql: "SELECT \(Self.apiSystemColumns) FROM api_system WHERE id = ?"), arguments: [id]
      ).map(StoredApiSystem.init(row:))
    else { throw StoreError(.notFound, "no such API system") }
    return found
  }

  func addApiSystem(_ system: ApiSystem, secretHash: Data) throws -> StoredApiSystem {
    if let taken = try String.fetchOne(
      db.cachedStatement(sql: "SELECT name FROM api_system WHERE name_key = ?"),
      arguments: [ApiSystem.nameKey(system.name)])
    {
      throw StoreError(
        .alreadyExists, "an API system named \(taken) exists (names ignore case)", field: "name",
        rule: "api system name")
    }
    try db.cachedStatement(
      sql: """
        INSERT INTO api_system (identifier, name, name_key, secret_hash, secret_set_at, created_at)
        VALUES (?, ?, ?, ?, ?, ?)
        """
    ).execute(
      arguments: [
        system.identifier.lowercased(), system.name, ApiSystem.nameKey(system.name), secretHash, nowText, nowText,
      ])
    let stored = try apiSystemByID(db.lastInsertedRowID)
    try audit(
      AuditTrail.Entry(action: "api-system.add", area: ApiSystem.area, field: "secret: changed", subject: system.name))
    remember(.apiSystemWritten(stored))
    return stored
  }

  func setApiSystemSecret(id: Int64, secretHash: Data) throws -> StoredApiSystem {
    _ = try apiSystemByID(id)
    try db.cachedStatement(sql: "UPDATE api_system SET secret_hash = ?, secret_set_at = ? WHERE id = ?").execute(
      arguments: [secretHash, nowText, id])
    try db.cachedStatement(sql: "DELETE FROM api_system_session WHERE system_id = ?").execute(arguments: [id])
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
    let users = try String.fetchAll(
      // Operators store the system's name as the system spells it (APISYS-4).
      db.cachedStatement(sql: "SELECT login FROM operator WHERE cooperating_system = ? ORDER BY login_key"),
      arguments: [stored.value.name])
    if !users.isEmpty {
      let shown = users.prefix(5).joined(separator: ", ") + (users.count > 5 ? " and \(users.count - 5) more" : "")
      throw StoreError(
        .inUse,
        "\(stored.value.name) is the cooperating system of \(shown) (APISYS-4): choose another for them first")
    }
    // ON DELETE CASCADE removes its sessions.
    try db.cachedStatement(sql: "DELETE FROM api_system WHERE id = ?").execute(arguments: [id])
    try audit(AuditTrail.Entry(action: "api-system.delete", area: ApiSystem.area, subject: stored.value.name))
    remember(.apiSystemDeleted(id: id))
    return stored
  }
}

extension StoredApiSystem {
  init(row: Row) {
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
