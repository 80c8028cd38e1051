import NIOCore
import NIOPosix
import Synchronization

/// A TCP relay on 127.0.0.1 in front of a server, which a test can cut (every
/// connection closed, nothing listening: the server is "down") and restore on the same
/// port.
final class TCPProxy: Sendable {
  private let target: (host: String, port: Int)
  private let state = Mutex<(listener: (any Channel)?, connections: [any Channel])>((nil, []))
  private(set) nonisolated(unsafe) var port = 0

  init(to host: String, port: Int) {
    target = (host, port)
  }

  /// Starts listening (on the port it had, after `cut`).
  func start() async throws {
    let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
      .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
      .childChannelInitializer { inbound in
        inbound.setOption(.autoRead, value: false).flatMap {
          ClientBootstrap(group: inbound.eventLoop).connect(host: self.target.host, port: self.target.port)
        }.flatMap { outbound in
          self.state.withLock { $0.connections += [inbound, outbound] }
          return inbound.pipeline.addHandler(Relay(to: outbound)).flatMap {
            outbound.pipeline.addHandler(Relay(to: inbound))
          }.flatMap { inbound.setOption(.autoRead, value: true) }
        }
      }
    let listener = try await bootstrap.bind(host: "127.0.0.1", port: port).get()
    port = listener.localAddress?.port ?? 0
    state.withLock { $0.listener = listener }
  }

  /// Closes every relayed connection and stops listening.
  func cut() async {
    let (listener, connections) = state.withLock { state in
      defer { state = (nil, []) }
      return state
    }
    try? await listener?.close()
    for connection in connections { try? await connection.close() }
  }

  private final class Relay: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let peer: any Channel
    init(to peer: any Channel) { self.peer = peer }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
      peer.writeAndFlush(unwrapInboundIn(data), promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
      peer.close(promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
      context.close(promise: nil)
    }
  }
}
