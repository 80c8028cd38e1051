/// What a handler knows about the call it serves, besides the request.
public struct ServerContext: Sendable {
  /// The method called.
  public let method: MethodDescriptor
  /// The call's metadata (lower-case keys).
  public let metadata: [String: String]
  /// The request id: the client's `request-id`, or one the server made.
  public let requestID: String
  /// When the call's deadline passes, if it has one. The server cancels the handler
  /// then; a handler may also use it to bound its own waits.
  public let deadline: ContinuousClock.Instant?
  /// The peer's address, for logs.
  public let peer: String

  /// A context; made by the server for each call.
  public init(
    method: MethodDescriptor,
    metadata: [String: String],
    requestID: String,
    deadline: ContinuousClock.Instant?,
    peer: String
  ) {
    self.method = method
    self.metadata = metadata
    self.requestID = requestID
    self.deadline = deadline
    self.peer = peer
  }
}
