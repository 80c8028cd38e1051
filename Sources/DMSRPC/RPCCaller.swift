import SwiftProtobuf

/// The messages of a server-streaming response, ending when the call ends.
///
/// Iteration throws `RPCError` if the call ends with a status other than OK.
/// Dropping the sequence (or cancelling the iterating task) cancels the call.
public typealias RPCResponseStream<Response> = AsyncThrowingStream<Response, any Error>

/// Per-call options.
public struct CallOptions: Sendable {
  /// How long the call may take; nil for no deadline.
  public var timeout: Duration?
  /// Metadata sent with the call (lower-case keys).
  public var metadata: [String: String]

  /// Options with an optional timeout and metadata.
  public init(timeout: Duration? = nil, metadata: [String: String] = [:]) {
    self.timeout = timeout
    self.metadata = metadata
  }
}

/// Something that can make calls: the client library's connection, or a test double.
///
/// Generated typed clients (`Dms_Rpc_V1_Health.Client`) call through it.
public protocol RPCCaller: Sendable {
  /// Makes a unary call.
  ///
  /// - Throws: `RPCError` with the call's status when it is not OK.
  nonisolated(nonsending) func unary<Request: SwiftProtobuf.Message, Response: SwiftProtobuf.Message>(
    _ method: MethodDescriptor,
    request: Request,
    options: CallOptions
  ) async throws -> Response

  /// Makes a server-streaming call.
  func serverStreaming<Request: SwiftProtobuf.Message, Response: SwiftProtobuf.Message>(
    _ method: MethodDescriptor,
    request: Request,
    options: CallOptions
  ) -> RPCResponseStream<Response>
}
