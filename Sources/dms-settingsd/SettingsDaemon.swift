import ArgumentParser
import Configuration
import DMSDomain
import DMSRPC
import DMSServer
import DMSServices
import DMSStorage
import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import SystemPackage

/// `dms-settingsd`: the DMS settings server.
@main
struct SettingsDaemon: AsyncParsableCommand {
  static let version = Release.version

  static let configuration = CommandConfiguration(
    commandName: "dms-settingsd",
    abstract: "The DMS settings server: DMS RPC over TCP.",
    discussion: """
      Configuration comes from a JSON file (--config or DMS_CONFIG), then environment
      variables, then the command line, each overriding the one before. Every key is
      in docs/CONFIGURATION.md; on the command line a key is written --key-with-dashes
      (server.port: --server-port 7411), in the environment KEY_WITH_UNDERSCORES
      (SERVER_PORT=7411). A bad value, or a key that is not one (in the file, on the
      command line, or an environment variable under SERVER_, SETTINGS_, STORAGE_ or
      LOG_), stops start-up with exit code 78, naming it (CFG-10).
      """,
    version: version
  )

  @Option(help: "A JSON configuration file (default: DMS_CONFIG, else none).")
  var config: String?

  @Option(help: "Address to listen on (server.host).")
  var host: String?

  @Option(help: "Port to listen on; 0 picks a free one (server.port).")
  var port: Int?

  @Option(help: "The data folder: database and master key (storage.data-directory).")
  var dataDirectory: String?

  @Option(help: "Log level (log.level): trace, debug, info, notice, warning, error, critical.")
  var logLevel: String?

  @Argument(parsing: .allUnrecognized, help: "Any other configuration key, as --key value.")
  var keys: [String] = []

  func run() async throws {
    let loaded: DaemonConfiguration
    let reader: ConfigReader
    do {
      reader = try makeReader()
      loaded = try DaemonConfiguration.load(from: reader, serverName: "dms-settingsd/\(Self.version)")
    } catch let error as ConfigurationError {
      for line in error.description.split(separator: "\n") {
        FileHandle.standardError.write(Data("dms-settingsd: \(line)\n".utf8))
      }
      throw ExitCode(78)  // EX_CONFIG
    }
    let level = loaded.logLevel
    LoggingSystem.bootstrap { label in
      var handler = StreamLogHandler.standardError(label: label)
      handler.logLevel = level
      return handler
    }
    var logger = Logger(label: "dms-settingsd")
    logger.logLevel = level

    // A damaged database turns the whole server NOT_SERVING (the store reports it
    // once, before Health exists if it is found at start-up).
    let healthAfterStart = Mutex<HealthService?>(nil)
    var storeOptions = SQLiteSettingsStore.Options()
    storeOptions.busyTimeout = loaded.busyTimeout
    storeOptions.onCorruption = { healthAfterStart.withLock { $0 }?.setStatus(.notServing) }
    let store: SQLiteSettingsStore
    do {
      let (key, source) = try MasterKey.load(base64: loaded.masterKeyBase64, path: loaded.masterKeyFile)
      switch source {
      case .environment: logger.info("master key from the environment (storage.master-key)")
      case .existingFile(let path): logger.info("master key from \(path)")
      case .createdFile(let path): logger.notice("created a new master key in \(path) (mode 0600): back it up")
      }
      let path = (loaded.dataDirectory as NSString).appendingPathComponent("settings.sqlite")
      store = try SQLiteSettingsStore(
        path: path, secrets: SecretBox(key: key), options: storeOptions, logger: logger)
      logger.info("storage: SQLite at \(path)")
      try await CompanyModeMigration.run(store: store, configuration: loaded.deployment, logger: logger)
    } catch let error as CompanyModeMigration.RefusedSwitch {
      logger.critical("\(error.description)")
      throw ExitCode(78)
    } catch let error as MasterKeyError {
      logger.critical("\(error.description)")
      throw ExitCode(78)
    } catch let error as StoreError {
      logger.critical("cannot open the database: \(error.message)")
      throw ExitCode(74)  // EX_IOERR
    }

    let health = HealthService(probes: ["dms.settings.v1.storage": { await store.isHealthy() }])
    healthAfterStart.withLock { $0 = health }
    var router = Router()
    SettingsServices.register(
      into: &router, store: store, configuration: loaded.deployment, serverVersion: Self.version, logger: logger)
    BuiltinServices.register(into: &router, health: health)
    logger.info(
      "mode: \(loaded.deployment.mode == .multiCompany ? "multi-company" : "single-company") (CFG-1)",
      metadata: ["ksef-work-mode": "\(loaded.deployment.ksefWorkMode.rawValue)"])

    let server = RPCServer(
      configuration: loaded.server,
      router: router,
      logger: logger,
      onShutdown: {
        health.shutDown()
        store.changes.finishAll()
      }
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

  /// Command line (options, then forwarded keys) over environment over file.
  private func makeReader() throws -> ConfigReader {
    var sources = ConfigurationSources()
    if let host { sources.options["server.host"] = host }
    if let port { sources.options["server.port"] = String(port) }
    if let dataDirectory { sources.options["storage.data-directory"] = dataDirectory }
    if let logLevel { sources.options["log.level"] = logLevel }
    sources.arguments = keys
    sources.filePath = config ?? ProcessInfo.processInfo.environment["DMS_CONFIG"]
    return try sources.reader()
  }
}
