import DMSMessages
import DMSRPC
import DMSWire
import NIOCore
import NIOEmbedded
import SwiftProtobuf
import Synchronization
import Testing

@testable import DMSClient

/// The client's thin handler on an `EmbeddedChannel`: it performs what its state
/// machine decides (handshake, calls, GOAWAY).
@Suite("Client connection handler (EmbeddedChannel)")
struct ClientConnectionHandlerTests {
  /// What a streaming receiver was given.
  final class Delivered: Sendable {
    let results = Mutex<[Result<ByteBuffer?, RPCError>]>([])
    var deliver: @Sendable (Result<ByteBuffer?, RPCError>) -> Void {
      { result in self.results.withLock { $0.append(result) } }
    }
  }

  static func frames(_ channel: EmbeddedChannel) throws -> [Frame] {
    var all = ByteBuffer()
    while var part = try channel.readOutbound(as: ByteBuffer.self) { all.writeBuffer(&part) }
    if all.readableBytesView.starts(with: Preface.bytes()) { all.moveReaderIndex(forwardBy: Preface.size) }
    var frames: [Frame] = []
    while let frame = try FrameDecoder().next(from: &all) { frames.append(frame) }
    return frames
  }

  static func frameBytes(_ frame: Frame) -> ByteBuffer {
    var buffer = ByteBuffer()
    frame.write(into: &buffer)
    return buffer
  }

  /// A channel with the handler, its preface sent; the settings promise.
  static func channel() throws -> (EmbeddedChannel, ClientConnectionHandler, EventLoopFuture<Dms_Rpc_V1_Settings>) {
    let channel = EmbeddedChannel()
    let settings = channel.eventLoop.makePromise(of: Dms_Rpc_V1_Settings.self)
    let handler = ClientConnectionHandler(
      maxFrameSize: 1 << 20, executor: EventLoopTaskExecutor(eventLoop: channel.eventLoop),
      settingsPromise: settings, handshake: .init(host: "127.0.0.1", port: 1, timeout: .seconds(5)),
      onUnusable: {})
    try channel.pipeline.syncOperations.addHandler(handler)
    try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
    return (channel, handler, settings.futureResult)
  }

  static func serverHello(maxConcurrentCalls: UInt32) throws -> ByteBuffer {
    var settings = Dms_Rpc_V1_Settings()
    settings.maxConcurrentCalls = maxConcurrentCalls
    var bytes = ByteBuffer(bytes: Preface.bytes())
    var frame = frameBytes(
      Frame(type: .settings, callID: 0, meta: ByteBuffer(bytes: try settings.serializedBytes() as [UInt8])))
    bytes.writeBuffer(&frame)
    return bytes
  }

  @Test("the handshake: preface out, the server's preface and SETTINGS in, connecting succeeds")
  func handshake() throws {
    let (channel, _, settings) = try Self.channel()
    let sent = try #require(try channel.readOutbound(as: ByteBuffer.self))
    #expect(Array(sent.readableBytesView) == Preface.bytes())
    try channel.writeInbound(try Self.serverHello(maxConcurrentCalls: 7))
    #expect(try settings.wait().maxConcurrentCalls == 7)
    _ = try? channel.finish()
  }

  @Test("a call made before SETTINGS leaves when they come; its END reaches its caller")
  func callAfterHandshake() throws {
    let (channel, handler, _) = try Self.channel()
    _ = try Self.frames(channel)
    let delivered = Delivered()
    var call = ByteBuffer()
    FrameHeader.write(type: .call, flags: .endStream, callID: 1, metaLength: 0, payloadLength: 0, into: &call)
    handler.start(callID: 1, frame: call, deadline: nil, receiver: .stream(delivered.deliver))
    #expect(try Self.frames(channel).isEmpty, "sent before SETTINGS")
    try channel.writeInbound(try Self.serverHello(maxConcurrentCalls: 1))
    channel.pipeline.fireChannelReadComplete()
    #expect(try Self.frames(channel).map(\.type) == [.call])
    try channel.writeInbound(Self.frameBytes(Frame(type: .end, flags: .endStream, callID: 1)))
    #expect(delivered.results.withLock { $0.count } == 1)
    if case .success(nil) = delivered.results.withLock({ $0.first }) {} else { Issue.record("no OK end") }
    _ = try? channel.finish()
  }

  @Test("a GOAWAY refuses the calls above its last id, retryable, and closes when none is left")
  func goAway() throws {
    let (channel, handler, _) = try Self.channel()
    try channel.writeInbound(try Self.serverHello(maxConcurrentCalls: 4))
    let delivered = Delivered()
    var call = ByteBuffer()
    FrameHeader.write(type: .call, flags: .endStream, callID: 5, metaLength: 0, payloadLength: 0, into: &call)
    handler.start(callID: 5, frame: call, deadline: nil, receiver: .stream(delivered.deliver))
    var goAway = Dms_Rpc_V1_GoAway()
    goAway.lastCallID = 4
    goAway.code = StatusCode.unavailable.rawValue
    try channel.writeInbound(
      Self.frameBytes(
        Frame(type: .goAway, callID: 0, meta: ByteBuffer(bytes: try goAway.serializedBytes() as [UInt8]))))
    guard case .failure(let error) = delivered.results.withLock({ $0.first }) else {
      Issue.record("the refused call was not failed")
      return
    }
    #expect(error.code == .unavailable)
    #expect(!channel.isActive, "closed with nothing left open")
  }
}
