/// Who made a change or revealed a secret, as written to the audit.
public struct AuditActor: Sendable, Hashable {
  /// The operator's login, once calls carry sessions; empty before.
  public var login: String
  /// The caller's address, or `system` for the server's own changes.
  public var peer: String
  /// The client's `user-agent` metadata.
  public var userAgent: String
  /// The call's `request-id`.
  public var requestID: String

  /// An actor.
  public init(login: String = "", peer: String, userAgent: String = "", requestID: String = "") {
    self.login = login
    self.peer = peer
    self.userAgent = userAgent
    self.requestID = requestID
  }

  /// The server itself, doing `what` (the mode switch at start-up, ...).
  public static func system(_ what: String) -> AuditActor {
    AuditActor(login: "", peer: "system", userAgent: what, requestID: "")
  }
}
