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
  private let lastPlainMeta = Mutex<(method: MethodDescriptor, fixed: FixedMetadata, meta: ByteBuffer)?>(nil)

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

  /// Connects, exchanges prefaces and waits for the server's SETTINGS, all within the
  /// configuration's connect timeout.
  ///
  /// - Throws: `ConnectFailure`, saying why for a person.
  static func connect(
    configuration: ClientConfiguration,
    executor: EventLoopTaskExecutor
  ) async throws -> ClientConnection {
    let loop = executor.eventLoop
    let (host, port) = (configuration.host, configuration.port)
    let usableFlag = UsableFlag()
    // Completed whichever way connecting ends: by the handler (SETTINGS, or why not),
    // or here when the connection is never made.
    let settingsPromise = loop.makePromise(of: Dms_Rpc_V1_Settings.self)
    // The handler, kept when the pipeline is made: looked up later, it may be gone
    // with a connection the server closed at once.
    let madeHandler = Mutex<NIOLoopBound<ClientConnectionHandler>?>(nil)
    let channel: any Channel
    do {
      let sslContext = try configuration.tls.map { try NIOSSLContext(configuration: $0) }
      let sniName = Self.sniName(configuration)
      channel = try await ClientBootstrap(group: loop)
        .connectTimeout(TimeAmount(configuration.connectTimeout))
        .channelOption(.socketOption(.tcp_nodelay), value: 1)
        .channelInitializer { channel in
          channel.eventLoop.makeCompletedFuture {
            let pipeline = channel.pipeline.syncOperations
            if let sslContext {
              try pipeline.addHandler(NIOSSLClientHandler(context: sslContext, serverHostname: sniName))
            }
            let handler = ClientConnectionHandler(
              maxFrameSize: configuration.maxFrameSize,
              executor: executor,
              settingsPromise: settingsPromise,
              handshake: .init(host: host, port: port, timeout: configuration.connectTimeout),
              onUnusable: { usableFlag.value.store(false, ordering: .relaxed) }
            )
            try pipeline.addHandler(handler)
            madeHandler.withLock { $0 = NIOLoopBound(handler, eventLoop: channel.eventLoop) }
          }
        }
        .connect(host: host, port: port)
        .get()
    } catch {
      let failure = ConnectFailure.describing(
        error, host: host, port: port, connectTimeout: configuration.connectTimeout)
      settingsPromise.fail(failure)
      throw failure
    }
    do {
      let settings = try await settingsPromise.futureResult.get()
      let handler = madeHandler.withLock { $0 }!
      return ClientConnection(channel: channel, settings: settings, handler: handler, usable: usableFlag)
    } catch {
      settingsPromise.fail(error)
      channel.close(promise: nil)
      let failure = ConnectFailure.describing(
        error, host: host, port: port, connectTimeout: configuration.connectTimeout)
      if failure.certificateNotTrusted,
        let reason = await CertificateDiagnosis.reason(
          configuration: configuration, loop: loop, server: ConnectFailure.address(host: host, port: port))
      {
        throw ConnectFailure("TLS: \(reason)", retryable: false)
      }
      throw failure
    }
  }

  /// The name to send as SNI and check the certificate against. An IP address is not
  /// a name to send: with none, the certificate is checked against the address
  /// connected to (its IP subjectAltNames).
  static func sniName(_ configuration: ClientConfiguration) -> String? {
    let expectedName = configuration.serverHostname ?? configuration.host
    return isIPAddress(expectedName) ? nil : expectedName
  }

  /// Whether `host` is an IPv4 or IPv6 address rather than a name.
  static func isIPAddress(_ host: String) -> Bool {
    (try? SocketAddress(ipAddress: host, port: 0)) != nil
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
  /// deadline (most calls) is kept for the next call of the same method.
  private func callMeta(
    method: MethodDescriptor, options: CallOptions, deadline: NIODeadline?, fixed: FixedMetadata
  ) throws -> ByteBuffer {
    let plain = options.metadata.isEmpty && deadline == nil
    if plain, let kept = lastPlainMeta.withLock({ $0 }), kept.method == method, kept.fixed == fixed {
      return kept.meta
    }
    let meta = try encodeCallMeta(method: method, options: options, deadline: deadline, fixed: fixed)
    if plain { lastPlainMeta.withLock { $0 = (method, fixed, meta) } }
    return meta
  }

  private func encodeCallMeta(
    method: MethodDescriptor, options: CallOptions, deadline: NIODeadline?, fixed: FixedMetadata
  ) throws -> ByteBuffer {
    let metadata = options.metadata
    let extra = (key: MetadataKey.userAgent, value: fixed.userAgent)
    let second = fixed.authorization.map { (key: MetadataKey.authorization, value: $0) }
    var timeoutMs: UInt32 = 0
    if let deadline {
      // What is left of the call's deadline (connecting may have used some).
      timeoutMs = UInt32(clamping: max(1, (deadline - .now()).nanoseconds / 1_000_000))
    }
    let metaLength = MetaEncoder.callMetaSize(
      method: method.fullName, timeoutMs: timeoutMs, metadata: metadata, extra: extra, second: second)
    guard metaLength <= Int(UInt16.max) else {
      throw RPCError(code: .invalidArgument, message: "the call's metadata is too large (\(metaLength) bytes)")
    }
    var meta = channel.allocator.buffer(capacity: metaLength)
    MetaEncoder.writeCallMeta(
      method: method.fullName, timeoutMs: timeoutMs, metadata: metadata, extra: extra, second: second, into: &meta)
    return meta
  }

  private func callFrame(
    callID: UInt32,
    method: MethodDescriptor,
    request: WireBytes,
    options: CallOptions,
    deadline: NIODeadline?,
    fixed: FixedMetadata
  ) throws -> ByteBuffer {
    let meta = try callMeta(method: method, options: options, deadline: deadline, fixed: fixed)
    var frame = channel.allocator.buffer(capacity: FrameHeader.size + meta.readableBytes + request.count)
    request.withUnsafeBytes { FrameWriter.writeCall(callID: callID, meta: meta, request: $0, into: &frame) }
    return frame
  }

  /// Makes a unary call; returns the response payload. `deadline` (the call's, from
  /// when it was made) ends it DEADLINE_EXCEEDED, queued or sent.
  nonisolated(nonsending) func unary(
    method: MethodDescriptor, request: WireBytes, options: CallOptions, deadline: NIODeadline?, fixed: FixedMetadata
  ) async throws
    -> ByteBuffer
  {
    let callID = makeCallID()
    let frame = try callFrame(
      callID: callID, method: method, request: request, options: options, deadline: deadline, fixed: fixed)
    let handler = self.handler
    // Off the connection's thread, a cancellation may reach the loop before the call
    // does: the gate makes sure a call cancelled first is never sent.
    let gate: StartGate? = handler.eventLoop.inEventLoop ? nil : StartGate()
    return try await withTaskCancellationHandler {
      try await withUnsafeThrowingContinuation { continuation in
        if let gate {
          handler.eventLoop.execute {
            guard gate.open() else {
              continuation.resume(throwing: RPCError.cancelledCall)
              return
            }
            handler.value.start(callID: callID, frame: frame, deadline: deadline, receiver: .unary(continuation))
          }
        } else if Task.isCancelled {
          // Already on the connection's thread, and cancelled before it started.
          continuation.resume(throwing: RPCError.cancelledCall)
        } else {
          // On the connection's thread (a task preferring the client's executor): the
          // call starts right here, before any cancellation can reach the loop.
          handler.value.start(callID: callID, frame: frame, deadline: deadline, receiver: .unary(continuation))
        }
      }
    } onCancel: {
      if let gate, gate.cancelBeforeStart() { return }
      handler.eventLoop.execute { handler.value.cancel(callID: callID, error: .cancelledCall) }
    }
  }

  /// Makes one unary call per request, all at once: their frames are made here in
  /// one buffer and leave in one write when the server's limit allows. Returns each
  /// call's response payload or error, by the index of its request.
  nonisolated(nonsending) func unaryBatch(
    method: MethodDescriptor, requests: [WireBytes], options: CallOptions, deadline: NIODeadline?, fixed: FixedMetadata
  ) async throws -> BatchOutcome {
    guard !requests.isEmpty else { return BatchOutcome(payloads: [], failures: [:]) }
    // Every call of the batch has the same meta: encoded once.
    let meta = try callMeta(method: method, options: options, deadline: deadline, fixed: fixed)
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
    let count = requests.count
    let gate: StartGate? = handler.eventLoop.inEventLoop ? nil : StartGate()
    return await withTaskCancellationHandler {
      await withUnsafeContinuation { continuation in
        let start: @Sendable () -> Void = { [frames, ends] in
          let batch = UnaryBatch(count: count, continuation: continuation)
          guard gate?.open() ?? !Task.isCancelled else {
            for index in 0..<count { batch.fail(index, RPCError.cancelledCall) }
            return
          }
          handler.value.startBatch(batch, firstCallID: firstCallID, frames: frames, frameEnds: ends, deadline: deadline)
        }
        if gate == nil {
          start()
        } else {
          handler.eventLoop.execute(start)
        }
      }
    } onCancel: {
      if let gate, gate.cancelBeforeStart() { return }
      handler.eventLoop.execute {
        for offset in 0..<count {
          handler.value.cancel(callID: firstCallID &+ UInt32(offset), error: .cancelledCall)
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
    deadline: NIODeadline?,
    fixed: FixedMetadata,
    deliver: @escaping @Sendable (Result<ByteBuffer?, RPCError>) -> Void
  ) throws -> @Sendable () -> Void {
    let callID = makeCallID()
    let frame = try callFrame(
      callID: callID, method: method, request: request, options: options, deadline: deadline, fixed: fixed)
    let handler = self.handler
    handler.eventLoop.execute {
      handler.value.start(callID: callID, frame: frame, deadline: deadline, receiver: .stream(deliver))
    }
    return {
      handler.eventLoop.execute { handler.value.cancel(callID: callID, error: .cancelledCall) }
    }
  }

  /// Sends a PING and waits for its ACK, until `deadline` at most.
  func ping(deadline: NIODeadline?) async throws {
    let promise = channel.eventLoop.makePromise(of: Void.self)
    let handler = self.handler
    handler.eventLoop.execute { handler.value.ping(promise: promise) }
    if let deadline {
      let timer = channel.eventLoop.scheduleTask(deadline: deadline) {
        promise.fail(RPCError(code: .deadlineExceeded, message: "no PING ACK before the deadline"))
      }
      promise.futureResult.whenComplete { _ in timer.cancel() }
    }
    try await promise.futureResult.get()
  }

  func close() async {
    try? await channel.close()
  }
}

/// Whether a call made off the connection's thread was started on the loop or
/// cancelled first: whichever comes first wins, and a call cancelled first is never
/// sent.
private final class StartGate: Sendable {
  private let state = Atomic<UInt8>(0)  // 0: neither yet, 1: started, 2: cancelled

  /// On the loop, before sending: whether the call may start (it was not cancelled).
  func open() -> Bool {
    state.compareExchange(expected: 0, desired: 1, ordering: .acquiringAndReleasing).exchanged
  }

  /// On cancellation: whether the call had not started (it now never will).
  func cancelBeforeStart() -> Bool {
    state.compareExchange(expected: 0, desired: 2, ordering: .acquiringAndReleasing).exchanged
  }
}

extension RPCError {
  /// CANCELLED: the calling task was cancelled.
  static let cancelledCall = RPCError(code: .cancelled, message: "the call was cancelled")
}

/// The usable flag, shared between the connection and its handler's callback.
private final class UsableFlag: Sendable {
  let value = Atomic<Bool>(true)
}

/// The metadata a client sends with every call: its user agent and, signed in, its
/// session.
struct FixedMetadata: Sendable, Equatable {
  var userAgent: String
  /// `Bearer <token>`.
  var authorization: String?
}
