import DMSDomain
import DMSRPC
import DMSStorage
import Foundation

/// The server's `CallAuthorizer`: enforces each method's declared access
/// (`(dms.rpc.v1.access)` in its .proto) before the handler runs.
///
/// - PUBLIC: anyone; a valid session, when sent, still names the caller.
/// - SESSION: a live session (UNAUTHENTICATED otherwise).
/// - ADMINISTRATOR: an operator with the administrator flag (PERMISSION_DENIED otherwise).
/// - SYSTEM: an API system or an administrator.
/// - A session that may only change the password reaches only Auth's ChangePassword,
///   WhoAmI and Logout; one that may only enrol in two-step login (TOOLS-4), only
///   Auth's EnrolTwoStep, ConfirmTwoStep, WhoAmI and Logout (FAILED_PRECONDITION
///   otherwise).
/// - A company-scoped method's `company` metadata must name a company the caller
///   belongs to: NOT_FOUND otherwise, the answer for a company that does not exist.
///
/// A session is checked in memory (`OperatorDirectory.principal`): a SHA-256 made
/// once per distinct call meta of a connection, then one dictionary lookup per call.
public struct SessionAuthorizer: CallAuthorizer {
  private let directory: any OperatorDirectory
  private let idleTimeout: Duration

  /// The methods a password-change-only session may call.
  static let passwordChangeMethods: Set<String> = [
    "/dms.auth.v1.Auth/ChangePassword", "/dms.auth.v1.Auth/WhoAmI", "/dms.auth.v1.Auth/Logout",
  ]

  /// The methods an enrolment-only session may call (TOOLS-4).
  static let enrolmentMethods: Set<String> = [
    "/dms.auth.v1.Auth/EnrolTwoStep", "/dms.auth.v1.Auth/ConfirmTwoStep", "/dms.auth.v1.Auth/WhoAmI",
    "/dms.auth.v1.Auth/Logout",
  ]

  /// An authorizer over the store's sessions.
  public init(directory: any OperatorDirectory, configuration: SecurityConfiguration) {
    self.directory = directory
    self.idleTimeout = configuration.idleTimeout
  }

  public func credential(from metadata: [String: String]) -> CallCredential {
    SessionTokens.credential(authorization: metadata[MetadataKey.authorization])
  }

  public func authorize(_ origin: ServerContext.Origin) throws(RPCError) -> Caller? {
    let method = origin.method
    let caller: Caller?
    switch origin.credential {
    case .none:
      if method.access == .public { return nil }
      throw RPCError(
        code: .unauthenticated,
        message: "\(method.fullName) needs a session: sign in (Auth/Login) and send authorization: Bearer <token>")
    case .malformed(let reason):
      if method.access == .public { return nil }
      throw RPCError(code: .unauthenticated, message: reason)
    case .session(let key):
      caller = lookUp(key)
    }
    guard let caller else {
      if method.access == .public { return nil }
      throw RPCError(code: .unauthenticated, message: "the session has ended or expired: sign in again (Auth/Login)")
    }
    switch caller.scope {
    case .full:
      break
    case .changePassword:
      if method.access != .public, !Self.passwordChangeMethods.contains(method.fullName) {
        throw RPCError(
          code: .failedPrecondition,
          message: "this session may only change the password: call Auth/ChangePassword (dmsctl passwd), then go on")
      }
    case .enrolTwoStep:
      if method.access != .public, !Self.enrolmentMethods.contains(method.fullName) {
        throw RPCError(
          code: .failedPrecondition,
          message:
            "two-step login is enforced and you have none: turn it on first (Auth/EnrolTwoStep, then "
            + "Auth/ConfirmTwoStep; dmsctl 2fa enrol), then go on")
      }
    }
    switch method.access {
    case .public, .session:
      break
    case .administrator:
      guard caller.administrator else {
        throw RPCError(code: .permissionDenied, message: "\(method.fullName) is for administrators")
      }
    case .system:
      guard caller.administrator || caller.kind == .system else {
        throw RPCError(code: .permissionDenied, message: "\(method.fullName) is for API systems and administrators")
      }
    }
    if method.companyScoped, let company = origin.metadata[MetadataKey.company],
      !caller.belongs(toCompany: Company.codeKey(company))
    {
      throw RPCError(code: .notFound, message: "no company with the short name \(company)")
    }
    return caller
  }

  static func scope(_ scope: SessionRecord.Scope) -> Caller.Scope {
    switch scope {
    case .full: .full
    case .changePassword: .changePassword
    case .enrolTwoStep: .enrolTwoStep
    }
  }

  /// The live session of `key` as a caller, or nil.
  private func lookUp(_ key: Data) -> Caller? {
    guard
      let principal = directory.principal(
        forTokenHash: SessionTokenHash(bytes: key), at: Date(), idleTimeout: idleTimeout)
    else { return nil }
    switch principal.holder {
    case .operator(let stored, let companyKeys):
      let value = stored.value
      guard !value.disabled else { return nil }
      return Caller(
        kind: .operator, id: stored.id, name: value.login, administrator: value.administrator,
        companies: companyKeys, scope: Self.scope(principal.session.scope), sessionKey: key,
        expiresAt: principal.session.expiresAt)
    case .system(let system):
      return Caller(
        kind: .system, id: system.id, name: system.value.name, administrator: false, companies: [], scope: .full,
        sessionKey: key, expiresAt: principal.session.expiresAt)
    }
  }
}
