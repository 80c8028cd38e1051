import Foundation
import SwiftProtobuf

/// A method a server serves: its descriptor and its type-erased handler.
///
/// Generated code makes these (`ServiceProtocol.rpcMethods`); tests may make their own.
public struct RPCMethod: Sendable {
  /// The descriptor and the handlers, in one shared object: the server copies the
  /// method of every call, and a copy is then one reference count, not three.
  private final class Storage: Sendable {
    let descriptor: MethodDescriptor
    let prepareCall: @Sendable (UnsafeRawBufferPointer) throws -> PreparedCall
    let immediateAnswer: (@Sendable (UnsafeRawBufferPointer, ServerContext) throws -> WireBytes?)?

    init(
      descriptor: MethodDescriptor,
      prepareCall: @escaping @Sendable (UnsafeRawBufferPointer) throws -> PreparedCall,
      immediateAnswer: (@Sendable (UnsafeRawBufferPointer, ServerContext) throws -> WireBytes?)?
    ) {
      self.descriptor = descriptor
      self.prepareCall = prepareCall
      self.immediateAnswer = immediateAnswer
    }
  }

  private let storage: Storage

  /// The method.
  public var descriptor: MethodDescriptor { storage.descriptor }
  private var prepareCall: @Sendable (UnsafeRawBufferPointer) throws -> PreparedCall { storage.prepareCall }
  private var immediateAnswer: (@Sendable (UnsafeRawBufferPointer, ServerContext) throws -> WireBytes?)? {
    storage.immediateAnswer
  }

  /// A method whose request is decoded by `prepare`; `immediate`, if given, decodes
  /// it and answers without suspending, or returns nil (see `answerImmediately`).
  public init(
    descriptor: MethodDescriptor,
    immediate: (@Sendable (UnsafeRawBufferPointer, ServerContext) throws -> WireBytes?)? = nil,
    prepare: @escaping @Sendable (UnsafeRawBufferPointer) throws -> PreparedCall
  ) {
    storage = Storage(descriptor: descriptor, prepareCall: prepare, immediateAnswer: immediate)
  }

  /// Whether the method may answer without a task (`answerImmediately`).
  public var answersImmediately: Bool { immediateAnswer != nil }

  /// Decodes the request and runs the method's immediate handler, on the caller's
  /// thread (the connection's event loop): the response's bytes, or nil when the
  /// call needs `prepare` and a task after all. No per-call object is made for it,
  /// and a small response is held inline (no allocation either).
  ///
  /// - Throws: `RPCError` INVALID_ARGUMENT when the payload is not a request; the
  ///   handler's error as thrown.
  public func answerImmediately(payload: UnsafeRawBufferPointer, context: ServerContext) throws -> WireBytes? {
    guard let immediateAnswer else { return nil }
    return try immediateAnswer(payload, context)
  }

  /// Decodes the request from `payload` (read in place: the bytes are not copied) and
  /// returns the call, ready to run.
  ///
  /// - Throws: `RPCError` INVALID_ARGUMENT when the payload is not a request.
  public func prepare(payload: UnsafeRawBufferPointer) throws(RPCError) -> PreparedCall {
    do {
      return try prepareCall(payload)
    } catch {
      throw .undecodableRequest(descriptor)
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
    var answer: (@Sendable (UnsafeRawBufferPointer, ServerContext) throws -> WireBytes?)?
    if let immediate {
      answer = { payload, context in
        let request: Request
        do {
          request = try Request.decode(from: payload)
        } catch {
          throw RPCError.undecodableRequest(descriptor)
        }
        return try immediate(request, context)?.wireEncoding()
      }
    }
    return RPCMethod(descriptor: descriptor, immediate: answer) { payload in
      PreparedCall(UnaryCall(request: try Request.decode(from: payload), handler: handler))
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
