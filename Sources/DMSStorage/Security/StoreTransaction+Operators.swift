import DMSDomain
import Foundation

extension StoreTransaction: OperatorTransaction {
  var registry: any RegistryTransaction { self }

  /// The columns of `SELECT` that `StoredOperator(row:)` reads (from `operator o`).
  static func operatorColumns(_ dialect: SQLDialect) -> String {
    dialect.rowLevelSecurity ? operatorColumnsPostgres : operatorColumnsSQLite
  }

  private static let operatorColumnsSQLite = operatorColumns(joining: SQLDialect.sqlite.joined)
  private static let operatorColumnsPostgres = operatorColumns(joining: SQLDialect.postgres.joined)

  private static func operatorColumns(joining joined: (String, String) -> String) -> String {
    """
    o.id, o.login, o.full_name, o.email, o.administrator, o.disabled, o.domain_login, o.domain_account,
    o.cooperating_system, o.repository_permission, o.password_hash IS NOT NULL AS password_set,
    o.must_change_password, o.two_step_confirmed, o.revision, o.created_at, o.updated_at,
    (SELECT \(joined("code", "code_key")) FROM (
      SELECT c.code, c.code_key FROM operator_company oc JOIN company c ON c.id = oc.company_id
      WHERE oc.operator_id = o.id ORDER BY c.code_key) AS companies_of) AS companies
    """
  }

  func operatorCount() throws -> Int {
    try sql.value(Int.self, "SELECT count(*) FROM operator") ?? 0
  }

  func enabledAdministratorCount() throws -> Int {
    try sql.value(Int.self, "SELECT count(*) FROM operator WHERE administrator AND NOT disabled") ?? 0
  }

  func `operator`(login: String) throws -> StoredOperator? {
    try sql.row(
      "SELECT \(Self.operatorColumns(sql.dialect)) FROM operator o WHERE o.login_key = ?", [Operator.loginKey(login)]
    ).map(StoredOperator.init(row:))
  }

  func operatorByID(_ id: Int64) throws -> StoredOperator {
    guard
      let found = try sql.row(
        "SELECT \(Self.operatorColumns(sql.dialect)) FROM operator o WHERE o.id = ?", [id]
      ).map(StoredOperator.init(row:))
    else { throw StoreError(.notFound, "no such operator") }
    return found
  }

  private func requireFreeLogin(_ login: String, except id: Int64?) throws {
    if let owner = try sql.value(Int64.self, "SELECT id FROM operator WHERE login_key = ?", [Operator.loginKey(login)]),
      owner != id
    {
      throw StoreError(
        .alreadyExists, "an operator with the login \(login) exists (logins ignore case)", field: "login",
        rule: "operator login")
    }
  }

  /// APISYS-4: an operator's cooperating system is empty or one of the API systems;
  /// the system's name as stored.
  private func cooperatingSystem(_ name: String) throws -> String {
    guard !name.isEmpty else { return "" }
    guard
      let stored = try sql.value(
        String.self, "SELECT name FROM api_system WHERE name_key = ?", [ApiSystem.nameKey(name)])
    else {
      throw StoreError(
        .notFound, "no API system named \(name) (ApiSystems/List shows them)", field: "cooperating_system",
        rule: "APISYS-4")
    }
    return stored
  }

  /// Replaces the operator's companies with `codes` (each must be registered).
  private func setCompanies(_ codes: [String], of id: Int64) throws {
    try sql.execute("DELETE FROM operator_company WHERE operator_id = ?", [id])
    for (index, code) in codes.enumerated() {
      guard let key = try company(code: code) else {
        throw StoreError(
          .notFound, "no company with the short name \(code) (companies[\(index)])", field: "companies[\(index)]",
          rule: "ERP-3")
      }
      try sql.execute("INSERT INTO operator_company (company_id, operator_id) VALUES (?, ?)", [key.id, id])
    }
  }

  func createOperator(_ value: Operator, passwordHash: String?, mustChangePassword: Bool) throws -> StoredOperator {
    try requireFreeLogin(value.login, except: nil)
    var value = value
    value.cooperatingSystem = try cooperatingSystem(value.cooperatingSystem)
    let inserted = try sql.value(
      Int64.self,
      """
      INSERT INTO operator (login, login_key, full_name, email, administrator, disabled, domain_login, domain_account,
        cooperating_system, repository_permission, password_hash, must_change_password, revision, created_at,
        updated_at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?) RETURNING id
      """,
      [
        value.login, Operator.loginKey(value.login), value.fullName, value.email, value.administrator, value.disabled,
        value.domainLogin, value.domainAccount, value.cooperatingSystem, value.repositoryPermission, passwordHash,
        mustChangePassword, nowText, nowText,
      ])
    guard let id = inserted else { throw StoreError(.unavailable, "the new operator got no id") }
    try setCompanies(value.companies, of: id)
    let stored = try operatorByID(id)
    try audit(
      AuditTrail.Entry(
        action: "operator.create", area: Operator.area, field: passwordHash == nil ? "" : "set password",
        revision: 1, subject: value.login))
    remember(.operatorWritten(stored))
    return stored
  }

  func updateOperator(id: Int64, _ value: Operator, expectedRevision: Int64) throws -> StoredOperator {
    let current = try operatorByID(id)
    guard current.revision == expectedRevision else {
      throw StoreError(
        .staleRevision, "operator \(current.value.login) is at revision \(current.revision), not \(expectedRevision)",
        currentRevision: current.revision)
    }
    var value = value
    value.cooperatingSystem = try cooperatingSystem(value.cooperatingSystem)
    let changed = Operator.changedFields(from: current.value, to: value)
    if changed.isEmpty { return current }
    try requireFreeLogin(value.login, except: id)
    try sql.execute(
      """
      UPDATE operator SET login = ?, login_key = ?, full_name = ?, email = ?, administrator = ?, disabled = ?,
        domain_login = ?, domain_account = ?, cooperating_system = ?, repository_permission = ?,
        revision = revision + 1, updated_at = ?
      WHERE id = ?
      """,
      [
        value.login, Operator.loginKey(value.login), value.fullName, value.email, value.administrator, value.disabled,
        value.domainLogin, value.domainAccount, value.cooperatingSystem, value.repositoryPermission, nowText, id,
      ])
    try setCompanies(value.companies, of: id)
    let stored = try operatorByID(id)
    try audit(
      AuditTrail.Entry(
        action: "operator.update", area: Operator.area, field: changed.joined(separator: ", "),
        revision: stored.revision, subject: value.login))
    if value.disabled && !current.value.disabled { try endSessions(of: id, keeping: nil) }
    remember(.operatorWritten(stored))
    return stored
  }

  func setPassword(
    operatorID: Int64, passwordHash: String, mustChangePassword: Bool, keeping: SessionTokenHash?,
    keptScope: SessionRecord.Scope
  ) throws -> StoredOperator {
    _ = try operatorByID(operatorID)
    try sql.execute(
      """
      UPDATE operator SET password_hash = ?, must_change_password = ?, revision = revision + 1, updated_at = ?
      WHERE id = ?
      """, [passwordHash, mustChangePassword, nowText, operatorID])
    let stored = try operatorByID(operatorID)
    try audit(
      AuditTrail.Entry(
        action: "operator.password", area: Operator.area, field: "set password", revision: stored.revision,
        subject: stored.value.login))
    try endSessions(of: operatorID, keeping: keeping)
    remember(.operatorWritten(stored))
    // The session that changed its own password goes on with `keptScope`.
    if let keeping { try setSessionScope(keeping, keptScope) }
    return stored
  }

  /// Changes a live session's scope.
  func setSessionScope(_ tokenHash: SessionTokenHash, _ scope: SessionRecord.Scope) throws {
    try sql.execute("UPDATE operator_session SET scope = ? WHERE token_hash = ?", [scope.rawValue, tokenHash.bytes])
    if let row = try sql.row("SELECT * FROM operator_session WHERE token_hash = ?", [tokenHash.bytes]) {
      remember(.sessionOpened(SessionRecord(row: row)))
    }
  }

  func upgradePasswordHash(operatorID: Int64, passwordHash: String) throws {
    let stored = try operatorByID(operatorID)
    try sql.execute("UPDATE operator SET password_hash = ? WHERE id = ?", [passwordHash, operatorID])
    try audit(
      AuditTrail.Entry(
        action: "operator.password-upgrade", area: Operator.area, revision: stored.revision,
        detail: "password hash re-made with the current parameters", subject: stored.value.login))
  }

  func deleteOperator(id: Int64) throws -> StoredOperator {
    let stored = try operatorByID(id)
    // ON DELETE CASCADE removes its companies and sessions.
    try sql.execute("DELETE FROM operator WHERE id = ?", [id])
    try audit(
      AuditTrail.Entry(
        action: "operator.delete", area: Operator.area, revision: stored.revision, subject: stored.value.login))
    remember(.operatorDeleted(id: id))
    return stored
  }

  private func endSessions(of operatorID: Int64, keeping: SessionTokenHash?) throws {
    try sql.execute(
      "DELETE FROM operator_session WHERE operator_id = ? AND token_hash IS DISTINCT FROM ?",
      [operatorID, keeping?.bytes])
    remember(.sessionsEnded(.operator(operatorID), keeping: keeping))
  }

  func createSession(_ session: SessionRecord) throws {
    let arguments: [any SQLBindable] = [
      session.tokenHash.bytes, StoredDate.text(session.createdAt), StoredDate.text(session.expiresAt), session.peer,
    ]
    let subject: String
    switch session.holder {
    case .operator(let id):
      try sql.execute(
        """
        INSERT INTO operator_session (token_hash, created_at, expires_at, peer, operator_id, scope)
        VALUES (?, ?, ?, ?, ?, ?)
        """, arguments + [id, session.scope.rawValue])
      subject =
        try sql.value(String.self, "SELECT login FROM operator WHERE id = ?", [id]) ?? ""
    case .system(let id):
      try sql.execute(
        """
        INSERT INTO api_system_session (token_hash, created_at, expires_at, peer, system_id) VALUES (?, ?, ?, ?, ?)
        """, arguments + [id])
      subject =
        try sql.value(String.self, "SELECT name FROM api_system WHERE id = ?", [id]) ?? ""
    }
    try audit(
      AuditTrail.Entry(action: "session.open", area: "session", detail: session.scope.rawValue, subject: subject))
    remember(.sessionOpened(session))
  }

  func endSession(tokenHash: SessionTokenHash) throws -> Bool {
    let subject: String
    if let login = try sql.value(
      String.self,
      "SELECT o.login FROM operator_session s JOIN operator o ON o.id = s.operator_id WHERE s.token_hash = ?",
      [tokenHash.bytes])
    {
      try sql.execute("DELETE FROM operator_session WHERE token_hash = ?", [tokenHash.bytes])
      subject = login
    } else if let name = try sql.value(
      String.self,
      "SELECT a.name FROM api_system_session s JOIN api_system a ON a.id = s.system_id WHERE s.token_hash = ?",
      [tokenHash.bytes])
    {
      try sql.execute("DELETE FROM api_system_session WHERE token_hash = ?", [tokenHash.bytes])
      subject = name
    } else {
      return false
    }
    try audit(AuditTrail.Entry(action: "session.end", area: "session", subject: subject))
    remember(.sessionEnded(tokenHash))
    return true
  }

  func removeSessions(_ hashes: [SessionTokenHash]) throws {
    for hash in hashes {
      try sql.execute("DELETE FROM operator_session WHERE token_hash = ?", [hash.bytes])
      try sql.execute("DELETE FROM api_system_session WHERE token_hash = ?", [hash.bytes])
      remember(.sessionEnded(hash))
    }
  }

  func removeExpiredSessions(before date: Date) throws -> Int {
    let count =
      try sql.execute("DELETE FROM operator_session WHERE expires_at < ?", [StoredDate.text(date)])
      + sql.execute("DELETE FROM api_system_session WHERE expires_at < ?", [StoredDate.text(date)])
    if count > 0 { remember(.sessionsExpired(before: date)) }
    return count
  }
}

extension StoredOperator {
  init(row: SQLRow) {
    let companies = row.joinedList("companies")
    self.init(
      id: row["id"],
      value: Operator(
        login: row["login"], fullName: row["full_name"], email: row["email"], administrator: row["administrator"],
        disabled: row["disabled"], companies: companies, domainLogin: row["domain_login"],
        domainAccount: row["domain_account"], cooperatingSystem: row["cooperating_system"],
        repositoryPermission: row["repository_permission"]),
      revision: row["revision"], passwordSet: row["password_set"], mustChangePassword: row["must_change_password"],
      twoStepEnabled: row["two_step_confirmed"], createdAt: row["created_at"], updatedAt: row["updated_at"])
  }
}

extension SessionRecord {
  init(row: SQLRow) {
    self.init(
      tokenHash: SessionTokenHash(bytes: row["token_hash"]), holder: .operator(row["operator_id"]),
      scope: Scope(rawValue: row["scope"]) ?? .changePassword, createdAt: row["created_at"],
      expiresAt: row["expires_at"], peer: row["peer"])
  }

  /// A row of `api_system_session`.
  init(systemRow row: SQLRow) {
    self.init(
      tokenHash: SessionTokenHash(bytes: row["token_hash"]), holder: .system(row["system_id"]), scope: .full,
      createdAt: row["created_at"], expiresAt: row["expires_at"], peer: row["peer"])
  }
}

extension Operator {
  /// The audit's area for operators.
  static let area = "operator"

  /// The names of the fields that differ (the audit's "which fields changed").
  static func changedFields(from old: Operator, to new: Operator) -> [String] {
    var changed: [String] = []
    func note(_ differs: Bool, _ name: String) { if differs { changed.append(name) } }
    note(old.login != new.login, "login")
    note(old.fullName != new.fullName, "full_name")
    note(old.email != new.email, "email")
    note(old.administrator != new.administrator, "administrator")
    note(old.disabled != new.disabled, "disabled")
    note(old.companies.map(Company.codeKey).sorted() != new.companies.map(Company.codeKey).sorted(), "companies")
    note(old.domainLogin != new.domainLogin, "domain_login")
    note(old.domainAccount != new.domainAccount, "domain_account")
    note(old.cooperatingSystem != new.cooperatingSystem, "cooperating_system")
    note(old.repositoryPermission != new.repositoryPermission, "repository_permission")
    return changed
  }
}
