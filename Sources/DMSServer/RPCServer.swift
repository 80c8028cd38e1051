import DMSMessages
import DMSRPC
import Logging
import NIOCore
import NIOExtras
import NIOPosix
import NIOSSL
import ServiceLifecycle
import Synchronization

/// The DMS RPC server: listens, serves the router's methods, drains on shutdown.
///
/// A `Service`: run it in a `ServiceGroup`, which turns SIGTERM into a graceful
/// shutdown (GOAWAY to every connection, open calls finish within the grace period,
/// then `run()` returns).
public final class RPCServer: Service, Sendable {
  /// Features announced in SETTINGS.
  public static let features = ["deadline", "cancel", "server-streaming", "ping", "goaway"]

  private let configuration: ServerConfiguration
  private let router: Router
  private let authorizer: (any CallAuthorizer)?
  private let logger: Logger
  private let group: any EventLoopGroup
  private let onShutdown: @Sendable () -> Void
  private let address: EventLoopPromise<SocketAddress>
  private let state = Mutex(State.idle)

  private enum State {
    case idle
    case running(ServerQuiescingHelper, EventLoopPromise<Void>)
    case stopping
  }

  /// A server for `router`'s methods; it listens once `run()` is called.
  ///
  /// `onShutdown` runs when a graceful shutdown begins (the executable sets the
  /// health status NOT_SERVING there). `authorizer` decides who may call what before
  /// each handler runs; without one every method is open (tests of the protocol).
  public init(
    configuration: ServerConfiguration,
    router: Router,
    authorizer: (any CallAuthorizer)? = nil,
    logger: Logger = Logger(label: "dms.rpc.server"),
    eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
    onShutdown: @escaping @Sendable () -> Void = {}
  ) {
    self.configuration = configuration
    self.router = router
    self.authorizer = authorizer
    self.logger = logger
    self.group = eventLoopGroup
    self.onShutdown = onShutdown
    self.address = eventLoopGroup.next().makePromise(of: SocketAddress.self)
  }

  /// The address the server listens on, once it does (port 0 resolved).
  public func localAddress() async throws -> SocketAddress {
    try await address.futureResult.get()
  }

  /// Listens and serves until a graceful shutdown or cancellation, then drains.
  public func run() async throws {
    do {
      try await serve()
    } catch {
      // Whatever stopped it before it listened (a TLS context that cannot be made, a
      // cancellation) answers `localAddress()` too; once it listened, this does nothing.
      address.fail(error)
      throw error
    }
  }

  deinit {
    // Never run: nobody is left to ask, but the promise must be completed.
    address.fail(CancellationError())
  }

  private func serve() async throws {
    let sslContext = try configuration.tls.map { try NIOSSLContext(configuration: $0) }
    var settings = Dms_Rpc_V1_Settings()
    settings.maxFrameSize = UInt32(clamping: configuration.limits.maxFrameSize)
    settings.maxConcurrentCalls = UInt32(clamping: configuration.limits.maxConcurrentCalls)
    settings.idleTimeoutMs = UInt32(clamping: configuration.timeouts.idle.components.seconds * 1000)
    settings.server = configuration.serverName
    settings.features = Self.features + (sslContext == nil ? [] : ["tls"])
    let shared = ConnectionShared(
      router: router,
      authorizer: authorizer,
      configuration: configuration,
      logger: logger,
      settingsMeta: try settings.serializedBytes()
    )

    let quiesce = ServerQuiescingHelper(group: group)
    let drained = group.next().makePromise(of: Void.self)
    let channel: any Channel
    do {
      channel = try await ServerBootstrap(group: group)
        .serverChannelOption(.backlog, value: 1024)
        .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
        .serverChannelInitializer { channel in
          channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(quiesce.makeServerChannelHandler(channel: channel))
          }
        }
        .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
        .childChannelOption(.maxMessagesPerRead, value: 16)
        .childChannelInitializer { channel in
          channel.eventLoop.makeCompletedFuture {
            let pipeline = channel.pipeline.syncOperations
            if let sslContext {
              try pipeline.addHandler(NIOSSLServerHandler(context: sslContext))
            }
            try pipeline.addHandler(ServerConnectionHandler(shared: shared))
          }
        }
        .bind(host: configuration.host, port: configuration.port)
        .get()
    } catch {
      address.fail(error)
      drained.succeed()
      throw error
    }
    let bound = channel.localAddress!
    state.withLock { $0 = .running(quiesce, drained) }
    address.succeed(bound)
    logger.info("listening", metadata: ["address": "\(bound)", "tls": "\(sslContext != nil)"])

    try await withTaskCancellationHandler {
      try await withGracefulShutdownHandler {
        try await channel.closeFuture.get()
        if case .running = state.withLock({ $0 }) {
          // The listening socket closed by itself: stop the connections too.
          beginGracefulShutdown()
        }
        try await drained.futureResult.get()
      } onGracefulShutdown: {
        self.beginGracefulShutdown()
      }
    } onCancel: {
      self.beginGracefulShutdown()
    }
    logger.info("stopped")
  }

  /// Stops listening, sends GOAWAY on every connection and lets open calls finish
  /// within the grace period; `run()` returns when every connection has closed.
  public func beginGracefulShutdown() {
    let running: (ServerQuiescingHelper, EventLoopPromise<Void>)? = state.withLock { state in
      guard case .running(let quiesce, let drained) = state else { return nil }
      state = .stopping
      return (quiesce, drained)
    }
    guard let (quiesce, drained) = running else { return }
    logger.info("shutting down: draining connections")
    onShutdown()
    quiesce.initiateShutdown(promise: drained)
  }
}
