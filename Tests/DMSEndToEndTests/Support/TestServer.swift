import Crypto
import DMSClient
import DMSDomain
import DMSRPC
import DMSServer
import DMSStorage
import Foundation
import Logging
import NIOCore
import SwiftProtobuf
import Synchronization

@testable import DMSServices

/// The store the end-to-end tests run on: SQLite in a data folder, or PostgreSQL when
/// `DMS_TEST_BACKEND=postgres` (and `DMS_TEST_POSTGRES` names a server; `scripts/test`
/// runs the end-to-end tests both ways).
enum TestBackend {
  case sqlite, postgres

  static let current: TestBackend =
    ProcessInfo.processInfo.environment["DMS_TEST_BACKEND"] == "postgres" ? .postgres : .sqlite

  /// Each data folder's database (a restart on the same folder finds the same one).
  private static let databases = Mutex<[String: PostgresOptions]>([:])

  /// The store of `dataDirectory`.
  static func open(dataDirectory: String, logger: Logger, onCorruption: @escaping @Sendable () -> Void)
    async throws -> DatabaseStore
  {
    switch current {
    case .sqlite:
      var options = SQLiteSettingsStore.Options()
      options.onCorruption = onCorruption
      return try SQLiteSettingsStore(
        path: (dataDirectory as NSString).appendingPathComponent("settings.sqlite"),
        secrets: SecretBox(key: testMasterKey), options: options, logger: logger)
    case .postgres:
      guard let admin = PostgresScratch.adminURL else {
        throw StoreError(.unavailable, "DMS_TEST_BACKEND=postgres needs DMS_TEST_POSTGRES (scripts/postgres start)")
      }
      let options: PostgresOptions
      if let known = databases.withLock({ $0[dataDirectory] }) {
        options = known
      } else {
        options = try await PostgresScratch.create(adminURL: admin)
        databases.withLock { $0[dataDirectory] = options }
      }
      return try await PostgresSettingsStore.open(
        options: options, secrets: SecretBox(key: testMasterKey), logger: logger)
    }
  }
}

/// A real server on 127.0.0.1, port 0, with the built-in services and the test ones.
struct TestServer {
  let server: RPCServer
  let port: Int
  let health: HealthService
  let probe: TestService.Probe
  /// The data folder (SQLite database) the settings services use; on PostgreSQL, it
  /// names the database.
  let dataDirectory: String
  let store: DatabaseStore
  /// A session of the administrator `tester` (password `testerPassword`), which
  /// `client()` signs its calls with.
  let adminToken: String
  /// The mail worker (MailDelivery), running beside the server.
  let mail: MailDelivery
  private let task: Task<Void, any Error>
  private let mailTask: Task<Void, any Error>

  /// The mail worker's configuration in tests: quick retries, a short poll.
  static let testMail = MailConfiguration(
    retry: MailRetryPolicy(maxAttempts: 3, firstDelay: 0.2, maxDelay: 1), leaseSeconds: 30, pollSeconds: 1,
    connectTimeout: 5, sendTimeout: 20)

  /// The password of `tester`, the test server's administrator.
  static let testerPassword = "tester's long password"
  /// Cheap hashes for tests (the cost parameters are stored with each hash).
  static let cheap = PasswordHasher.Parameters(logN: 10, blockSize: 8, parallelism: 1)
  /// The server's hasher (one per server: tests count its derivations).
  let hasher: PasswordHasher

  /// Starts a server; `configure` adjusts its configuration.
  static func start(
    port: Int = 0,
    deployment: DeploymentConfiguration = DeploymentConfiguration(mode: .multiCompany),
    dataDirectory: String? = nil,
    security: SecurityConfiguration = SecurityConfiguration(),
    mail mailConfiguration: MailConfiguration = testMail,
    integrations: IntegrationsConfiguration = IntegrationsConfiguration(),
    logger: Logger? = nil,
    _ configure: (inout ServerConfiguration) -> Void = { _ in }
  ) async throws -> TestServer {
    var configuration = ServerConfiguration(host: "127.0.0.1", port: port, serverName: "dms-settingsd-test")
    configure(&configuration)
    let logger =
      logger
      ?? {
        var logger = Logger(label: "test-server")
        logger.logLevel = .critical
        return logger
      }()
    let dataDirectory = dataDirectory ?? Self.temporaryDirectory()
    // As in the daemon: a damaged database turns the whole server NOT_SERVING.
    let healthAfterStart = Mutex<HealthService?>(nil)
    let store = try await TestBackend.open(dataDirectory: dataDirectory, logger: logger) {
      healthAfterStart.withLock { $0 }?.setStatus(.notServing)
    }
    try await CompanyModeMigration.run(store: store, configuration: deployment, logger: logger)
    // Weak: the store holds this health service through onCorruption, and a cycle
    // kept every test's database open to the end of the run (1,000 descriptors).
    let health = HealthService(probes: [
      "dms.settings.v1.storage": { [weak store] in await store?.isHealthy() ?? false }
    ])
    healthAfterStart.withLock { $0 = health }
    let probe = TestService.Probe()
    let hasher = PasswordHasher(parameters: cheap)
    var router = Router()
    for method in TestService.methods(probe: probe) { router.register(method) }
    let mail = MailDelivery(store: store, configuration: mailConfiguration, deployment: deployment, logger: logger)
    // MAIL-6: on SQLite the storage administrator, with the password PostgreSQL's test
    // role has (PostgreSQL checks its own).
    let dba = PostgresScratch.databaseAdministrator
    let dbaHasher = PasswordHasher(parameters: cheap)
    let administrators = DatabaseAdministrators(
      storageAccount: .init(login: dba.login, passwordHash: try await dbaHasher.hash(dba.password)),
      hasher: dbaHasher, refusalDelay: .milliseconds(50))
    SettingsServices.register(
      into: &router, store: store, configuration: deployment, serverVersion: "test", mail: mail,
      databaseAdministrators: administrators, integrations: integrations, logger: logger)
    SecurityServices.register(
      into: &router, store: store, hasher: hasher, deployment: deployment, security: security,
      initialAdministrator: nil, logger: logger)
    BuiltinServices.register(into: &router, health: health)
    let adminToken = try await Self.session(
      of: Operator(login: "tester", fullName: "Test Administrator", administrator: true), password: testerPassword,
      in: store, security: security)
    let server = RPCServer(
      configuration: configuration, router: router,
      authorizer: SessionAuthorizer(directory: store.operators, configuration: security), logger: logger,
      onShutdown: {
        health.shutDown()
        store.changes.finishAll()
      })
    let task = Task { try await server.run() }
    let mailTask = Task { try await mail.run() }
    let address = try await server.localAddress()
    return TestServer(
      server: server, port: address.port!, health: health, probe: probe, dataDirectory: dataDirectory, store: store,
      adminToken: adminToken, mail: mail, task: task, mailTask: mailTask, hasher: hasher)
  }

  /// A session of `value` (created, with `password`, when it does not exist), made
  /// straight in the store: its token.
  static func session(
    of value: Operator, password: String? = nil, in store: DatabaseStore,
    security: SecurityConfiguration = SecurityConfiguration(), expiresIn: Duration? = nil,
    scope: SessionRecord.Scope = .full
  ) async throws -> String {
    let hash: String? =
      if let password { try await PasswordHasher(parameters: cheap).hash(password).encoded } else { nil }
    let (token, tokenHash) = SessionTokens.make()
    let now = Date()
    let lifetime = expiresIn ?? security.sessionLifetime
    try await store.operators.transaction(by: .system("test")) { tx in
      let stored =
        try tx.operator(login: value.login)
        ?? tx.createOperator(value, passwordHash: hash, mustChangePassword: false)
      try tx.createSession(
        SessionRecord(
          tokenHash: tokenHash, holder: .operator(stored.id), scope: scope, createdAt: now,
          expiresAt: now.addingTimeInterval(lifetime.seconds), peer: "test"))
    }
    return token
  }

  /// A session of `value` on this server (see `session(of:password:in:)`).
  func session(
    of value: Operator, password: String? = nil, expiresIn: Duration? = nil, scope: SessionRecord.Scope = .full
  ) async throws -> String {
    try await Self.session(of: value, password: password, in: store, expiresIn: expiresIn, scope: scope)
  }

  static func temporaryDirectory() -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("dms-e2e-\(UUID().uuidString)").path
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
  }

  /// Shuts down gracefully and waits until `run()` returned.
  func stop() async throws {
    mail.stop()
    try await mailTask.value
    server.beginGracefulShutdown()
    try await task.value
    await (store as? PostgresSettingsStore)?.shutdown()
  }

  /// Waits for `run()` to return (after a shutdown begun elsewhere).
  func waitUntilStopped() async throws {
    mail.stop()
    try await mailTask.value
    try await task.value
  }

  /// A client of this server, signed in as the administrator `tester` (set
  /// `credentials` to nil in `configure` for none). It gives this server 30 s, not the
  /// library's 5 s, to send its preface: the server is known to be one, and a loaded
  /// machine running the suites side by side has taken more than 5 s to schedule it.
  func client(_ configure: (inout ClientConfiguration) -> Void = { _ in }) -> RPCClient {
    var configuration = ClientConfiguration(
      host: "127.0.0.1", port: port, connectTimeout: .seconds(30), connectAttempts: 1,
      credentials: .token(adminToken))
    configure(&configuration)
    return RPCClient(configuration: configuration)
  }

  /// A raw TCP connection to this server.
  func raw() async throws -> RawConnection {
    try await RawConnection.connect(port: port)
  }
}

/// One master key for the test process.
let testMasterKey = SymmetricKey(size: .bits256)

/// Runs `body` with a started server, and stops the server afterwards.
func withTestServer<T>(
  deployment: DeploymentConfiguration = DeploymentConfiguration(mode: .multiCompany),
  security: SecurityConfiguration = SecurityConfiguration(),
  mail: MailConfiguration = TestServer.testMail,
  integrations: IntegrationsConfiguration = IntegrationsConfiguration(),
  logger: Logger? = nil,
  _ configure: (inout ServerConfiguration) -> Void = { _ in },
  _ body: (TestServer) async throws -> T
) async throws -> T {
  let server = try await TestServer.start(
    deployment: deployment, security: security, mail: mail, integrations: integrations, logger: logger, configure)
  do {
    let result = try await body(server)
    try await server.stop()
    return result
  } catch {
    try? await server.stop()
    throw error
  }
}
