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
  private let store: any SettingsStore
  private let hasher: PasswordHasher
  private let configuration: SecurityConfiguration
  private let throttle: LoginThrottle
  private let initialAdministrator: InitialAdministrator?
  private let logger: Logger
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
    throttle.succeeded(login: request.login)
    let upgrade = hasher.needsUpgrade(stored) ? try await hasher.hash(request.password).encoded : nil
    let (token, tokenHash) = SessionTokens.make()
    let now = Date()
    let session = SessionRecord(
      tokenHash: tokenHash, operatorID: account.id, scope: account.mustChangePassword ? .changePassword : .full,
      createdAt: now, expiresAt: now.addingTimeInterval(configuration.sessionLifetime.seconds), peer: address)
    var actor = context.auditActor
    actor.login = account.value.login
    try await store.operators.transaction(by: actor) { tx in
      if let upgrade { try tx.upgradePasswordHash(operatorID: account.id, passwordHash: upgrade) }
      try tx.createSession(session)
    }
    logger.info(
      "signed in", metadata: ["login": "\(account.value.login)", "peer": "\(address)", "scope": "\(session.scope)"])
    var response = Dms_Auth_V1_LoginResponse()
    response.token = token
    response.expiresAtUnixMs = Int64(session.expiresAt.timeIntervalSince1970 * 1000)
    response.idleTimeoutSeconds = configuration.idleTimeout.components.seconds
    response.scope = Self.scope(session.scope == .full)
    response.login = account.value.login
    response.administrator = account.value.administrator
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
    response.scope = Self.scope(caller.scope == .full)
    response.expiresAtUnixMs = Int64(caller.expiresAt.timeIntervalSince1970 * 1000)
    response.idleTimeoutSeconds = configuration.idleTimeout.components.seconds
    if let stored = try await store.operators.operator(login: caller.name) {
      response.fullName = stored.value.fullName
      response.companies = stored.value.companies
    }
    return response
  }

  public func changePassword(
    request: Dms_Auth_V1_ChangePasswordRequest, context: ServerContext
  ) async throws -> Dms_Auth_V1_ChangePasswordResponse {
    let caller = try context.requireCaller()
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
      _ = try tx.setPassword(operatorID: account.id, passwordHash: newHash, mustChangePassword: false, keeping: keeping)
    }
    logger.info("password changed", metadata: ["login": "\(caller.name)", "peer": "\(address)"])
    initialAdministrator?.passwordChanged(login: caller.name)
    return Dms_Auth_V1_ChangePasswordResponse()
  }

  /// A session's scope as the messages name it.
  static func scope(_ full: Bool) -> Dms_Auth_V1_SessionScope { full ? .full : .changePassword }

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
