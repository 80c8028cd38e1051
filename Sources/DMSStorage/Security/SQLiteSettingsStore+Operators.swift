import DMSDomain
import Foundation
import GRDB

extension SQLiteSettingsStore: OperatorDirectory {
  public var operators: any OperatorDirectory { self }

  public func operators() async throws -> [StoredOperator] {
    try await database {
      try await pool.read { db in
        try Row.fetchAll(
          db, sql: "SELECT \(SQLiteTransaction.operatorColumns) FROM operator o ORDER BY o.login_key"
        ).map(StoredOperator.init(row:))
      }
    }
  }

  public func `operator`(login: String) async throws -> StoredOperator? {
    try await credentials(login: login)?.0
  }

  public func credentials(login: String) async throws -> (StoredOperator, passwordHash: String?)? {
    try await database {
      try await pool.read { db in
        try Row.fetchOne(
          db,
          sql: "SELECT \(SQLiteTransaction.operatorColumns), o.password_hash FROM operator o WHERE o.login_key = ?",
          arguments: [Operator.loginKey(login)]
        ).map { (StoredOperator(row: $0), $0["password_hash"]) }
      }
    }
  }

  public func principal(forTokenHash tokenHash: SessionTokenHash, at now: Date, idleTimeout: Duration)
    -> SessionPrincipal?
  {
    security.principal(forTokenHash: tokenHash, at: now, idleTimeout: idleTimeout)
  }

  public func idleSessions(idleTimeout: Duration) -> [SessionTokenHash] {
    security.idleSessions(idleTimeout: idleTimeout)
  }

  public func transaction<Result: Sendable>(
    by actor: AuditActor,
    _ body: @escaping @Sendable (any OperatorTransaction) throws -> Result
  ) async throws -> Result {
    try await commit(by: actor) { tx in try body(tx) }
  }
}

extension SQLiteSettingsStore {
  public func apiSystems() async throws -> [StoredApiSystem] {
    try await database {
      try await pool.read { db in
        try Row.fetchAll(db, sql: "SELECT \(SQLiteTransaction.apiSystemColumns) FROM api_system ORDER BY name_key")
          .map(StoredApiSystem.init(row:))
      }
    }
  }

  public func systemCredentials(identifier: String) async throws -> (StoredApiSystem, secretHash: Data?)? {
    try await database {
      try await pool.read { db in
        try Row.fetchOne(
          db,
          sql: "SELECT \(SQLiteTransaction.apiSystemColumns), secret_hash FROM api_system WHERE identifier = ?",
          arguments: [identifier.lowercased()]
        ).map { (StoredApiSystem(row: $0), $0["secret_hash"]) }
      }
    }
  }
}
