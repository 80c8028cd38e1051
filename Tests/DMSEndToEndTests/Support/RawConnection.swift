import DMSMessages
import DMSWire
import NIOCore
import NIOPosix
import SwiftProtobuf
import Synchronization
import Testing

/// A bare TCP connection for protocol tests: send any bytes, read what comes back.
final class RawConnection: Sendable {
  let channel: any Channel
  private let collector: Collector

  final class Collector: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let state = Mutex<(bytes: ByteBuffer, closed: Bool)>((ByteBuffer(), false))

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
      var incoming = unwrapInboundIn(data)
      _ = state.withLock { $0.bytes.writeBuffer(&incoming) }
    }

    func channelInactive(context: ChannelHandlerContext) {
      state.withLock { $0.closed = true }
    }
  }

  private init(channel: any Channel, collector: Collector) {
    self.channel = channel
    self.collector = collector
  }

  static func connect(port: Int) async throws -> RawConnection {
    let collector = Collector()
    let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
      .channelInitializer { channel in
        channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(collector) }
      }
      .connect(host: "127.0.0.1", port: port)
      .get()
    return RawConnection(channel: channel, collector: collector)
  }

  /// Connects and completes the preface exchange; returns the server's SETTINGS.
  static func open(port: Int) async throws -> (RawConnection, Dms_Rpc_V1_Settings) {
    let connection = try await connect(port: port)
    try await connection.send(Preface.bytes())
    let preface = try await connection.readBytes(Preface.size)
    #expect(preface == Preface.bytes())
    let settings = try await connection.readFrame()
    #expect(settings.type == .settings)
    return (connection, try Dms_Rpc_V1_Settings(serializedBytes: Array(settings.meta.readableBytesView)))
  }

  func send(_ bytes: [UInt8]) async throws {
    try await channel.writeAndFlush(channel.allocator.buffer(bytes: bytes))
  }

  func send(_ buffer: ByteBuffer) async throws {
    try await channel.writeAndFlush(buffer)
  }

  func close() async {
    try? await channel.close()
  }

  var isClosed: Bool { collector.state.withLock { $0.closed } }

  /// Waits until `check` (run on the received bytes) returns a value.
  private func wait<T>(
    timeout: Duration = .seconds(10),
    _ check: (inout ByteBuffer, Bool) throws -> T?
  ) async throws -> T {
    let deadline = ContinuousClock.now + timeout
    while true {
      let result = try collector.state.withLock { try check(&$0.bytes, $0.closed) }
      if let result { return result }
      guard ContinuousClock.now < deadline else { throw RawConnectionTimeout() }
      try await Task.sleep(for: .milliseconds(2))
    }
  }

  struct RawConnectionTimeout: Error {}
  struct ClosedBeforeFrame: Error {}

  func readBytes(_ count: Int) async throws -> [UInt8] {
    try await wait { bytes, closed in
      if let read = bytes.readBytes(length: count) { return read }
      if closed { throw ClosedBeforeFrame() }
      return nil
    }
  }

  /// The next whole frame from the server.
  func readFrame(timeout: Duration = .seconds(10)) async throws -> Frame {
    let decoder = FrameDecoder(maxFrameSize: 64 << 20, maxMetaSize: 1 << 20)
    return try await wait(timeout: timeout) { bytes, closed in
      if let frame = try decoder.next(from: &bytes) { return frame }
      if closed { throw ClosedBeforeFrame() }
      return nil
    }
  }

  /// Everything received until the server closed the connection.
  func readUntilClosed(timeout: Duration = .seconds(10)) async throws -> [UInt8] {
    try await wait(timeout: timeout) { bytes, closed in
      closed ? bytes.readBytes(length: bytes.readableBytes) : nil
    }
  }

  /// Reads frames until a GOAWAY, then waits for the close; returns the GOAWAY.
  func readGoAwayAndClose() async throws -> Dms_Rpc_V1_GoAway {
    while true {
      let frame = try await readFrame()
      if frame.type == .goAway {
        _ = try await readUntilClosed()
        return try Dms_Rpc_V1_GoAway(serializedBytes: Array(frame.meta.readableBytesView))
      }
    }
  }
}

/// Frames for raw tests.
enum RawFrame {
  static func call(
    id: UInt32,
    method: String,
    request: some SwiftProtobuf.Message,
    timeoutMs: UInt32 = 0,
    metadata: [String: String] = [:],
    flags: FrameFlags = .endStream
  ) throws -> ByteBuffer {
    let payload: [UInt8] = try request.serializedBytes()
    return try call(id: id, method: method, payload: payload, timeoutMs: timeoutMs, metadata: metadata, flags: flags)
  }

  static func call(
    id: UInt32,
    method: String,
    payload: [UInt8],
    timeoutMs: UInt32 = 0,
    metadata: [String: String] = [:],
    flags: FrameFlags = .endStream
  ) throws -> ByteBuffer {
    var meta = Dms_Rpc_V1_CallMeta()
    meta.method = method
    meta.timeoutMs = timeoutMs
    meta.metadata = metadata
    let metaBytes: [UInt8] = try meta.serializedBytes()
    var buffer = ByteBuffer()
    Frame(
      type: .call, flags: flags, callID: id, meta: ByteBuffer(bytes: metaBytes), payload: ByteBuffer(bytes: payload)
    )
    .write(into: &buffer)
    return buffer
  }

  static func cancel(id: UInt32) -> ByteBuffer {
    var buffer = ByteBuffer()
    Frame(type: .cancel, callID: id).write(into: &buffer)
    return buffer
  }

  static func status(of frame: Frame) throws -> Dms_Rpc_V1_Status {
    try Dms_Rpc_V1_Status(serializedBytes: Array(frame.meta.readableBytesView))
  }
}
