import Foundation
import NIOCore
import NIOPosix

/// A TCP listener on 127.0.0.1 that misbehaves as a client's server: it answers every
/// connection with fixed bytes (after the client's first bytes arrive), says nothing
/// at all, or closes at once.
final class FakePeer: Sendable {
  enum Behaviour: Sendable {
    /// Sends these bytes once the client has sent something, then closes.
    case answer([UInt8])
    /// Accepts and never sends a byte.
    case silent
    /// Closes each connection as soon as it is accepted.
    case close
  }

  let channel: any Channel
  var port: Int { channel.localAddress!.port! }

  private init(channel: any Channel) {
    self.channel = channel
  }

  static func start(_ behaviour: Behaviour) async throws -> FakePeer {
    let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
      .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
      .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
          switch behaviour {
          case .answer(let bytes): try channel.pipeline.syncOperations.addHandler(Answer(bytes: bytes))
          case .silent: break
          case .close: channel.close(promise: nil)
          }
        }
      }
      .bind(host: "127.0.0.1", port: 0)
      .get()
    return FakePeer(channel: channel)
  }

  func stop() async {
    try? await channel.close()
  }

  private final class Answer: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let bytes: [UInt8]

    init(bytes: [UInt8]) { self.bytes = bytes }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
      context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: bytes))).whenComplete { _ in
        context.close(promise: nil)
      }
    }
  }
}
