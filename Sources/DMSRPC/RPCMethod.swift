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
  public static func unary<Request: SwiftProtobuf.Message, Response: SwiftProtobuf.Message>(
    _ descriptor: MethodDescriptor,
    handler: @escaping @Sendable (Request, ServerContext) async throws -> Response
  ) -> RPCMethod {
    RPCMethod(descriptor: descriptor) { payload in
      let request = try Request.decode(from: payload)
      return PreparedCall { context, _ in
        try await handler(request, context).serializedBytes()
      }
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

/// A call whose request is decoded, ready to run.
public struct PreparedCall: Sendable {
  private let body: @Sendable (ServerContext, any ResponseSink) async throws -> [UInt8]

  /// A call running `body`, which returns the END payload (the unary response).
  public init(_ body: @escaping @Sendable (ServerContext, any ResponseSink) async throws -> [UInt8]) {
    self.body = body
  }

  /// Runs the handler; returns the END frame's payload (empty for streaming calls).
  public func run(context: ServerContext, sink: any ResponseSink) async throws -> [UInt8] {
    try await body(context, sink)
  }
}

extension SwiftProtobuf.Message {
  /// Decodes a message from bytes it reads in place, without copying them.
  public static func decode(from bytes: UnsafeRawBufferPointer) throws -> Self {
    guard let base = bytes.baseAddress, bytes.count > 0 else { return Self() }
    let view = Data(
      bytesNoCopy: UnsafeMutableRawPointer(mutating: base),
      count: bytes.count,
      deallocator: .none
    )
    return try Self(serializedBytes: view)
  }
}
