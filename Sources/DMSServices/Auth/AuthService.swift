import DMSDomain
import DMSMessages
import DMSRPC
import DMSStorage
import DMSStubs
import Foundation
import Logging
import Synchronization

/// `dms.auth.v1.Auth`: signing in and out (docs/SECURITY.md).
public struct AuthService: Dms_Auth_V1_Auth.ServiceProtocol {
  let store: any SettingsStore
  private let hasher: PasswordHasher
  let configuration: SecurityConfiguration
  let throttle: LoginThrottle
  private let initialAdministrator: InitialAdministrator?
  let logger: Logger
  private let inFlight: InFlightLogins
  /// Verified when the login does not exist, so that the answer takes as long.
  private let decoy: PasswordHasher.Hash

  /// The service over `store`'s operators.
  public init(
    store: any SettingsStore,
    hasher: PasswordHasher,
    configuration: SecurityConfiguration,
    initialAdministrator: InitialAdministrator? = nil,
    logger: Logger
  ) {
    self.store = store
    self.hasher = hasher
    self.configuration = configuration
    self.throttle = LoginThrottle(policy: configuration.throttle)
    self.initialAdministrator = initialAdministrator
    self.logger = logger
    self.inFlight = InFlightLogins()
    self.decoy = PasswordHasher.Hash(
      parameters: hasher.parameters, salt: Array(repeating: 0x5A, count: 16), digest: Array(repeating: 0, count: 32))
  }

  public func login(
    request: Dms_Auth_V1_LoginRequest, context: ServerContext
  ) async throws -> Dms_Auth_V1_LoginResponse {
    var v = Validator()
    v.require(!request.login.isEmpty, "login", "", "is required")
    v.require(!request.password.isEmpty, "password", "", "is required")
    v.require(request.login.count <= Operator.maxLoginLength, "login", "operator login", "is too long")
    v.require(
      request.password.count <= configuration.passwordPolicy.maximumLength, "password", PasswordPolicy.rule,
      "is too long")
    try v.check()
    let address = ServerContext.address(context.peer)
    if let wait = throttle.wait(login: request.login, address: address) {
      throw Self.tooManyAttempts(wait)
    }
    guard inFlight.enter(address) else {
      throw RPCError(
        code: .resourceExhausted, message: "too many sign-ins under way from this address: try again in a moment",
        trailers: ["retry-after-ms": "1000"])
    }
    defer { inFlight.leave(address) }

    let found = try await store.operators.credentials(login: request.login)
    let stored = found.flatMap { $0.passwordHash }.flatMap(PasswordHasher.Hash.init(encoded:))
    // A KDF runs whether or not the login exists: the same answer after the same time.
    let matches = try await hasher.verify(request.password, against: stored ?? decoy) && stored != nil
    guard matches, let (account, _) = found, !account.value.disabled, let stored else {
      let wait = throttle.failed(login: request.login, address: address)
      logger.warning(
        "sign-in refused",
        metadata: [
          "login": "\(request.login.prefix(64))", "peer": "\(address)",
          "reason":
            "\(found == nil ? "unknown login" : found?.0.value.disabled == true ? "disabled" : "wrong password")",
          "next-attempt-wait-ms": "\(wait.milliseconds)",
        ])
      throw RPCError(code: .unauthenticated, message: "wrong login or password")
    }
    let upgrade = hasher.needsUpgrade(stored) ? try await hasher.hash(request.password).encoded : nil
    let (token, tokenHash) = SessionTokens.make()
    let now = Date()
    var actor = context.auditActor
    actor.login = account.value.login
    let code = request.oneTimeCode
    let opened = try await store.operators.transaction(by: actor) { tx -> SessionRecord? in
      // TOOLS-4: with two-step login on, the code is checked (and its step recorded)
      // in the transaction that opens the session, so no code opens two.
      let twoStep = try tx.twoStep(operatorID: account.id).flatMap { $0.confirmed ? $0 : nil }
      if let twoStep {
        guard let secret = Base32.decode(twoStep.secret),
          let step = TOTP.matchingStep(code, secret: secret, at: now, after: twoStep.lastStep)
        else { return nil }
        try tx.useTwoStep(operatorID: account.id, step: step)
      }
      let enforced = try tx.securityPolicy().value.enforceTwoStep
      let scope: SessionRecord.Scope =
        account.mustChangePassword ? .changePassword : enforced && twoStep == nil ? .enrolTwoStep : .full
      let session = SessionRecord(
        tokenHash: tokenHash, holder: .operator(account.id), scope: scope, createdAt: now,
        expiresAt: now.addingTimeInterval(configuration.sessionLifetime.seconds), peer: address)
      if let upgrade { try tx.upgradePasswordHash(operatorID: account.id, passwordHash: upgrade) }
      try tx.createSession(session)
      return session
    }
    guard let session = opened else {
      let wait = throttle.failed(login: request.login, address: address)
      logger.warning(
        "sign-in refused",
        metadata: [
          "login": "\(account.value.login)", "peer": "\(address)",
          "reason": "\(code.isEmpty ? "one-time code missing" : "wrong or used one-time code")",
          "next-attempt-wait-ms": "\(wait.milliseconds)",
        ])
      throw RPCError(
        code: .unauthenticated,
        message: code.isEmpty
          ? "a one-time code is required: this operator has two-step login (one_time_code)"
          : "wrong or already used one-time code", trailers: [Self.twoStepTrailer: "required"])
    }
    throttle.succeeded(login: request.login)
    logger.info(
      "signed in", metadata: ["login": "\(account.value.login)", "peer": "\(address)", "scope": "\(session.scope)"])
    return loginResponse(
      token: token, session: session, login: account.value.login, administrator: account.value.administrator)
  }

  public func loginSystem(
    request: Dms_Auth_V1_LoginSystemRequest, context: ServerContext
  ) async throws -> Dms_Auth_V1_LoginResponse {
    var v = Validator()
    v.require(!request.identifier.isEmpty, "identifier", "APISYS-1", "is required")
    v.require(!request.secret.isEmpty, "secret", "", "is required")
    v.require(request.identifier.count <= 64, "identifier", "APISYS-1", "is too long")
    v.require(request.secret.count <= 64, "secret", "", "is too long")
    try v.check()
    let address = ServerContext.address(context.peer)
    // Throttled like operators' sign-ins, under a key no login can take.
    let throttleKey = "\u{0}system:" + request.identifier.lowercased()
    if let wait = throttle.wait(login: throttleKey, address: address) { throw Self.tooManyAttempts(wait) }
    let found = try await store.operators.systemCredentials(identifier: request.identifier)
    // Secrets are 256 random bits: their SHA-256 is compared (in constant time), no KDF
    // is needed against guessing.
    let offered = SessionTokens.decode(Substring(request.secret)).map { SessionTokens.hash($0) }
    guard let (system, stored) = found, let stored, let offered,
      PasswordHasher.constantTimeEqual(offered.bytes, stored)
    else {
      let wait = throttle.failed(login: throttleKey, address: address)
      logger.warning(
        "API system sign-in refused",
        metadata: [
          "identifier": "\(request.identifier.prefix(64))", "peer": "\(address)",
          "reason":
            "\(found == nil ? "unknown identifier" : found?.secretHash == nil ? "no secret set" : "wrong secret")",
          "next-attempt-wait-ms": "\(wait.milliseconds)",
        ])
      throw RPCError(code: .unauthenticated, message: "wrong API system identifier or secret")
    }
    throttle.succeeded(login: throttleKey)
    let (token, tokenHash) = SessionTokens.make()
    let now = Date()
    let session = SessionRecord(
      tokenHash: tokenHash, holder: .system(system.id), scope: .full, createdAt: now,
      expiresAt: now.addingTimeInterval(configuration.sessionLifetime.seconds), peer: address)
    var actor = context.auditActor
    actor.login = system.value.name
    try await store.operators.transaction(by: actor) { tx in try tx.createSession(session) }
    logger.info("API system signed in", metadata: ["system": "\(system.value.name)", "peer": "\(address)"])
    return loginResponse(token: token, session: session, login: system.value.name, administrator: false)
  }

  private func loginResponse(token: String, session: SessionRecord, login: String, administrator: Bool)
    -> Dms_Auth_V1_LoginResponse
  {
    var response = Dms_Auth_V1_LoginResponse()
    response.token = token
    response.expiresAtUnixMs = Int64(session.expiresAt.timeIntervalSince1970 * 1000)
    response.idleTimeoutSeconds = configuration.idleTimeout.components.seconds
    response.scope = Self.scope(SessionAuthorizer.scope(session.scope))
    response.login = login
    response.administrator = administrator
    return response
  }

  public func logout(
    request: Dms_Auth_V1_LogoutRequest, context: ServerContext
  ) async throws -> Dms_Auth_V1_LogoutResponse {
    let caller = try context.requireCaller()
    try await store.operators.transaction(by: context.auditActor) { tx in
      try tx.endSession(tokenHash: SessionTokenHash(bytes: caller.sessionKey))
    }
    return Dms_Auth_V1_LogoutResponse()
  }

  public func whoAmI(
    request: Dms_Auth_V1_WhoAmIRequest, context: ServerContext
  ) async throws -> Dms_Auth_V1_WhoAmIResponse {
    let caller = try context.requireCaller()
    var response = Dms_Auth_V1_WhoAmIResponse()
    response.login = caller.name
    response.administrator = caller.administrator
    response.system = caller.kind == .system
    response.scope = Self.scope(caller.scope)
    response.expiresAtUnixMs = Int64(caller.expiresAt.timeIntervalSince1970 * 1000)
    response.idleTimeoutSeconds = configuration.idleTimeout.components.seconds
    if caller.kind == .operator, let stored = try await store.operators.operator(login: caller.name) {
      response.fullName = stored.value.fullName
      response.companies = stored.value.companies
      response.twoStepEnabled = stored.twoStepEnabled
    }
    return response
  }

  public func changePassword(
    request: Dms_Auth_V1_ChangePasswordRequest, context: ServerContext
  ) async throws -> Dms_Auth_V1_ChangePasswordResponse {
    let caller = try context.requireCaller()
    guard caller.kind == .operator else {
      throw RPCError(
        code: .failedPrecondition,
        message: "an API system has no password: an administrator makes it a new secret (ApiSystems/RotateSecret)")
    }
    var v = Validator()
    v.require(!request.currentPassword.isEmpty, "current_password", "", "is required")
    v.append(
      configuration.passwordPolicy.violations(of: request.newPassword, login: caller.name, field: "new_password"))
    v.require(
      request.newPassword != request.currentPassword || request.newPassword.isEmpty, "new_password",
      PasswordPolicy.rule, "must differ from the current password")
    try v.check()
    let address = ServerContext.address(context.peer)
    if let wait = throttle.wait(login: caller.name, address: address) { throw Self.tooManyAttempts(wait) }
    guard let (account, hash) = try await store.operators.credentials(login: caller.name),
      account.id == caller.id
    else {
      throw RPCError(code: .unauthenticated, message: "the session has ended or expired: sign in again (Auth/Login)")
    }
    guard let stored = hash.flatMap(PasswordHasher.Hash.init(encoded:)),
      try await hasher.verify(request.currentPassword, against: stored)
    else {
      throttle.failed(login: caller.name, address: address)
      logger.warning(
        "password change refused: wrong current password", metadata: ["login": "\(caller.name)", "peer": "\(address)"])
      throw ValidationFailure([
        RuleViolation(field: "current_password", rule: "", message: "is not the current password")
      ])
    }
    let newHash = try await hasher.hash(request.newPassword).encoded
    let keeping = SessionTokenHash(bytes: caller.sessionKey)
    try await store.operators.transaction(by: context.auditActor) { tx in
      // TOOLS-4: when two-step login is enforced, an operator without it goes on to enrol.
      let enforced = try tx.securityPolicy().value.enforceTwoStep
      let keptScope: SessionRecord.Scope = enforced && !account.twoStepEnabled ? .enrolTwoStep : .full
      _ = try tx.setPassword(
        operatorID: account.id, passwordHash: newHash, mustChangePassword: false, keeping: keeping,
        keptScope: keptScope)
    }
    logger.info("password changed", metadata: ["login": "\(caller.name)", "peer": "\(address)"])
    initialAdministrator?.passwordChanged(login: caller.name)
    return Dms_Auth_V1_ChangePasswordResponse()
  }

  /// The trailer that says a sign-in needs a one-time code (`required`).
  static let twoStepTrailer = "two-step"

  /// A session's scope as the messages name it.
  static func scope(_ scope: Caller.Scope) -> Dms_Auth_V1_SessionScope {
    switch scope {
    case .full: .full
    case .changePassword: .changePassword
    case .enrolTwoStep: .enrolTwoStep
    }
  }

  static func tooManyAttempts(_ wait: Duration) -> RPCError {
    let milliseconds = max(1, wait.milliseconds)
    return RPCError(
      code: .resourceExhausted,
      message: "too many failed sign-ins: try again in \((milliseconds + 999) / 1000) s",
      trailers: ["retry-after-ms": String(milliseconds)])
  }
}

/// Sign-ins under way per address: each costs a KDF (128 MiB, a quarter of a second),
/// so one address may not queue many at once.
final class InFlightLogins: Sendable {
  static let perAddress = 4
  static let total = 64
  private let counts = Mutex<(total: Int, byAddress: [String: Int])>((0, [:]))

  func enter(_ address: String) -> Bool {
    counts.withLock { counts in
      guard counts.total < Self.total, counts.byAddress[address, default: 0] < Self.perAddress else { return false }
      counts.total += 1
      counts.byAddress[address, default: 0] += 1
      return true
    }
  }

  func leave(_ address: String) {
    counts.withLock { counts in
      counts.total -= 1
      let left = counts.byAddress[address, default: 1] - 1
      counts.byAddress[address] = left > 0 ? left : nil
    }
  }
}

extension Duration {
  var milliseconds: Int64 { components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000 }
  var seconds: TimeInterval { TimeInterval(components.seconds) + TimeInterval(components.attoseconds) / 1e18 }
}

extension ServerContext {
  /// The caller; UNAUTHENTICATED when the call has none (a server without an authorizer).
  func requireCaller() throws -> Caller {
    guard let caller else {
      throw RPCError(code: .unauthenticated, message: "\(method.fullName) needs a session: sign in (Auth/Login)")
    }
    return caller
  }
}
