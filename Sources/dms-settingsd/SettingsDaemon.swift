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

/// `dms-settingsd`: the DMS settings server. `serve` (the default) runs it;
/// `bootstrap-admin` makes an administrator for a deployment; `hash-password` makes the
/// storage administrator's password hash.
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
      command line, or an environment variable under SERVER_, SETTINGS_, STORAGE_,
      LOG_, SECURITY_, MAIL_, KSEF_ or EDELIVERY_), stops start-up with exit code 78, naming it (CFG-10).
      """,
    version: version,
    subcommands: [Serve.self, BootstrapAdmin.self, HashPassword.self],
    defaultSubcommand: Serve.self
  )
}

/// The configuration options every subcommand reads.
struct ConfigurationOptions: ParsableArguments {
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

  /// The configuration, or exit 78 naming what is wrong.
  func load() throws -> DaemonConfiguration {
    do {
      return try DaemonConfiguration.load(from: try makeReader(), serverName: "dms-settingsd/\(Release.version)")
    } catch let error as ConfigurationError {
      for line in error.description.split(separator: "\n") {
        FileHandle.standardError.write(Data("dms-settingsd: \(line)\n".utf8))
      }
      throw ExitCode(78)  // EX_CONFIG
    }
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

/// `dms-settingsd serve`: runs the server (the default subcommand).
struct Serve: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Run the server (the default: `dms-settingsd --port 7411` is `dms-settingsd serve --port 7411`).")

  @OptionGroup var options: ConfigurationOptions

  func run() async throws {
    let loaded = try options.load()
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
    let store = try await StoreOpening.open(loaded, logger: logger) {
      healthAfterStart.withLock { $0 }?.setStatus(.notServing)
    }
    let hasher = loaded.passwordHasher
    if loaded.passwordHashLogN < PasswordHasher.Parameters.standard.logN {
      logger.warning(
        "security.password-hash-log-n is \(loaded.passwordHashLogN), below 17: new password hashes are cheap to guess. For tests only."
      )
    }
    let initialAdministrator = InitialAdministrator(dataFolder: loaded.dataDirectory)
    do {
      _ = try await initialAdministrator.ensure(store: store, hasher: hasher, logger: logger)
    } catch {
      logger.critical("first start: cannot create the administrator: \(error)")
      throw ExitCode(74)
    }

    let health = HealthService(probes: ["dms.settings.v1.storage": { await store.isHealthy() }])
    healthAfterStart.withLock { $0 = health }
    var router = Router()
    let mail = MailDelivery(store: store, configuration: loaded.mail, deployment: loaded.deployment, logger: logger)
    SettingsServices.register(
      into: &router, store: store, configuration: loaded.deployment, serverVersion: SettingsDaemon.version,
      mail: mail,
      databaseAdministrators: DatabaseAdministrators(storageAccount: loaded.storageAdministrator, hasher: hasher),
      integrations: loaded.integrations, logger: logger)
    SecurityServices.register(
      into: &router, store: store, hasher: hasher, deployment: loaded.deployment, security: loaded.security,
      initialAdministrator: initialAdministrator, logger: logger)
    BuiltinServices.register(into: &router, health: health)
    logger.info(
      "mode: \(loaded.deployment.mode == .multiCompany ? "multi-company" : "single-company") (CFG-1)",
      metadata: ["ksef-work-mode": "\(loaded.deployment.ksefWorkMode.rawValue)"])

    let server = RPCServer(
      configuration: loaded.server,
      router: router,
      authorizer: SessionAuthorizer(directory: store.operators, configuration: loaded.security),
      logger: logger,
      onShutdown: {
        health.shutDown()
        store.changes.finishAll()
      }
    )
    let sweeper = SessionSweeper(store: store, configuration: loaded.security, logger: logger)
    let group = ServiceGroup(
      configuration: .init(
        services: [
          .init(service: server), .init(service: SessionSweepService(sweeper: sweeper)), .init(service: mail),
        ],
        gracefulShutdownSignals: [.sigterm, .sigint],
        logger: logger
      )
    )
    do {
      try await group.run()
    } catch {
      await StoreOpening.close(store, logger: logger)
      throw error
    }
    await StoreOpening.close(store, logger: logger)
  }
}

/// Opening the data folder's store, for every subcommand, and closing it.
enum StoreOpening {
  /// Closes `store` once nothing uses it: SQLite writes its log into `settings.sqlite`
  /// (a stopped server's folder is then a complete copy), PostgreSQL's connections end.
  static func close(_ store: DatabaseStore, logger: Logger) async {
    if let sqlite = store as? SQLiteSettingsStore {
      do {
        try await sqlite.close()
      } catch {
        logger.warning("storage: closing the database: \(error); the next start finishes it")
      }
    }
    await (store as? PostgresSettingsStore)?.shutdown()
  }

  /// The store of `loaded`'s data folder, migrated and in the configured mode (on SQLite
  /// with the folder locked to this process, `DataFolderLock`); exits 78
  /// (configuration), 75 (the folder in use) or 74 (I/O) with the reason logged.
  static func open(
    _ loaded: DaemonConfiguration, logger: Logger, onCorruption: @escaping @Sendable () -> Void = {}
  ) async throws -> DatabaseStore {
    var storeOptions = SQLiteSettingsStore.Options()
    storeOptions.busyTimeout = loaded.busyTimeout
    storeOptions.onCorruption = onCorruption
    if loaded.postgres == nil {
      do {
        try DataFolderLock.take(loaded.dataDirectory)
      } catch let error as DataFolderLock.InUse {
        logger.critical("\(error.description)")
        throw ExitCode(75)  // EX_TEMPFAIL: once the other one stops, this one can start
      } catch {
        logger.critical("\(error)")
        throw ExitCode(74)
      }
    }
    do {
      let (key, source) = try MasterKey.load(base64: loaded.masterKeyBase64, path: loaded.masterKeyFile)
      switch source {
      case .environment: logger.info("master key from the environment (storage.master-key)")
      case .existingFile(let path): logger.info("master key from \(path)")
      case .createdFile(let path): logger.notice("created a new master key in \(path) (mode 0600): back it up")
      }
      let store: DatabaseStore
      if let postgres = loaded.postgres {
        store = try await PostgresSettingsStore.open(options: postgres, secrets: SecretBox(key: key), logger: logger)
        logger.info(
          "storage: PostgreSQL at \(postgres.endpoint)",
          metadata: [
            "pool-size": "\(postgres.poolSize)", "writers": "\(postgres.writers)",
            "owner": "\(postgres.owner?.user ?? postgres.endpoint.user)",
          ])
      } else {
        let path = (loaded.dataDirectory as NSString).appendingPathComponent("settings.sqlite")
        store = try SQLiteSettingsStore(path: path, secrets: SecretBox(key: key), options: storeOptions, logger: logger)
        logger.info("storage: SQLite at \(path)")
      }
      do {
        try await store.verifyMasterKey()
      } catch let mismatch as DatabaseStore.MasterKeyMismatch {
        let made =
          if case .createdFile = source { " (it was made at this start: the database's key is missing)" } else { "" }
        logger.critical(
          "\(mismatch.description)\(made): restore the key this database was written with (\(loaded.masterKeyFile), or storage.master-key)"
        )
        throw ExitCode(78)
      }
      try await CompanyModeMigration.run(store: store, configuration: loaded.deployment, logger: logger)
      return store
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
  }
}

/// Sweeps ended sessions every minute until shutdown (`SessionSweeper`).
struct SessionSweepService: Service {
  let sweeper: SessionSweeper

  func run() async throws {
    // Ends quietly on shutdown: the sleep's cancellation is not a failure of the group.
    do {
      try await cancelWhenGracefulShutdown {
        while !Task.isCancelled {
          try await Task.sleep(for: .seconds(60))
          await sweeper.sweep()
        }
      }
    } catch is CancellationError {
    }
  }
}
