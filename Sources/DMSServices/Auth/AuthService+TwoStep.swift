import DMSDomain
import DMSMessages
import DMSRPC
import DMSStorage
import DMSStubs
import Foundation

/// Two-step login (TOOLS-4): TOTP, RFC 6238.
extension AuthService {
  public func enrolTwoStep(
    request: Dms_Auth_V1_EnrolTwoStepRequest, context: ServerContext
  ) async throws -> Dms_Auth_V1_EnrolTwoStepResponse {
    let caller = try Self.requireOperator(context)
    let secret = TOTP.newSecret()
    try await store.operators.transaction(by: context.auditActor) { tx in
      try tx.beginTwoStep(operatorID: caller.id, secret: Base32.encode(secret))
    }
    logger.info("two-step login enrolment begun", metadata: ["login": "\(caller.name)"])
    var response = Dms_Auth_V1_EnrolTwoStepResponse()
    response.secret = Base32.encode(secret)
    response.uri = TOTP.uri(secret: secret, issuer: configuration.twoStepIssuer, account: caller.name)
    return response
  }

  public func confirmTwoStep(
    request: Dms_Auth_V1_ConfirmTwoStepRequest, context: ServerContext
  ) async throws -> Dms_Auth_V1_ConfirmTwoStepResponse {
    let caller = try Self.requireOperator(context)
    try checkAttempt(code: request.code, caller: caller, context: context)
    let session = caller.scope == .enrolTwoStep ? SessionTokenHash(bytes: caller.sessionKey) : nil
    let now = Date()
    let confirmed = try await store.operators.transaction(by: context.auditActor) { tx -> Bool in
      let current = try tx.twoStep(operatorID: caller.id)
      guard let pending = current, !pending.confirmed else {
        throw RPCError(
          code: .failedPrecondition,
          message: current == nil
            ? "no two-step login is being set up: call Auth/EnrolTwoStep (dmsctl 2fa enrol) first"
            : "two-step login is already on")
      }
      guard let secret = Base32.decode(pending.secret),
        let step = TOTP.matchingStep(request.code, secret: secret, at: now, after: pending.lastStep)
      else { return false }
      _ = try tx.confirmTwoStep(operatorID: caller.id, step: step, session: session, scope: .full)
      return true
    }
    try settle(confirmed, caller: caller, context: context)
    logger.info("two-step login on", metadata: ["login": "\(caller.name)"])
    return Dms_Auth_V1_ConfirmTwoStepResponse()
  }

  public func disableTwoStep(
    request: Dms_Auth_V1_DisableTwoStepRequest, context: ServerContext
  ) async throws -> Dms_Auth_V1_DisableTwoStepResponse {
    let caller = try Self.requireOperator(context)
    try checkAttempt(code: request.code, caller: caller, context: context)
    let now = Date()
    let disabled = try await store.operators.transaction(by: context.auditActor) { tx -> Bool in
      guard let current = try tx.twoStep(operatorID: caller.id), current.confirmed else {
        throw RPCError(code: .failedPrecondition, message: "two-step login is not on")
      }
      guard let secret = Base32.decode(current.secret),
        TOTP.matchingStep(request.code, secret: secret, at: now, after: current.lastStep) != nil
      else { return false }
      _ = try tx.clearTwoStep(operatorID: caller.id, detail: "by the operator, with a code")
      return true
    }
    try settle(disabled, caller: caller, context: context)
    logger.info("two-step login off", metadata: ["login": "\(caller.name)"])
    return Dms_Auth_V1_DisableTwoStepResponse()
  }

  /// The calling operator (API systems have no two-step login).
  static func requireOperator(_ context: ServerContext) throws -> Caller {
    let caller = try context.requireCaller()
    guard caller.kind == .operator else {
      throw RPCError(code: .failedPrecondition, message: "an API system has no two-step login")
    }
    return caller
  }

  /// Refuses a malformed code, and one while failed codes make the caller wait.
  private func checkAttempt(code: String, caller: Caller, context: ServerContext) throws {
    guard TOTP.wellFormed(code) != nil else {
      throw ValidationFailure([
        RuleViolation(field: "code", rule: "TOOLS-4", message: "must be the app's \(TOTP.digits)-digit code")
      ])
    }
    if let wait = throttle.wait(login: caller.name, address: ServerContext.address(context.peer)) {
      throw Self.tooManyAttempts(wait)
    }
  }

  /// Counts a wrong code as a failed attempt.
  private func settle(_ accepted: Bool, caller: Caller, context: ServerContext) throws {
    let address = ServerContext.address(context.peer)
    guard accepted else {
      throttle.failed(login: caller.name, address: address)
      logger.warning("wrong one-time code", metadata: ["login": "\(caller.name)", "peer": "\(address)"])
      throw ValidationFailure([
        RuleViolation(field: "code", rule: "TOOLS-4", message: "is wrong or was already used: wait for the next one")
      ])
    }
    throttle.succeeded(login: caller.name)
  }
}
