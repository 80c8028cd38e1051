import DMSDomain
import Foundation

extension DatabaseStore: OperatorDirectory {
  public var operators: any OperatorDirectory { self }

  public func operators() async throws -> [StoredOperator] {
    try await read(.all) { sql in
      try sql.rows("SELECT \(StoreTransaction.operatorColumns(sql.dialect)) FROM operator o ORDER BY o.login_key")
        .map(StoredOperator.init(row:))
    }
  }

  public func `operator`(login: String) async throws -> StoredOperator? {
    try await credentials(login: login)?.0
  }

  public func credentials(login: String) async throws -> (StoredOperator, passwordHash: String?)? {
    try await read(.all) { sql in
      try sql.row(
        "SELECT \(StoreTransaction.operatorColumns(sql.dialect)), o.password_hash FROM operator o WHERE o.login_key = ?",
        [Operator.loginKey(login)]
      ).map { (StoredOperator(row: $0), $0["password_hash"]) }
    }
  }

  public func principal(forTokenHash tokenHash: SessionTokenHash, at now: Date, idleTimeout: Duration)
    -> SessionPrincipal?
  {
    security.principal(forTokenHash: tokenHash, at: now, idleTimeout: idleTimeout)
  }

  public func idleSessions(idleTimeout: Duration) -> [SessionTokenHash] {
    // Idleness is each instance's own (in memory). On a database several instances
    // share, a session idle here may be in use through another: this instance refuses
    // it, but only its expiry removes it from the database.
    engine.dialect.shared ? [] : security.idleSessions(idleTimeout: idleTimeout)
  }

  public func transaction<Result: Sendable>(
    by actor: AuditActor,
    _ body: @escaping @Sendable (any OperatorTransaction) throws -> Result
  ) async throws -> Result {
    try await commit(.all, by: actor) { tx in try body(tx) }
  }
}

extension DatabaseStore {
  public func apiSystems() async throws -> [StoredApiSystem] {
    try await read(.none) { sql in
      try sql.rows("SELECT \(StoreTransaction.apiSystemColumns) FROM api_system ORDER BY name_key")
        .map(StoredApiSystem.init(row:))
    }
  }

  public func systemCredentials(identifier: String) async throws -> (StoredApiSystem, secretHash: Data?)? {
    try await read(.none) { sql in
      try sql.row(
        "SELECT \(StoreTransaction.apiSystemColumns), secret_hash FROM api_system WHERE identifier = ?",
        [identifier.lowercased()]
      ).map { (StoredApiSystem(row: $0), $0["secret_hash"]) }
    }
  }
}
