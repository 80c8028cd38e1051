import DMSDomain
import DMSMessages
import DMSRPC
import DMSStorage
import DMSStubs

/// `dms.settings.v1.Operators`: the people who sign in (docs/SECURITY.md).
public struct OperatorsService: Dms_Settings_V1_Operators.ServiceProtocol {
  private let store: any SettingsStore
  private let hasher: PasswordHasher
  private let deployment: DeploymentConfiguration
  private let policy: PasswordPolicy

  /// The service over `store`'s operators.
  public init(
    store: any SettingsStore, hasher: PasswordHasher, deployment: DeploymentConfiguration,
    security: SecurityConfiguration
  ) {
    self.store = store
    self.hasher = hasher
    self.deployment = deployment
    self.policy = security.passwordPolicy
  }

  public func list(
    request: Dms_Settings_V1_ListOperatorsRequest, context: ServerContext
  ) async throws -> Dms_Settings_V1_ListOperatorsResponse {
    var response = Dms_Settings_V1_ListOperatorsResponse()
    response.operators = try await store.operators.operators().map(Operator.message)
    return response
  }

  public func get(
    request: Dms_Settings_V1_GetOperatorRequest, context: ServerContext
  ) async throws -> Dms_Settings_V1_Operator {
    Operator.message(try await existing(request.login))
  }

  private func existing(_ login: String) async throws -> StoredOperator {
    try requireLogin(login)
    guard let stored = try await store.operators.operator(login: login) else {
      throw RPCError(code: .notFound, message: "no operator with the login \(login)")
    }
    return stored
  }

  private func requireLogin(_ login: String) throws {
    guard !login.isEmpty else {
      throw ValidationFailure([RuleViolation(field: "login", rule: "operator login", message: "is required")])
    }
  }

  /// The request's operator, validated, its fields named as in the request.
  private func prepare(_ message: Dms_Settings_V1_Operator) throws -> Operator {
    var v = Validator()
    var value = Operator(message: message)
    do {
      value = try value.validated()
    } catch {
      v.append(
        error.violations.map { RuleViolation(field: "operator.\($0.field)", rule: $0.rule, message: $0.message) })
    }
    if deployment.mode == .singleCompany {
      v.require(
        value.companies.isEmpty, "operator.companies", "CFG-1",
        "is for multi-company mode (settings.multi-company true); single-company mode has one company")
    }
    // APISYS-4 (the cooperating system is one of the API systems) is checked in the
    // store's transaction.
    try v.check()
    return value
  }

  private func checkPassword(_ password: String, login: String, field: String) throws -> Bool {
    guard !password.isEmpty else { return false }
    try policy.check(password, login: login, field: field)
    return true
  }

  public func create(
    request: Dms_Settings_V1_CreateOperatorRequest, context: ServerContext
  ) async throws -> Dms_Settings_V1_Operator {
    let value = try prepare(request.operator)
    let hash =
      try checkPassword(request.password, login: value.login, field: "password")
      ? try await hasher.hash(request.password).encoded : nil
    let mustChange = request.mustChangePassword && hash != nil
    let stored = try await Self.renamingFields {
      try await store.operators.transaction(by: context.auditActor) { tx in
        try tx.createOperator(value, passwordHash: hash, mustChangePassword: mustChange)
      }
    }
    return Operator.message(stored)
  }

  public func update(
    request: Dms_Settings_V1_UpdateOperatorRequest, context: ServerContext
  ) async throws -> Dms_Settings_V1_Operator {
    try requireLogin(request.login)
    try requireRevision(request.operator.revision, field: "operator.revision")
    let value = try prepare(request.operator)
    let caller = context.caller
    let stored = try await Self.renamingFields {
      try await store.operators.transaction(by: context.auditActor) { tx in
        guard let current = try tx.operator(login: request.login) else {
          throw RPCError(code: .notFound, message: "no operator with the login \(request.login)")
        }
        if let caller, caller.kind == .operator, caller.id == current.id {
          guard value.administrator, !value.disabled else {
            throw RPCError(
              code: .failedPrecondition,
              message: "you cannot take away your own administrator flag or disable yourself: ask another administrator"
            )
          }
        }
        try Self.keepAnAdministrator(tx, current: current, after: value)
        return try tx.updateOperator(id: current.id, value, expectedRevision: request.operator.revision)
      }
    }
    return Operator.message(stored)
  }

  public func setPassword(
    request: Dms_Settings_V1_SetOperatorPasswordRequest, context: ServerContext
  ) async throws -> Dms_Settings_V1_Operator {
    let current = try await existing(request.login)
    guard try checkPassword(request.password, login: current.value.login, field: "password") else {
      throw ValidationFailure([RuleViolation(field: "password", rule: PasswordPolicy.rule, message: "is required")])
    }
    let hash = try await hasher.hash(request.password).encoded
    let stored = try await store.operators.transaction(by: context.auditActor) { tx in
      try tx.setPassword(
        operatorID: current.id, passwordHash: hash, mustChangePassword: request.mustChangePassword, keeping: nil,
        keptScope: .full)
    }
    return Operator.message(stored)
  }

  public func disableTwoStep(
    request: Dms_Settings_V1_DisableOperatorTwoStepRequest, context: ServerContext
  ) async throws -> Dms_Settings_V1_Operator {
    try requireLogin(request.login)
    let stored = try await store.operators.transaction(by: context.auditActor) { tx in
      guard let current = try tx.operator(login: request.login) else {
        throw RPCError(code: .notFound, message: "no operator with the login \(request.login)")
      }
      guard try tx.twoStep(operatorID: current.id) != nil else {
        throw RPCError(code: .failedPrecondition, message: "\(current.value.login) has no two-step login")
      }
      // TOOLS-4: an administrator turns it off (or a pending enrolment) for one who
      // lost the app.
      return try tx.clearTwoStep(operatorID: current.id, detail: "by an administrator")
    }
    return Operator.message(stored)
  }

  public func delete(
    request: Dms_Settings_V1_DeleteOperatorRequest, context: ServerContext
  ) async throws -> Dms_Settings_V1_DeleteOperatorResponse {
    try requireLogin(request.login)
    let caller = context.caller
    _ = try await store.operators.transaction(by: context.auditActor) { tx in
      guard let current = try tx.operator(login: request.login) else {
        throw RPCError(code: .notFound, message: "no operator with the login \(request.login)")
      }
      if let caller, caller.kind == .operator, caller.id == current.id {
        throw RPCError(
          code: .failedPrecondition, message: "you cannot delete yourself: ask another administrator")
      }
      try Self.keepAnAdministrator(tx, current: current, after: nil)
      return try tx.deleteOperator(id: current.id)
    }
    return Dms_Settings_V1_DeleteOperatorResponse()
  }

  /// Refuses a change that would leave no enabled administrator.
  private static func keepAnAdministrator(
    _ tx: any OperatorTransaction, current: StoredOperator, after: Operator?
  ) throws {
    let wasCounted = current.value.administrator && !current.value.disabled
    let isCounted = after.map { $0.administrator && !$0.disabled } ?? false
    if wasCounted, !isCounted, try tx.enabledAdministratorCount() <= 1 {
      throw RPCError(
        code: .failedPrecondition,
        message:
          "\(current.value.login) is the last enabled administrator: make another operator an administrator first")
    }
  }

  /// Store errors with the request's field names (`operator.login`, `operator.companies[0]`).
  private static func renamingFields<Result>(_ body: () async throws -> Result) async throws -> Result {
    do {
      return try await body()
    } catch let error as StoreError where error.field != nil {
      let field = "operator.\(error.field ?? "")"
      if error.kind == .notFound {
        throw ValidationFailure([RuleViolation(field: field, rule: error.rule ?? "", message: error.message)])
      }
      throw StoreError(error.kind, error.message, field: field, rule: error.rule)
    }
  }
}
