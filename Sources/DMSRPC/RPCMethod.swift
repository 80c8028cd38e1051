import Foundation
import SwiftProtobuf

/// A method a server serves: its descriptor and its type-erased handler.
///
/// Generated code makes these (`ServiceProtocol.rpcMethods`); tests may make their own.
public struct RPCMethod: Sendable {
  /// The method.
  public let descriptor: MethodDescriptor
  private let prepareCall: @Sendable (UnsafeRawBufferPointer) throws -> PreparedCall

  /// A method whose request is decoded by `prepare`.
  public init(
    descriptor: MethodDescriptor,
    prepare: @escaping @Sendable (UnsafeRawBufferPointer) throws -> PreparedCall
  ) {
    self.descriptor = descriptor
    self.prepareCall = prepare
  }

  /// Decodes the request from `payload` (read in place: the bytes are not copied) and
  /// returns the call, ready to run.
  ///
  /// - Throws: `RPCError` INVALID_ARGUMENT when the payload is not a request.
  public func prepare(payload: UnsafeRawBufferPointer) throws(RPCError) -> PreparedCall {
    do {
      return try prepareCall(payload)
    } catch {
      throw RPCError(
        code: .invalidArgument,
        message: "the request payload does not decode as \(descriptor.requestType)"
      )
    }
  }

  /// A unary method.
  ///
  /// `immediate`, when given, is tried first, on the connection's event loop, within
  /// the read that delivered the call: it answers without suspending (a cached read,
  /// a health check) or returns nil, and then `handler` runs in a task. A call it
  /// answers costs no task at all.
  public static func unary<Request: SwiftProtobuf.Message, Response: SwiftProtobuf.Message>(
    _ descriptor: MethodDescriptor,
    immediate: (@Sendable (Request, ServerContext) throws -> Response?)? = nil,
    handler: @escaping @Sendable (Request, ServerContext) async throws -> Response
  ) -> RPCMethod {
    RPCMethod(descriptor: descriptor) { payload in
      PreparedCall(UnaryCall(request: try Request.decode(from: payload), immediate: immediate, handler: handler))
    }
  }

  /// A server-streaming method.
  public static func serverStreaming<
    Request: SwiftProtobuf.Message, Response: SwiftProtobuf.Message
  >(
    _ descriptor: MethodDescriptor,
    handler: @escaping @Sendable (Request, ResponseStreamWriter<Response>, ServerContext) async throws -> Void
  ) -> RPCMethod {
    RPCMethod(descriptor: descriptor) { payload in
      let request = try Request.decode(from: payload)
      return PreparedCall { context, sink in
        try await handler(request, ResponseStreamWriter(sink: sink), context)
        return []
      }
    }
  }
}

/// What a prepared call runs. `RPCMethod.unary` makes one per call; a test or a
/// hand-written method may make its own.
public protocol CallBody: Sendable {
  /// Answers without suspending, or returns nil to have `run` called in a task. Runs
  /// on the connection's event loop: it must not block.
  func runImmediately(context: ServerContext) throws -> [UInt8]?
  /// Runs the handler; returns the END frame's payload (empty for streaming calls).
  func run(context: ServerContext, sink: any ResponseSink) async throws -> [UInt8]
}

extension CallBody {
  /// Never answers immediately.
  public func runImmediately(context: ServerContext) throws -> [UInt8]? { nil }
}

/// A call whose request is decoded, ready to run.
public struct PreparedCall: Sendable {
  private let body: any CallBody

  /// A call running `body`.
  public init(_ body: any CallBody) {
    self.body = body
  }

  /// A call running `body`, which returns the END payload (the unary response).
  public init(_ body: @escaping @Sendable (ServerContext, any ResponseSink) async throws -> [UInt8]) {
    self.body = ClosureCall(body: body)
  }

  /// Tries to answer without suspending; nil: call `run`.
  public func runImmediately(context: ServerContext) throws -> [UInt8]? {
    try body.runImmediately(context: context)
  }

  /// Runs the handler; returns the END frame's payload (empty for streaming calls).
  public func run(context: ServerContext, sink: any ResponseSink) async throws -> [UInt8] {
    try await body.run(context: context, sink: sink)
  }
}

/// A unary call: the decoded request and the method's handlers, in one allocation.
private final class UnaryCall<Request: SwiftProtobuf.Message, Response: SwiftProtobuf.Message>: CallBody {
  let request: Request
  let immediate: (@Sendable (Request, ServerContext) throws -> Response?)?
  let handler: @Sendable (Request, ServerContext) async throws -> Response

  init(
    request: Request,
    immediate: (@Sendable (Request, ServerContext) throws -> Response?)?,
    handler: @escaping @Sendable (Request, ServerContext) async throws -> Response
  ) {
    self.request = request
    self.immediate = immediate
    self.handler = handler
  }

  func runImmediately(context: ServerContext) throws -> [UInt8]? {
    try immediate?(request, context)?.serializedBytes()
  }

  func run(context: ServerContext, sink: any ResponseSink) async throws -> [UInt8] {
    try await handler(request, context).serializedBytes()
  }
}

private struct ClosureCall: CallBody {
  let body: @Sendable (ServerContext, any ResponseSink) async throws -> [UInt8]

  func run(context: ServerContext, sink: any ResponseSink) async throws -> [UInt8] {
    try await body(context, sink)
  }
}

extension SwiftProtobuf.Message {
  /// Decodes a message from bytes it reads in place, without copying them.
  public static func decode(from bytes: UnsafeRawBufferPointer) throws -> Self {
    // A span over the bytes: no `Data` (and no allocation) around them.
    try Self(serializedBytes: bytes.bytes)
  }
}
