import DMSMessages
import DMSRPC
import DMSWire
import NIOCore
import NIOPosix
import NIOSSL
import SwiftProtobuf
import Synchronization

/// One open connection to the server, after the preface and SETTINGS.
final class ClientConnection: Sendable {
  let channel: any Channel
  let settings: Dms_Rpc_V1_Settings
  private let handler: NIOLoopBound<ClientConnectionHandler>
  private let usable: UsableFlag
  private let nextCallID = Atomic<UInt32>(1)
  private let lastPlainMeta = Mutex<(method: MethodDescriptor, userAgent: String, meta: ByteBuffer)?>(nil)

  private init(
    channel: any Channel,
    settings: Dms_Rpc_V1_Settings,
    handler: NIOLoopBound<ClientConnectionHandler>,
    usable: UsableFlag
  ) {
    self.channel = channel
    self.settings = settings
    self.handler = handler
    self.usable = usable
  }

  /// Whether new calls may start here (open, no GOAWAY, call ids left).
  var isUsable: Bool { usable.value.load(ordering: .relaxed) && channel.isActive }

  /// Connects, exchanges prefaces and waits for the server's SETTINGS.
  static func connect(
    configuration: ClientConfiguration,
    executor: EventLoopTaskExecutor
  ) async throws -> ClientConnection {
    let loop = executor.eventLoop
    let sslContext = try configuration.tls.map { try NIOSSLContext(configuration: $0) }
    let usableFlag = UsableFlag()
    let settingsPromise = loop.makePromise(of: Dms_Rpc_V1_Settings.self)
    let channel = try await ClientBootstrap(group: loop)
      .connectTimeout(TimeAmount(configuration.connectTimeout))
      .channelOption(.socketOption(.tcp_nodelay), value: 1)
      .channelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
          let pipeline = channel.pipeline.syncOperations
          if let sslContext {
            try pipeline.addHandler(
              NIOSSLClientHandler(
                context: sslContext, serverHostname: configuration.serverHostname ?? configuration.host)
            )
          }
          try pipeline.addHandler(
            ClientConnectionHandler(
              maxFrameSize: configuration.maxFrameSize,
              executor: executor,
              settingsPromise: settingsPromise,
              onUnusable: { usableFlag.value.store(false, ordering: .relaxed) }
            )
          )
        }
      }
      .connect(host: configuration.host, port: configuration.port)
      .get()
    let handler = try await channel.eventLoop.submit {
      let handler = try channel.pipeline.syncOperations.handler(type: ClientConnectionHandler.self)
      return NIOLoopBound(handler, eventLoop: channel.eventLoop)
    }.get()
    do {
      let settings = try await settingsPromise.futureResult.get()
      return ClientConnection(channel: channel, settings: settings, handler: handler, usable: usableFlag)
    } catch {
      channel.close(promise: nil)
      throw error
    }
  }

  private func makeCallID() -> UInt32 {
    makeCallIDs(count: 1)
  }

  /// `count` consecutive call ids; returns the first.
  private func makeCallIDs(count: Int) -> UInt32 {
    let id = nextCallID.wrappingAdd(UInt32(count), ordering: .relaxed).oldValue
    // Ids must not wrap: the connection takes no new calls near the end of the range
    // (callers go to a new connection).
    if UInt64(id) + UInt64(count) >= UInt64(UInt32.max) - (1 << 20) { usable.value.store(false, ordering: .relaxed) }
    return id
  }

  /// The encoded `CallMeta` of a call. The meta of a call with no metadata and no
  /// timeout (most calls) is kept for the next call of the same method.
  private func callMeta(method: MethodDescriptor, options: CallOptions, userAgent: String) throws -> ByteBuffer {
    let plain = options.metadata.isEmpty && options.timeout == nil
    if plain, let kept = lastPlainMeta.withLock({ $0 }), kept.method == method, kept.userAgent == userAgent {
      return kept.meta
    }
    let meta = try encodeCallMeta(method: method, options: options, userAgent: userAgent)
    if plain { lastPlainMeta.withLock { $0 = (method, userAgent, meta) } }
    return meta
  }

  private func encodeCallMeta(method: MethodDescriptor, options: CallOptions, userAgent: String) throws -> ByteBuffer {
    let metadata = options.metadata
    let extra = (key: MetadataKey.userAgent, value: userAgent)
    var timeoutMs: UInt32 = 0
    if let timeout = options.timeout {
      timeoutMs = UInt32(clamping: max(1, TimeAmount(timeout).nanoseconds / 1_000_000))
    }
    let metaLength = MetaEncoder.callMetaSize(
      method: method.fullName, timeoutMs: timeoutMs, metadata: metadata, extra: extra)
    guard metaLength <= Int(UInt16.max) else {
      throw RPCError(code: .invalidArgument, message: "the call's metadata is too large (\(metaLength) bytes)")
    }
    var meta = channel.allocator.buffer(capacity: metaLength)
    MetaEncoder.writeCallMeta(
      method: method.fullName, timeoutMs: timeoutMs, metadata: metadata, extra: extra, into: &meta)
    return meta
  }

  private func callFrame(
    callID: UInt32,
    method: MethodDescriptor,
    request: WireBytes,
    options: CallOptions,
    userAgent: String
  ) throws -> ByteBuffer {
    let meta = try callMeta(method: method, options: options, userAgent: userAgent)
    var frame = channel.allocator.buffer(capacity: FrameHeader.size + meta.readableBytes + request.count)
    request.withUnsafeBytes { FrameWriter.writeCall(callID: callID, meta: meta, request: $0, into: &frame) }
    return frame
  }

  /// Makes a unary call; returns the response payload.
  nonisolated(nonsending) func unary(
    method: MethodDescriptor, request: WireBytes, options: CallOptions, userAgent: String
  ) async throws
    -> ByteBuffer
  {
    let callID = makeCallID()
    let frame = try callFrame(callID: callID, method: method, request: request, options: options, userAgent: userAgent)
    let handler = self.handler
    let timeout = options.timeout
    return try await withTaskCancellationHandler {
      try await withUnsafeThrowingContinuation { continuation in
        if handler.eventLoop.inEventLoop {
          // Already on the connection's thread (a task preferring the client's
          // executor): start the call right here.
          handler.value.start(callID: callID, frame: frame, timeout: timeout, receiver: .unary(continuation))
        } else {
          handler.eventLoop.execute {
            handler.value.start(callID: callID, frame: frame, timeout: timeout, receiver: .unary(continuation))
          }
        }
      }
    } onCancel: {
      handler.eventLoop.execute {
        handler.value.cancel(callID: callID, error: RPCError(code: .cancelled, message: "the call was cancelled"))
      }
    }
  }

  /// Makes one unary call per request, all at once: their frames are made here in
  /// one buffer and leave in one write when the server's limit allows. Returns each
  /// call's response payload or error, by the index of its request.
  nonisolated(nonsending) func unaryBatch(
    method: MethodDescriptor, requests: [WireBytes], options: CallOptions, userAgent: String
  ) async throws -> BatchOutcome {
    guard !requests.isEmpty else { return BatchOutcome(payloads: [], failures: [:]) }
    // Every call of the batch has the same meta: encoded once.
    let meta = try callMeta(method: method, options: options, userAgent: userAgent)
    let size = requests.reduce(0) { $0 + FrameHeader.size + meta.readableBytes + $1.count }
    var frames = channel.allocator.buffer(capacity: size)
    // Consecutive call ids; each frame's end offset, for starting calls one by one.
    let firstCallID = makeCallIDs(count: requests.count)
    var ends: [Int] = []
    ends.reserveCapacity(requests.count)
    for (offset, request) in requests.enumerated() {
      request.withUnsafeBytes {
        FrameWriter.writeCall(callID: firstCallID &+ UInt32(offset), meta: meta, request: $0, into: &frames)
      }
      ends.append(frames.writerIndex)
    }
    let handler = self.handler
    let timeout = options.timeout
    let count = requests.count
    return await withTaskCancellationHandler {
      await withUnsafeContinuation { continuation in
        let start: @Sendable () -> Void = { [frames, ends] in
          let batch = UnaryBatch(count: count, continuation: continuation)
          handler.value.startBatch(batch, firstCallID: firstCallID, frames: frames, frameEnds: ends, timeout: timeout)
        }
        if handler.eventLoop.inEventLoop {
          start()
        } else {
          handler.eventLoop.execute(start)
        }
      }
    } onCancel: {
      handler.eventLoop.execute {
        for offset in 0..<count {
          handler.value.cancel(
            callID: firstCallID &+ UInt32(offset), error: RPCError(code: .cancelled, message: "the call was cancelled"))
        }
      }
    }
  }

  /// Starts a server-streaming call; `deliver` gets each message payload, nil at the
  /// end, or the error. Returns a function that cancels the call.
  func serverStreaming(
    method: MethodDescriptor,
    request: WireBytes,
    options: CallOptions,
    userAgent: String,
    deliver: @escaping @Sendable (Result<ByteBuffer?, RPCError>) -> Void
  ) throws -> @Sendable () -> Void {
    let callID = makeCallID()
    let frame = try callFrame(callID: callID, method: method, request: request, options: options, userAgent: userAgent)
    let handler = self.handler
    let timeout = options.timeout
    handler.eventLoop.execute {
      handler.value.start(callID: callID, frame: frame, timeout: timeout, receiver: .stream(deliver))
    }
    return {
      handler.eventLoop.execute {
        handler.value.cancel(callID: callID, error: RPCError(code: .cancelled, message: "the call was cancelled"))
      }
    }
  }

  /// Sends a PING and waits for its ACK.
  func ping() async throws {
    let promise = channel.eventLoop.makePromise(of: Void.self)
    let handler = self.handler
    handler.eventLoop.execute { handler.value.ping(promise: promise) }
    try await promise.futureResult.get()
  }

  func close() async {
    try? await channel.close()
  }
}

/// The usable flag, shared between the connection and its handler's callback.
private final class UsableFlag: Sendable {
  let value = Atomic<Bool>(true)
}
