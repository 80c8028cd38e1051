import DMSClient
import DMSRPC
import DMSServer
import DMSServices
import Logging
import NIOCore
import SwiftProtobuf

/// A real server on 127.0.0.1, port 0, with the built-in services and the test ones.
struct TestServer {
  let server: RPCServer
  let port: Int
  let health: HealthService
  let probe: TestService.Probe
  private let task: Task<Void, any Error>

  /// Starts a server; `configure` adjusts its configuration.
  static func start(
    port: Int = 0,
    _ configure: (inout ServerConfiguration) -> Void = { _ in }
  ) async throws -> TestServer {
    var configuration = ServerConfiguration(host: "127.0.0.1", port: port, serverName: "dms-settingsd-test")
    configure(&configuration)
    let health = HealthService()
    let probe = TestService.Probe()
    var router = Router()
    for method in TestService.methods(probe: probe) { router.register(method) }
    BuiltinServices.register(into: &router, health: health)
    var logger = Logger(label: "test-server")
    logger.logLevel = .critical
    let server = RPCServer(
      configuration: configuration, router: router, logger: logger, onShutdown: { health.shutDown() })
    let task = Task { try await server.run() }
    let address = try await server.localAddress()
    return TestServer(server: server, port: address.port!, health: health, probe: probe, task: task)
  }

  /// Shuts down gracefully and waits until `run()` returned.
  func stop() async throws {
    server.beginGracefulShutdown()
    try await task.value
  }

  /// Waits for `run()` to return (after a shutdown begun elsewhere).
  func waitUntilStopped() async throws {
    try await task.value
  }

  /// A client of this server.
  func client(_ configure: (inout ClientConfiguration) -> Void = { _ in }) -> RPCClient {
    var configuration = ClientConfiguration(host: "127.0.0.1", port: port, connectAttempts: 1)
    configure(&configuration)
    return RPCClient(configuration: configuration)
  }

  /// A raw TCP connection to this server.
  func raw() async throws -> RawConnection {
    try await RawConnection.connect(port: port)
  }
}

/// Runs `body` with a started server, and stops the server afterwards.
func withTestServer<T>(
  _ configure: (inout ServerConfiguration) -> Void = { _ in },
  _ body: (TestServer) async throws -> T
) async throws -> T {
  let server = try await TestServer.start(configure)
  do {
    let result = try await body(server)
    try await server.stop()
    return result
  } catch {
    try? await server.stop()
    throw error
  }
}
