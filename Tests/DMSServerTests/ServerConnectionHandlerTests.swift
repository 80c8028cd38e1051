import DMSMessages
import DMSProtocol
import DMSRPC
import DMSWire
import Logging
import NIOCore
import NIOEmbedded
import SwiftProtobuf
import Testing

@testable import DMSServer

/// The thin handler on an `EmbeddedChannel`: it performs what the state machine decides.
@Suite("Server connection handler (EmbeddedChannel)")
struct ServerConnectionHandlerTests {
  /// Counts the reads the handler passes on to the channel.
  final class ReadCounter: ChannelOutboundHandler, @unchecked Sendable {
    // Used on the embedded channel's thread only.
    typealias OutboundIn = ByteBuffer
    var reads = 0
    func read(context: ChannelHandlerContext) {
      reads += 1
      context.read()
    }
  }

  static let echo = MethodDescriptor(
    service: "dms.test.v1.Test", method: "Echo", requestType: "google.protobuf.BytesValue",
    responseType: "google.protobuf.BytesValue", kind: .unary)

  /// A channel with the handler, past the preface (its answer read off).
  static func channel(limits: ServerConfiguration.Limits = .init()) throws -> (EmbeddedChannel, ReadCounter) {
    var router = Router()
    router.register(
      .unary(echo, immediate: { (request: Google_Protobuf_BytesValue, _) in request }) {
        (request: Google_Protobuf_BytesValue, _) in request
      })
    var logger = Logger(label: "test")
    logger.logLevel = .critical
    let shared = ConnectionShared(
      router: router, authorizer: nil, configuration: ServerConfiguration(limits: limits), logger: logger,
      settingsMeta: try Dms_Rpc_V1_Settings().serializedBytes())
    let counter = ReadCounter()
    let channel = EmbeddedChannel()
    try channel.pipeline.syncOperations.addHandler(counter)
    try channel.pipeline.syncOperations.addHandler(ServerConnectionHandler(shared: shared))
    try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
    try channel.writeInbound(ByteBuffer(bytes: Preface.bytes()))
    var answer = try #require(try channel.readOutbound(as: ByteBuffer.self))
    #expect(answer.readBytes(length: Preface.size) == Preface.bytes())
    let settings = try #require(try FrameDecoder().next(from: &answer))
    #expect(settings.type == .settings)
    return (channel, counter)
  }

  static func echoCall(_ id: UInt32, size: Int) throws -> ByteBuffer {
    var meta = Dms_Rpc_V1_CallMeta()
    meta.method = echo.fullName
    var request = Google_Protobuf_BytesValue()
    request.value = .init(repeating: 7, count: size)
    var buffer = ByteBuffer()
    Frame(
      type: .call, flags: .endStream, callID: id, meta: ByteBuffer(bytes: try meta.serializedBytes() as [UInt8]),
      payload: ByteBuffer(bytes: try request.serializedBytes() as [UInt8])
    ).write(into: &buffer)
    return buffer
  }

  /// Every frame written so far.
  static func frames(_ channel: EmbeddedChannel) throws -> [Frame] {
    var all = ByteBuffer()
    while var part = try channel.readOutbound(as: ByteBuffer.self) { all.writeBuffer(&part) }
    var frames: [Frame] = []
    let decoder = FrameDecoder(maxFrameSize: 64 << 20, maxMetaSize: 1 << 20)
    while let frame = try decoder.next(from: &all) { frames.append(frame) }
    return frames
  }

  @Test("calls read in one batch are answered in one flush, each END matched to its id")
  func batch() throws {
    let (channel, _) = try Self.channel()
    var calls = ByteBuffer()
    for id in 1...UInt32(5) {
      var call = try Self.echoCall(id, size: 10)
      calls.writeBuffer(&call)
    }
    try channel.writeInbound(calls)
    let frames = try Self.frames(channel)
    #expect(frames.map(\.type) == Array(repeating: .end, count: 5))
    #expect(frames.map(\.callID) == [1, 2, 3, 4, 5])
    _ = try? channel.finish()
  }

  @Test("while the channel is not writable the handler holds reads, and passes one on when it is again")
  func holdsReads() throws {
    let (channel, counter) = try Self.channel()
    let before = counter.reads
    channel.read()
    #expect(counter.reads == before + 1)
    channel.isWritable = false
    channel.pipeline.fireChannelWritabilityChanged()
    channel.read()
    channel.read()
    #expect(counter.reads == before + 1, "read while the client does not read its answers")
    channel.isWritable = true
    channel.pipeline.fireChannelWritabilityChanged()
    #expect(counter.reads == before + 2, "one held read passed on")
    _ = try? channel.finish()
  }

  @Test("answers piling up while not writable close the connection with GOAWAY RESOURCE_EXHAUSTED past the bound")
  func bound() throws {
    let (channel, _) = try Self.channel(limits: .init(maxBufferedBytes: 100_000))
    channel.isWritable = false
    channel.pipeline.fireChannelWritabilityChanged()
    // Each answer is about 20 KB: the sixth crosses the 100,000-byte bound.
    for id in 1...UInt32(8) {
      try channel.writeInbound(try Self.echoCall(id, size: 20_000))
      channel.pipeline.fireChannelReadComplete()
    }
    let frames = try Self.frames(channel)
    let goAway = try #require(frames.last)
    #expect(goAway.type == .goAway)
    let message = try Dms_Rpc_V1_GoAway(serializedBytes: Array(goAway.meta.readableBytesView))
    #expect(message.code == StatusCode.resourceExhausted.rawValue)
    #expect(frames.filter { $0.type == .end }.count < 8)
    #expect(!channel.isActive)
  }
}
