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
    eventLoop loop: any EventLoop
  ) async throws -> ClientConnection {
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
    let id = nextCallID.wrappingAdd(1, ordering: .relaxed).oldValue
    if id >= UInt32.max - 1 { usable.value.store(false, ordering: .relaxed) }
    return id
  }

  private func callFrame(
    callID: UInt32,
    method: MethodDescriptor,
    request: [UInt8],
    options: CallOptions,
    userAgent: String
  ) throws -> ByteBuffer {
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
    var frame = channel.allocator.buffer(capacity: FrameHeader.size + metaLength + request.count)
    FrameHeader.write(
      type: .call, flags: .endStream, callID: callID, metaLength: metaLength, payloadLength: request.count,
      into: &frame)
    MetaEncoder.writeCallMeta(
      method: method.fullName, timeoutMs: timeoutMs, metadata: metadata, extra: extra, into: &frame)
    frame.writeBytes(request)
    return frame
  }

  /// Makes a unary call; returns the response payload.
  func unary(method: MethodDescriptor, request: [UInt8], options: CallOptions, userAgent: String) async throws
    -> ByteBuffer
  {
    let callID = makeCallID()
    let frame = try callFrame(callID: callID, method: method, request: request, options: options, userAgent: userAgent)
    let promise = channel.eventLoop.makePromise(of: ByteBuffer.self)
    let handler = self.handler
    let timeout = options.timeout
    return try await withTaskCancellationHandler {
      if handler.eventLoop.inEventLoop {
        // Already on the connection's thread (a task preferring the client's
        // executor): start the call right here.
        handler.value.start(callID: callID, frame: frame, timeout: timeout, receiver: .unary(promise))
      } else {
        handler.eventLoop.execute {
          handler.value.start(callID: callID, frame: frame, timeout: timeout, receiver: .unary(promise))
        }
      }
      return try await promise.futureResult.get()
    } onCancel: {
      handler.eventLoop.execute {
        handler.value.cancel(callID: callID, error: RPCError(code: .cancelled, message: "the call was cancelled"))
      }
    }
  }

  /// Starts a server-streaming call; `deliver` gets each message payload, nil at the
  /// end, or the error. Returns a function that cancels the call.
  func serverStreaming(
    method: MethodDescriptor,
    request: [UInt8],
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
