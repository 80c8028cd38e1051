import DMSDomain
import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import PostgresNIO
import Synchronization

/// The backend for deployments that outgrow one machine: several instances on one
/// PostgreSQL (docs/STORAGE.md).
///
/// The same rooms' SQL, caches, feed and group commit as SQLite (`DatabaseStore`).
/// Each instance writes through one connection, in batches; a batch holds an advisory
/// lock until it commits, so writers across instances take turns as SQLite's single
/// writer does, revisions are checked against the latest commit and the feed's
/// positions follow commit order. Reads use a small pool of connections. Every
/// statement blocks a thread of the store's own (the writer's, or the pool's), never an
/// event loop. Company-owned tables are under row-level security: each transaction
/// sets its company (`SET LOCAL` through `set_config`).
public final class PostgresSettingsStore: DatabaseStore, @unchecked Sendable {
  let postgres: PostgresEngine

  /// Connects, runs the migrations (as `options.owner` when given) under an advisory
  /// lock, grants the server's role what it needs, and loads the caches.
  ///
  /// - Throws: `StoreError` (`.unavailable` with the reason when the database cannot be
  ///   reached or refuses the role).
  public static func open(
    options: PostgresOptions, secrets: SecretBox, logger: Logger = Logger(label: "dms.storage")
  ) async throws -> PostgresSettingsStore {
    let engine = try PostgresEngine(options: options, logger: logger)
    do {
      let loaded = try await engine.pool.runIfActive {
        try engine.prepareDatabase()
        return try engine.withReader(.all) { sql in try Loaded(sql) }
      }
      return PostgresSettingsStore(engine: engine, secrets: secrets, loaded: loaded, maxBatch: options.maxBatch)
    } catch {
      await engine.shutdown()
      throw engine.map(error)
    }
  }

  private init(engine: PostgresEngine, secrets: SecretBox, loaded: Loaded, maxBatch: Int) {
    postgres = engine
    super.init(engine: engine, secrets: secrets, loaded: loaded, maxBatch: maxBatch, logger: engine.logger)
  }

  /// Closes the connections and stops the store's threads.
  public func shutdown() async {
    await postgres.shutdown()
  }

  /// MAIL-6: signs in as `login` with `password` (the server's host, port, database and
  /// TLS), and asks the database whether that role is a superuser or a member of the role
  /// that owns the settings tables. PostgreSQL checks the password as pg_hba.conf says:
  /// under `trust` it checks none (docs/settings/MAIL.md).
  override public func verifyDatabaseAdministrator(login: String, password: String) async throws
    -> DatabaseAdministratorVerdict?
  {
    try await postgres.verifyAdministrator(login: login, password: password)
  }
}

/// PostgreSQL through PostgresNIO: writer connections on serial queues, reader
/// connections on a thread pool.
final class PostgresEngine: StoreEngine, @unchecked Sendable {
  let options: PostgresOptions
  let logger: Logger
  let pool: NIOThreadPool
  private let group: any EventLoopGroup
  private var lanes: [WriterLane] = []
  /// What this instance's notifications say (its listener skips them).
  let notification = UUID().uuidString
  private let idle = Mutex<[PostgresSession]>([])
  private let statements = PlaceholderCache()
  private let tls: PostgresConnection.Configuration.TLS
  private let nextID = Atomic<Int>(1)
  /// The connection that LISTENs for the other instances' commits, and its loop.
  private let listener = Mutex<(task: Task<Void, Never>?, session: PostgresSession?)>((nil, nil))
  /// A database that is down fails every call: each kind of failure is logged once in
  /// a while, with a count.
  private let repeatedErrors = RepeatedErrors()

  init(options: PostgresOptions, logger: Logger) throws {
    self.options = options
    self.logger = logger
    tls = try Self.tls(options.endpoint)
    group = MultiThreadedEventLoopGroup.singleton
    pool = NIOThreadPool(numberOfThreads: max(1, options.poolSize))
    pool.start()
    lanes = (0..<max(1, options.writers)).map { WriterLane(engine: self, index: $0) }
  }

  deinit {
    listener.withLock { $0.task?.cancel() }
    pool.shutdownGracefully { _ in }
  }

  func shutdown() async {
    let session = listener.withLock { listener in
      listener.task?.cancel()
      defer { listener.session = nil }
      return listener.session
    }
    if let session { try? await session.connection.close() }
    let sessions = idle.withLock { sessions in
      defer { sessions.removeAll() }
      return sessions
    }
    for session in sessions { try? await session.connection.close() }
    for lane in lanes {
      if let writer = lane.takeSession() { try? await writer.connection.close() }
    }
    try? await pool.shutdownGracefully()
  }

  var dialect: SQLDialect { .postgres }

  var writers: [any CommitWriter] { lanes }

  // MARK: Connections

  private static func tls(_ endpoint: PostgresOptions.Endpoint) throws -> PostgresConnection.Configuration.TLS {
    var configuration = TLSConfiguration.makeClientConfiguration()
    switch endpoint.tls {
    case .disable: return .disable
    case .prefer, .require: configuration.certificateVerification = .none
    case .verifyCA: configuration.certificateVerification = .noHostnameVerification
    case .verifyFull: configuration.certificateVerification = .fullVerification
    }
    if let root = endpoint.rootCertificate {
      configuration.trustRoots = .file(root)
    }
    let context = try NIOSSLContext(configuration: configuration)
    return endpoint.tls == .prefer ? .prefer(context) : .require(context)
  }

  /// A new connection as `endpoint`'s role (blocking: called on the store's threads);
  /// `watchdog`: how long a statement may go unanswered (default: the statement timeout).
  func connect(_ endpoint: PostgresOptions.Endpoint, watchdog: Duration? = nil) throws -> PostgresSession {
    var configuration: PostgresConnection.Configuration
    if let socket = endpoint.socketDirectory {
      configuration = .init(
        unixSocketPath: "\(socket)/.s.PGSQL.\(endpoint.port)", username: endpoint.user, password: endpoint.password,
        database: endpoint.database)
    } else {
      configuration = .init(
        host: endpoint.host, port: endpoint.port, username: endpoint.user, password: endpoint.password,
        database: endpoint.database, tls: endpoint == options.endpoint ? tls : try Self.tls(endpoint))
    }
    configuration.options.connectTimeout = .milliseconds(
      Int64((endpoint.connectTimeout ?? options.connectTimeout).milliseconds))
    configuration.options.additionalStartupParameters = [
      ("application_name", endpoint.applicationName ?? "dms-settingsd"),
      ("statement_timeout", "\(options.statementTimeout.milliseconds)"),
      // A transaction left open by a lost client does not hold the write lock for long.
      ("idle_in_transaction_session_timeout", "\(max(options.statementTimeout.milliseconds * 3, 30_000))"),
    ]
    let connection = try PostgresConnection.connect(
      on: group.next(), configuration: configuration, id: nextID.wrappingAdd(1, ordering: .relaxed).oldValue,
      logger: logger
    ).wait()
    return PostgresSession(
      connection: connection, statements: statements, watchdog: watchdog ?? options.statementTimeout, logger: logger)
  }

  /// Migrates (as the owner), grants the server's role its rights and warns when
  /// row-level security cannot bind it.
  func prepareDatabase() throws {
    let ownerEndpoint = options.owner ?? options.endpoint
    let owner = try connect(ownerEndpoint, watchdog: PostgresMigrations.timeLimit)
    defer { owner.close() }
    try PostgresMigrations.migrate(owner, logger: logger)
    if ownerEndpoint.user != options.endpoint.user {
      try PostgresMigrations.grant(to: options.endpoint.user, owner)
    }
    try withReader(.none) { sql in
      let bypasses =
        try sql.value(Bool.self, "SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user") ?? false
      if bypasses {
        logger.warning(
          "storage: the role \(options.endpoint.user) is a superuser or has BYPASSRLS: row-level security does not bind it; connect as a role without (docs/STORAGE.md)"
        )
      } else if ownerEndpoint.user == options.endpoint.user {
        logger.notice(
          "storage: the server's role \(options.endpoint.user) owns the tables; row-level security is forced on it, but a separate owner (storage.postgres.owner-url) keeps DDL out of the server's reach"
        )
      }
    }
  }

  /// Runs `body` on an idle reader connection (a new one when none is idle), scoped to
  /// `scope`; a connection that failed is not reused.
  func withReader<Result>(_ scope: RowScope, _ body: (PostgresSession) throws -> Result) throws -> Result {
    // Connections the server closed while idle (a restart, a failover) are dropped.
    let reusable = idle.withLock { sessions -> PostgresSession? in
      while let session = sessions.popLast() {
        if !session.isClosed { return session }
      }
      return nil
    }
    let session = try reusable ?? connect(options.endpoint)
    do {
      try session.scope(scope, local: false)
      let result = try body(session)
      idle.withLock { $0.append(session) }
      return result
    } catch {
      if session.isClosed { session.close() } else { idle.withLock { $0.append(session) } }
      throw error
    }
  }

  func read<Result: Sendable>(
    _ scope: RowScope, _ body: @escaping @Sendable (any SQLSession) throws -> Result
  ) async throws -> Result {
    try await pool.runIfActive { try self.withReader(scope) { try body($0) } }
  }

  // MARK: Following the other instances

  func follow(_ wake: @escaping @Sendable () -> Void) {
    let task = Task.detached { [weak self] in
      var delay: Duration = .milliseconds(100)
      /// The listening connection was lost and is not back yet.
      var lost = false
      while !Task.isCancelled {
        var closed: EventLoopFuture<Void>?
        do {
          // The engine is held only while connecting, not while listening: a store
          // that goes away stops its listener.
          guard let engine = self else { return }
          let session = try await engine.pool.runIfActive {
            let session = try engine.connect(engine.options.endpoint)
            let own = engine.notification
            session.connection.addListener(channel: PostgresSession.channel) { _, notification in
              // This instance's own commits are applied as they commit.
              if notification.payload != own { wake() }
            }
            try session.execute("LISTEN \(PostgresSession.channel)")
            return session
          }
          engine.listener.withLock { $0.session = session }
          closed = session.connection.closeFuture
          // Whatever was committed while not listening.
          wake()
          delay = .milliseconds(100)
          if lost {
            lost = false
            engine.logger.notice(
              "storage: following the other instances' changes again; what they changed meanwhile is read from the change feed"
            )
          }
        } catch {
          self?.logger.debug("storage: cannot listen for the other instances' changes yet: \(error)")
        }
        if let closed { try? await closed.get() }
        if Task.isCancelled { return }
        if closed != nil {
          // Not shutting down: the database restarted, failed over or dropped it.
          lost = true
          self?.logger.warning(
            "storage: lost the connection that follows the other instances' changes; reconnecting (until then their changes do not reach this instance's cache and Watch streams)"
          )
        }
        try? await Task.sleep(for: delay)
        delay = min(delay * 2, .seconds(5))
      }
    }
    listener.withLock { $0.task = task }
  }

  // MARK: Failures

  func map(_ error: any Error) -> any Error {
    if error is StoreError { return error }
    if let failed = error as? SentStatementFailed { return map(failed.error) }
    let place = options.endpoint.description
    let mapped: StoreError
    var metadata: Logger.Metadata = ["database": "\(place)"]
    if let refusal = error as? PostgresRefusal {
      metadata["sqlstate"] = "\(refusal.sqlState)"
      metadata["postgres-message"] = "\(refusal.message)"
      mapped = Self.serverError(state: refusal.sqlState)
    } else if let psql = error as? PSQLError {
      metadata["psql-code"] = "\(psql.code)"
      if psql.code == .server, let info = psql.serverInfo {
        let state = info[.sqlState] ?? "?"
        metadata["sqlstate"] = "\(state)"
        metadata["postgres-message"] = "\(info[.message] ?? "")"
        mapped = Self.serverError(state: state)
      } else {
        let reason =
          psql.code == .sslUnsupported
          ? "it does not offer TLS, which sslmode=\(options.endpoint.tls.rawValue) requires"
          : psql.underlying.map(Self.reason) ?? Self.reason(psql.code)
        mapped = StoreError(
          .unavailable, "cannot reach the PostgreSQL database at \(place) (\(reason)); nothing was saved, try again")
      }
    } else if error is PostgresOptions.Invalid {
      mapped = StoreError(.unavailable, "\(error)")
    } else if error is ChannelError || error is IOError || error is NIOConnectionError || error is NIOSSLError
      || error is PostgresProtocolFailure
    {
      mapped = StoreError(
        .unavailable,
        "cannot reach the PostgreSQL database at \(place) (\(Self.reason(error))); nothing was saved, try again")
    } else {
      // A transaction body's own error.
      return error
    }
    repeatedErrors.error("storage: \(mapped.message)", metadata: metadata, logger)
    return mapped
  }

  /// Why a connection failed, said for an operator ("connection refused (is PostgreSQL
  /// running and listening there?)") rather than in NIO's words.
  static func reason(_ error: any Error) -> String {
    switch error {
    case let failed as NIOConnectionError:
      if failed.connectionErrors.isEmpty, let dns = failed.dnsAError ?? failed.dnsAAAAError {
        return reason(dns)
      }
      return failed.connectionErrors.first.map { reason($0.error) } ?? "\(failed)"
    case let unknown as SocketAddressError.UnknownHost:
      return "cannot resolve the host name \(unknown.host) (\(unknown.errorDescription))"
    case let io as IOError:
      switch io.errnoCode {
      case ECONNREFUSED: return "connection refused (is PostgreSQL running and listening there?)"
      case ENETUNREACH, EHOSTUNREACH: return "no route to the host (network or host unreachable)"
      case ETIMEDOUT: return "no answer (connection timed out)"
      case ECONNRESET, EPIPE: return "the connection was reset"
      default: return "\(io)"
      }
    case let channel as ChannelError:
      if case .connectTimeout = channel {
        return "no answer within the connect timeout (storage.postgres.connect-timeout-ms, or connect_timeout)"
      }
      if case .ioOnClosedChannel = channel { return "the connection was closed" }
      return "\(channel)"
    default:
      return "\(error)"
    }
  }

  /// A PostgresNIO failure without an underlying error, said plainly.
  static func reason(_ code: PSQLError.Code) -> String {
    switch code {
    case .serverClosedConnection, .uncleanShutdown: "the server closed the connection"
    case .messageDecodingFailure, .unexpectedBackendMessage, .receivedUnencryptedDataAfterSSLRequest:
      "the server at that address does not answer as PostgreSQL does"
    default: "\(code)"
    }
  }

  private static func serverError(state: String) -> StoreError {
    switch state {
    case "57014":
      StoreError(.unavailable, "a statement ran past storage.postgres.statement-timeout-ms; nothing was saved")
    case "40001", "40P01", "55P03":
      StoreError(.busy, "PostgreSQL could not order this change with another (SQLSTATE \(state)); try again")
    case "53100":
      StoreError(.full, "the disk holding the PostgreSQL database is full (SQLSTATE 53100); nothing was saved")
    case "57P01", "57P02", "57P03":
      StoreError(.unavailable, "PostgreSQL is shutting down or starting up (SQLSTATE \(state)); try again")
    case "28P01", "28000":
      StoreError(.unavailable, "PostgreSQL refused the role of storage.postgres.url (SQLSTATE \(state))")
    case "42501":
      StoreError(
        .unavailable, "the server's PostgreSQL role lacks a privilege (SQLSTATE 42501): see docs/STORAGE.md")
    case "3D000":
      StoreError(.unavailable, "the database of storage.postgres.url does not exist (SQLSTATE 3D000)")
    default:
      StoreError(.unavailable, "PostgreSQL failed (SQLSTATE \(state)); nothing was saved")
    }
  }

  func isHealthy() async -> Bool {
    (try? await read(.none) { sql in try sql.value(Int64.self, "SELECT 1") }) == 1
  }
}

/// One writer connection and the serial queue its batches run on.
final class WriterLane: CommitWriter, @unchecked Sendable {
  private unowned let engine: PostgresEngine
  private let index: Int
  private let queue: DispatchQueue
  /// Touched only on `queue`.
  private var session: PostgresSession?

  init(engine: PostgresEngine, index: Int) {
    self.engine = engine
    self.index = index
    queue = DispatchQueue(label: "dms.storage.postgres.writer.\(index)")
  }

  func schedule(_ drain: @escaping @Sendable (any WriterSession) -> Void) {
    queue.async {
      if let session = self.session, !session.isClosed {
        drain(session)
        return
      }
      self.session = nil
      do {
        let session = try self.engine.connect(self.engine.options.endpoint)
        // The first writer takes the registry's, the shared section's and the
        // operators' batches, which take turns across instances; the others take
        // company-scoped ones, which lock their companies' rows.
        session.takesWriteLock = self.index == 0
        session.notification = self.engine.notification
        session.gathersWrites = !self.engine.options.singleCompanyStatements
        self.session = session
        drain(session)
      } catch {
        drain(UnreachableSession(error))
      }
    }
  }

  /// The connection, taken away (at shutdown).
  func takeSession() -> PostgresSession? {
    queue.sync {
      defer { session = nil }
      return session
    }
  }
}

extension Duration {
  /// Whole milliseconds.
  var milliseconds: Int64 {
    components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000
  }
}
