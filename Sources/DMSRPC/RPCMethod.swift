import Foundation
import SwiftProtobuf

/// A method a server serves: its descriptor and its type-erased handler.
///
/// Generated code makes these (`ServiceProtocol.rpcMethods`); tests may make their own.
public struct RPCMethod: Sendable {
  /// The descriptor and the handler, in one shared object: the server copies the
  /// method of every call, and a copy is then one reference count, not two.
  private final class Storage: Sendable {
    let descriptor: MethodDescriptor
    let begin: @Sendable (UnsafeRawBufferPointer, ServerContext) throws -> CallStart

    init(
      descriptor: MethodDescriptor,
      begin: @escaping @Sendable (UnsafeRawBufferPointer, ServerContext) throws -> CallStart
    ) {
      self.descriptor = descriptor
      self.begin = begin
    }
  }

  private let storage: Storage

  /// The method.
  public var descriptor: MethodDescriptor { storage.descriptor }

  /// A method whose calls start with `begin`: it decodes the request from the payload
  /// (read in place) and either answers at once, without suspending, or returns the
  /// call to run in a task. It runs on the connection's event loop, so it must not
  /// block. A payload that does not decode throws `RPCError.undecodableRequest`.
  public init(
    descriptor: MethodDescriptor,
    begin: @escaping @Sendable (UnsafeRawBufferPointer, ServerContext) throws -> CallStart
  ) {
    storage = Storage(descriptor: descriptor, begin: begin)
  }

  /// Starts a call: decodes the request from `payload` (once, read in place: the bytes
  /// are not copied) and either answers it now (a method's immediate hook, on the
  /// caller's thread, the connection's event loop) or returns the call, ready to run in
  /// a task. A small immediate answer is held inline: no allocation for it.
  ///
  /// - Throws: `RPCError` INVALID_ARGUMENT when the payload is not a request; an
  ///   immediate hook's error as thrown.
  public func begin(payload: UnsafeRawBufferPointer, context: ServerContext) throws -> CallStart {
    try storage.begin(payload, context)
  }

  /// A unary method.
  ///
  /// `immediate`, when given, is tried first, on the connection's event loop, within
  /// the read that delivered the call: it answers without suspending or blocking (a
  /// cached read, a health check) or returns nil, and then `handler` runs in a task off
  /// the loop, with the request decoded once for both. A call it answers costs no task.
  public static func unary<Request: SwiftProtobuf.Message, Response: SwiftProtobuf.Message>(
    _ descriptor: MethodDescriptor,
    immediate: (@Sendable (Request, ServerContext) throws -> Response?)? = nil,
    handler: @escaping @Sendable (Request, ServerContext) async throws -> Response
  ) -> RPCMethod {
    RPCMethod(descriptor: descriptor) { payload, context in
      let request: Request = try decodeRequest(payload, of: descriptor)
      if let immediate, let answer = try immediate(request, context) {
        return .answered(try answer.wireEncoding())
      }
      return .run(PreparedCall(UnaryCall(request: request, handler: handler)))
    }
  }

  /// A server-streaming method.
  public static func serverStreaming<
    Request: SwiftProtobuf.Message, Response: SwiftProtobuf.Message
  >(
    _ descriptor: MethodDescriptor,
    handler: @escaping @Sendable (Request, ResponseStreamWriter<Response>, ServerContext) async throws -> Void
  ) -> RPCMethod {
    RPCMethod(descriptor: descriptor) { payload, _ in
      let request: Request = try decodeRequest(payload, of: descriptor)
      return .run(
        PreparedCall { context, sink in
          try await handler(request, ResponseStreamWriter(sink: sink), context)
          return []
        })
    }
  }

  private static func decodeRequest<Request: SwiftProtobuf.Message>(
    _ payload: UnsafeRawBufferPointer, of descriptor: MethodDescriptor
  ) throws(RPCError) -> Request {
    do {
      return try Request.decode(from: payload)
    } catch {
      throw .undecodableRequest(descriptor)
    }
  }
}

/// How a call starts (`RPCMethod.begin`): answered at once, or a call to run.
public enum CallStart: Sendable {
  /// The response's bytes: the call is over.
  case answered(WireBytes)
  /// The call, its request decoded, to run in a task.
  case run(PreparedCall)
}

/// What a prepared call runs. `RPCMethod.unary` makes one per call; a test or a
/// hand-written method may make its own.
public protocol CallBody: Sendable {
  /// Runs the handler; returns the END frame's payload (empty for streaming calls).
  func run(context: ServerContext, sink: any ResponseSink) async throws -> [UInt8]
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

  /// Runs the handler; returns the END frame's payload (empty for streaming calls).
  public func run(context: ServerContext, sink: any ResponseSink) async throws -> [UInt8] {
    try await body.run(context: context, sink: sink)
  }
}

/// A unary call: the decoded request and the method's handler, in one allocation.
private final class UnaryCall<Request: SwiftProtobuf.Message, Response: SwiftProtobuf.Message>: CallBody {
  let request: Request
  let handler: @Sendable (Request, ServerContext) async throws -> Response

  init(request: Request, handler: @escaping @Sendable (Request, ServerContext) async throws -> Response) {
    self.request = request
    self.handler = handler
  }

  func run(context: ServerContext, sink: any ResponseSink) async throws -> [UInt8] {
    try await handler(request, context).wireBytes()
  }
}

private struct ClosureCall: CallBody {
  let body: @Sendable (ServerContext, any ResponseSink) async throws -> [UInt8]

  func run(context: ServerContext, sink: any ResponseSink) async throws -> [UInt8] {
    try await body(context, sink)
  }
}

extension SwiftProtobuf.Message {
  /// The message's protobuf encoding, as `serializedBytes()` makes it, but into a
  /// byte type of this module, so that swift-protobuf's generic serializer (not
  /// specialized across the module boundary) makes its buffer through non-generic
  /// code: no generic metadata lookups per call.
  public func wireBytes() throws -> [UInt8] {
    try wireEncoding().array
  }

  /// The message's protobuf encoding, as `wireBytes()` makes it, held inline when it
  /// is small (`WireBytes.inlineCapacity`): no allocation for it.
  public func wireEncoding() throws -> WireBytes {
    try serializedBytes()
  }

  /// Decodes a message from bytes it reads in place, without copying them.
  public static func decode(from bytes: UnsafeRawBufferPointer) throws -> Self {
    // An empty payload is the default message (a common request: no fields set).
    guard !bytes.isEmpty else { return Self() }
    // A span over the bytes: no `Data` (and no allocation) around them.
    return try Self(serializedBytes: bytes.bytes)
  }
}

extension RPCError {
  /// INVALID_ARGUMENT: the payload is not a request of `method`.
  static func undecodableRequest(_ method: MethodDescriptor) -> RPCError {
    RPCError(code: .invalidArgument, message: "the request payload does not decode as \(method.requestType)")
  }
}

/// A message's protobuf encoding, made by swift-protobuf through `wireEncoding()`:
/// up to `inlineCapacity` bytes are held in the value itself (an answer such as a
/// health check's costs no allocation), more in an array.
public struct WireBytes: SwiftProtobufContiguousBytes, Sendable {
  /// The largest encoding held inline.
  public static let inlineCapacity = 64

  private var small: InlineArray<64, UInt8>
  private var smallCount: Int
  private var large: [UInt8]?

  public init(repeating: UInt8, count: Int) {
    small = InlineArray(repeating: repeating)
    if count <= Self.inlineCapacity {
      smallCount = count
      large = nil
    } else {
      smallCount = 0
      large = [UInt8](repeating: repeating, count: count)
    }
  }

  public init<S: Sequence>(_ sequence: S) where S.Element == UInt8 {
    let bytes = Array(sequence)
    self.init(repeating: 0, count: bytes.count)
    bytes.withUnsafeBytes { source in withUnsafeMutableBytes { $0.copyMemory(from: source) } }
  }

  /// The number of bytes.
  public var count: Int { large?.count ?? smallCount }

  /// The bytes as an array.
  public var array: [UInt8] { large ?? withUnsafeBytes { Array($0) } }

  public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
    if let large { return try large.withUnsafeBytes(body) }
    return try Swift.withUnsafeBytes(of: small) { try body(UnsafeRawBufferPointer(rebasing: $0[..<smallCount])) }
  }

  public mutating func withUnsafeMutableBytes<R>(_ body: (UnsafeMutableRawBufferPointer) throws -> R) rethrows -> R {
    if large != nil { return try large!.withUnsafeMutableBytes(body) }
    let count = smallCount
    return try Swift.withUnsafeMutableBytes(of: &small) {
      try body(UnsafeMutableRawBufferPointer(rebasing: $0[..<count]))
    }
  }
}
