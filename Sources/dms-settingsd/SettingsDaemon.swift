import ArgumentParser
import DMSRPC
import DMSServer
import DMSServices
import Logging
import NIOSSL
import ServiceLifecycle

/// `dms-settingsd`: the DMS settings server.
@main
struct SettingsDaemon: AsyncParsableCommand {
  static let version = "0.1.0"

  static let configuration = CommandConfiguration(
    commandName: "dms-settingsd",
    abstract: "The DMS settings server: DMS RPC over TCP.",
    version: version
  )

  @Option(help: "Address to listen on.")
  var host = "127.0.0.1"

  @Option(help: "Port to listen on (0 picks a free one).")
  var port = ServerConfiguration.defaultPort

  @Option(help: "PEM certificate chain; with --tls-key, serves TLS.")
  var tlsCertificate: String?

  @Option(help: "PEM private key of the certificate.")
  var tlsKey: String?

  @Option(help: "Calls open at once per connection.")
  var maxConcurrentCalls = 128

  @Option(help: "Largest meta + payload of one frame, in bytes.")
  var maxFrameSize = 4 << 20

  @Option(help: "Seconds a connection with no open call is kept.")
  var idleTimeout = 300

  @Option(help: "Seconds open calls may run after SIGTERM.")
  var shutdownGrace = 10

  @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
  var logLevel = "info"

  func validate() throws {
    guard (0...65535).contains(port) else { throw ValidationError("--port must be 0...65535, not \(port)") }
    guard (tlsCertificate == nil) == (tlsKey == nil) else {
      throw ValidationError("--tls-certificate and --tls-key go together")
    }
    guard maxConcurrentCalls >= 1 else { throw ValidationError("--max-concurrent-calls must be at least 1") }
    guard maxFrameSize >= 65536 else { throw ValidationError("--max-frame-size must be at least 65536") }
    guard Logger.Level(rawValue: logLevel) != nil else {
      throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical")
    }
  }

  func run() async throws {
    let level = Logger.Level(rawValue: logLevel) ?? .info
    LoggingSystem.bootstrap { label in
      var handler = StreamLogHandler.standardError(label: label)
      handler.logLevel = level
      return handler
    }
    let logger = Logger(label: "dms-settingsd")

    var tls: TLSConfiguration?
    if let tlsCertificate, let tlsKey {
      tls = TLSConfiguration.makeServerConfiguration(
        certificateChain: try NIOSSLCertificate.fromPEMFile(tlsCertificate).map { .certificate($0) },
        privateKey: .privateKey(try NIOSSLPrivateKey(file: tlsKey, format: .pem))
      )
    }
    let configuration = ServerConfiguration(
      host: host,
      port: port,
      tls: tls,
      limits: .init(maxFrameSize: maxFrameSize, maxConcurrentCalls: maxConcurrentCalls),
      timeouts: .init(idle: .seconds(idleTimeout), shutdownGrace: .seconds(shutdownGrace)),
      serverName: "dms-settingsd/\(Self.version)"
    )

    let health = HealthService()
    var router = Router()
    BuiltinServices.register(into: &router, health: health)
    let server = RPCServer(
      configuration: configuration,
      router: router,
      logger: logger,
      onShutdown: { health.shutDown() }
    )
    let group = ServiceGroup(
      configuration: .init(
        services: [.init(service: server)],
        gracefulShutdownSignals: [.sigterm, .sigint],
        logger: logger
      )
    )
    try await group.run()
  }
}
