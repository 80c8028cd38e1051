import Foundation

/// Who is calling: the principal a call's session stands for, established by the
/// server's `CallAuthorizer` before the handler runs (docs/SECURITY.md).
///
/// A class: the context of every call carries it, and a copy is one reference count.
public final class Caller: Sendable {
  /// What kind of principal.
  public enum Kind: String, Sendable, Hashable {
    /// A person (an operator).
    case `operator`
    /// A cooperating system (APISYS), signed in with its identifier and secret.
    case system
  }

  /// What the session may do.
  public enum Scope: String, Sendable, Hashable {
    /// Everything the principal may do.
    case full
    /// Only change the password (the first sign-in with a generated or reset one).
    case changePassword = "change-password"
    /// Only turn two-step login on (it is enforced and the operator has none).
    case enrolTwoStep = "enrol-two-step"
  }

  /// Operator or system.
  public let kind: Kind
  /// The storage's id of the operator or system.
  public let id: Int64
  /// The operator's login, or the system's name: what the audit records.
  public let name: String
  /// May call every method.
  public let administrator: Bool
  /// The companies the principal belongs to, as `Company.codeKey` (upper case).
  public let companies: Set<String>
  /// What the session may do.
  public let scope: Scope
  /// The SHA-256 of the session's token (to end this session).
  public let sessionKey: Data
  /// When the session ends whatever happens.
  public let expiresAt: Date

  /// A caller.
  public init(
    kind: Kind, id: Int64, name: String, administrator: Bool, companies: Set<String>, scope: Scope,
    sessionKey: Data, expiresAt: Date
  ) {
    self.kind = kind
    self.id = id
    self.name = name
    self.administrator = administrator
    self.companies = companies
    self.scope = scope
    self.sessionKey = sessionKey
    self.expiresAt = expiresAt
  }

  /// Whether the caller may act on the company whose code key (upper case) is `codeKey`:
  /// administrators and API systems (inter-service calls serve every company) may act
  /// on all; other operators on theirs.
  public func belongs(toCompany codeKey: String) -> Bool {
    administrator || kind == .system || companies.contains(codeKey)
  }
}

/// Decides, before a handler runs, whether a call may run and who makes it: the
/// method's declared access (`MethodDescriptor.access`), the session in its metadata,
/// its company.
///
/// It runs on the connection's event loop for every call, so it must not block or
/// suspend: a lookup in memory, no database read, no KDF.
public protocol CallAuthorizer: Sendable {
  /// What the authorizer keeps of a call's metadata (its token's hash): made once per
  /// distinct call meta of a connection (`ServerContext.Origin`) and reused by every
  /// call that repeats it.
  func credential(from metadata: [String: String]) -> CallCredential

  /// The caller of a call of `origin`'s method, nil for a public method called
  /// without a session.
  ///
  /// - Throws: UNAUTHENTICATED (no session, or not a live one), PERMISSION_DENIED (the
  ///   method needs more), FAILED_PRECONDITION (the session may only change the
  ///   password), NOT_FOUND (a company the caller does not belong to).
  func authorize(_ origin: ServerContext.Origin) throws(RPCError) -> Caller?
}

/// A call's credential as its authorizer read it from the metadata.
public enum CallCredential: Sendable {
  /// No `authorization` metadata.
  case none
  /// `authorization` that is not `Bearer <token>` of the right form (the reason).
  case malformed(String)
  /// A session token's SHA-256.
  case session(Data)
}
