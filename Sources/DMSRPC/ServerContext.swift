/// What a handler knows about the call it serves, besides the request.
public struct ServerContext: Sendable {
  /// What the calls of one connection that carry the same meta share: the method, the
  /// metadata and the peer. The server keeps one per repeated meta, so that making a
  /// call's context costs one reference count, not one per field.
  public final class Origin: Sendable {
    /// The method called.
    public let method: MethodDescriptor
    /// The calls' metadata (lower-case keys).
    public let metadata: [String: String]
    /// The peer's address, for logs.
    public let peer: String
    /// The session credential of the metadata, as the server's authorizer read it.
    public let credential: CallCredential

    /// An origin.
    public init(
      method: MethodDescriptor, metadata: [String: String], peer: String, credential: CallCredential = .none
    ) {
      self.method = method
      self.metadata = metadata
      self.peer = peer
      self.credential = credential
    }
  }

  /// The method, metadata and peer, shared with the connection's calls of the same meta.
  public let origin: Origin
  /// The request id: the client's `request-id`, or one the server made.
  public let requestID: String
  /// When the call's deadline passes, if it has one. The server cancels the handler
  /// then; a handler may also use it to bound its own waits.
  public let deadline: ContinuousClock.Instant?
  /// Who is calling, as the server's authorizer established it; nil for a public
  /// method called without a session (and on a server without an authorizer).
  public let caller: Caller?

  /// The method called.
  public var method: MethodDescriptor { origin.method }
  /// The call's metadata (lower-case keys).
  public var metadata: [String: String] { origin.metadata }
  /// The peer's address, for logs.
  public var peer: String { origin.peer }

  /// A context; made by the server for each call.
  public init(
    method: MethodDescriptor,
    metadata: [String: String],
    requestID: String,
    deadline: ContinuousClock.Instant?,
    peer: String,
    caller: Caller? = nil
  ) {
    self.init(
      origin: Origin(method: method, metadata: metadata, peer: peer), requestID: requestID, deadline: deadline,
      caller: caller)
  }

  /// A context for a call from `origin`.
  public init(origin: Origin, requestID: String, deadline: ContinuousClock.Instant?, caller: Caller? = nil) {
    self.origin = origin
    self.requestID = requestID
    self.deadline = deadline
    self.caller = caller
  }
}
