import DMSMessages
import DMSRPC
import DMSStubs
import NIOCore
import NIOPosix
import SwiftProtobuf
import Synchronization

/// A client of a DMS RPC server: one multiplexed connection, many concurrent calls.
///
/// Calls from any task share the connection; the client keeps to the server's
/// concurrency limit, connects on first use, reconnects with exponential backoff and
/// jitter after a failure, and retries calls a GOAWAY says the server did not run.
/// Cancelling the calling task cancels the call (CANCEL is sent).
///
/// ```swift
/// let client = RPCClient(configuration: ClientConfiguration(port: 7411))
/// let health = Dms_Rpc_V1_Health.Client(client)
/// let status = try await health.check().status
/// ```
public final class RPCClient: RPCCaller, Sendable {
  /// The client's configuration.
  public let configuration: ClientConfiguration
  private let state = Mutex(State.idle)
  /// The event loop every connection of this client runs on.
  public let eventLoop: any EventLoop
  /// Runs tasks on `eventLoop`: a task preferring it calls without thread hops
  /// (`withTaskExecutorPreference(client.taskExecutor) { ... }`). The clients on one
  /// event loop share it (`EventLoopTaskExecutor.shared(for:)`).
  public let taskExecutor: EventLoopTaskExecutor
  /// The session calls carry (`Bearer <token>`), when signed in.
  private let session: Mutex<SessionState>
  /// The index in `configuration.servers` of the server that answered last.
  private let preferredServer = Mutex(0)

  /// The server this client talks to: the one that answered last (the first before
  /// any has).
  public var server: ClientConfiguration.Server {
    let servers = configuration.servers
    return servers[preferredServer.withLock { $0 } % servers.count]
  }

  private enum SessionState {
    case none
    case signedIn(String)
    case signingIn(Task<String, any Error>)
  }

  private enum State {
    case idle
    case connecting(EventLoopFuture<ClientConnection>)
    case ready(ClientConnection)
    case closed
  }

  /// A client; it connects on the first call.
  public init(
    configuration: ClientConfiguration,
    eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
  ) {
    self.configuration = configuration
    self.eventLoop = eventLoopGroup.next()
    self.taskExecutor = EventLoopTaskExecutor.shared(for: eventLoop)
    if case .token(let token) = configuration.credentials {
      session = Mutex(.signedIn("Bearer \(token)"))
    } else {
      session = Mutex(.none)
    }
  }

  // MARK: Session

  /// The metadata every call carries: the user agent and, with credentials, the session
  /// (signing in first when there is none yet).
  private nonisolated(nonsending) func fixedMetadata(for method: MethodDescriptor, before deadline: NIODeadline?)
    async throws -> FixedMetadata
  {
    if let now = fixedMetadataNow(for: method) { return now }
    switch configuration.credentials {
    case .password, .system:
      return FixedMetadata(
        userAgent: configuration.userAgent, authorization: try await signIn(before: deadline))
    case .token, nil:
      return FixedMetadata(userAgent: configuration.userAgent, authorization: nil)
    }
  }

  /// Signs in with the credentials (a password, or a system's secret), once for every
  /// caller waiting at the time.
  private func signIn(before deadline: NIODeadline?) async throws -> String {
    let task = session.withLock { state -> Task<String, any Error> in
      switch state {
      case .signingIn(let task):
        return task
      case .signedIn(let authorization):
        return Task { authorization }
      case .none:
        let task = Task { [self] in
          let options = CallOptions(timeout: .seconds(30))
          let response: Dms_Auth_V1_LoginResponse
          switch configuration.credentials {
          case .system(let identifier, let secret):
            var request = Dms_Auth_V1_LoginSystemRequest()
            request.identifier = identifier
            request.secret = secret
            response = try await unary(Dms_Auth_V1_Auth.Method.loginSystem, request: request, options: options)
          case .password(let login, let password):
            var request = Dms_Auth_V1_LoginRequest()
            request.login = login
            request.password = password
            response = try await unary(Dms_Auth_V1_Auth.Method.login, request: request, options: options)
          case .token, nil:
            throw RPCError(code: .unauthenticated, message: "no credentials to sign in with")
          }
          return "Bearer \(response.token)"
        }
        state = .signingIn(task)
        return task
      }
    }
    do {
      let authorization = try await task.value
      session.withLock { state in
        if case .signingIn = state { state = .signedIn(authorization) }
      }
      return authorization
    } catch {
      session.withLock { state in
        if case .signingIn = state { state = .none }
      }
      throw error
    }
  }

  /// Forgets a session the server no longer knows, so the next call signs in again.
  /// Returns whether signing in again may help (the client has a password or a secret).
  private func sessionEnded(_ authorization: String?) -> Bool {
    guard let authorization else { return false }
    switch configuration.credentials {
    case .password, .system: break
    case .token, nil: return false
    }
    session.withLock { state in
      if case .signedIn(let current) = state, current == authorization { state = .none }
    }
    return true
  }

  /// The server's SETTINGS (connecting if need be). With a `timeout`, connecting
  /// that takes longer ends DEADLINE_EXCEEDED.
  public func serverSettings(timeout: Duration? = nil) async throws -> Dms_Rpc_V1_Settings {
    try await connection(before: timeout.map { NIODeadline.now() + TimeAmount($0) }).settings
  }

  /// Sends a PING and returns the round-trip time. With a `timeout`, connecting and
  /// the PING's ACK must come within it, or it ends DEADLINE_EXCEEDED.
  public func ping(timeout: Duration? = nil) async throws -> Duration {
    let deadline = timeout.map { NIODeadline.now() + TimeAmount($0) }
    let connection = try await connection(before: deadline)
    let clock = ContinuousClock()
    let start = clock.now
    try await connection.ping(deadline: deadline)
    return clock.now - start
  }

  /// Closes the connection; later calls fail with UNAVAILABLE.
  public func close() async {
    let previous = state.withLock { state -> State in
      let previous = state
      state = .closed
      return previous
    }
    switch previous {
    case .ready(let connection): await connection.close()
    case .connecting(let future):
      // Not waited for (a silent server holds it until the connect timeout): the
      // connection closes when the attempt ends.
      future.whenSuccess { connection in connection.channel.close(promise: nil) }
    case .idle, .closed: break
    }
  }

  public nonisolated(nonsending) func unary<Request: SwiftProtobuf.Message, Response: SwiftProtobuf.Message>(
    _ method: MethodDescriptor,
    request: Request,
    options: CallOptions
  ) async throws -> Response {
    let bytes = try request.wireEncoding()
    // The deadline counts from now: connecting, waiting for a free slot and retries
    // come out of it.
    let deadline = options.timeout.map { NIODeadline.now() + TimeAmount($0) }
    var attempt = 0
    var signedInAgain = false
    while true {
      let fixed = try await fixedMetadata(for: method, before: deadline)
      let connection = try await connection(before: deadline)
      do {
        let payload = try await connection.unary(
          method: method, request: bytes, options: options, deadline: deadline, fixed: fixed)
        do {
          return try Response(decoding: payload)
        } catch {
          throw RPCError(code: .internal, message: "the response does not decode as \(method.responseType)")
        }
      } catch let error as RetryableCallError {
        attempt += 1
        if attempt > configuration.maxRetries { throw error.rpcError }
      } catch let error as RPCError where error.code == .unauthenticated && !signedInAgain {
        // The session ended (expired, idle, the server lost it): sign in again, once.
        guard sessionEnded(fixed.authorization) else { throw error }
        signedInAgain = true
      }
    }
  }

  /// Makes one call of `method` per request, all at once on this client's
  /// connection: their CALL frames leave together (pipelined, one write when the
  /// server's concurrency limit allows) and the task waits once for all of them.
  /// For many small calls at a time (a screen's worth of settings, a load
  /// generator) this saves a suspension and a wake-up per call.
  ///
  /// Returns each call's result, in the order of `requests`; a call fails alone
  /// (its `RPCError`), as it would made by itself. Calls a GOAWAY says were not run
  /// are retried, as `unary` retries them. Throws only when no call could be made
  /// (no connection, a request that does not serialize).
  public nonisolated(nonsending) func unaryBatch<Request: SwiftProtobuf.Message, Response: SwiftProtobuf.Message>(
    _ method: MethodDescriptor,
    requests: [Request],
    options: CallOptions = CallOptions()
  ) async throws -> [Result<Response, RPCError>] {
    // Each request's encoding, held inline when small: no allocation per call.
    var payloads: [WireBytes] = []
    payloads.reserveCapacity(requests.count)
    for request in requests { payloads.append(try request.wireEncoding()) }
    var results: [Result<Response, RPCError>] = []
    results.reserveCapacity(requests.count)
    let deadline = options.timeout.map { NIODeadline.now() + TimeAmount($0) }
    // The first round sends every call; later rounds (rare), the calls a GOAWAY refused.
    var round = Array(payloads.indices)
    var attempt = 0
    while !round.isEmpty {
      let fixed = try await fixedMetadata(for: method, before: deadline)
      let outcome = try await connection(before: deadline).unaryBatch(
        method: method, requests: attempt == 0 ? payloads : round.map { payloads[$0] }, options: options,
        deadline: deadline, fixed: fixed)
      let retryable = attempt < configuration.maxRetries
      var refused: [Int] = []
      // Decoded here, in one loop, rather than in a function per call: generic code
      // that is not specialized looks up `Result<Response, RPCError>`'s metadata once
      // per function entry.
      for (position, index) in round.enumerated() {
        let result: Result<Response, RPCError>
        if let failure = outcome.failures.isEmpty ? nil : outcome.failures[position] {
          switch failure {
          case let error as RetryableCallError where retryable:
            refused.append(index)
            // Its place, filled when the retry answers.
            if attempt == 0 { results.append(.failure(error.rpcError)) }
            continue
          case let error as RetryableCallError:
            result = .failure(error.rpcError)
          case let error:
            result = .failure((error as? RPCError) ?? RPCError(code: .unavailable, message: "\(error)"))
          }
        } else {
          do {
            result = .success(try Response(decoding: outcome.payloads[position]))
          } catch {
            result = .failure(
              RPCError(code: .internal, message: "the response does not decode as \(method.responseType)"))
          }
        }
        if attempt == 0 { results.append(result) } else { results[index] = result }
      }
      attempt += 1
      round = refused
    }
    return results
  }

  public func serverStreaming<Request: SwiftProtobuf.Message, Response: SwiftProtobuf.Message>(
    _ method: MethodDescriptor,
    request: Request,
    options: CallOptions
  ) -> RPCResponseStream<Response> {
    let (stream, continuation) = RPCResponseStream<Response>.makeStream()
    let cancelHolder = CancelHolder()
    continuation.onTermination = { termination in
      if case .cancelled = termination { cancelHolder.cancel() }
    }
    let deliver: @Sendable (Result<ByteBuffer?, RPCError>) -> Void = { result in
      switch result {
      case .success(.some(let payload)):
        do {
          continuation.yield(try Response(decoding: payload))
        } catch {
          continuation.finish(
            throwing: RPCError(code: .internal, message: "a message does not decode as \(method.responseType)"))
          cancelHolder.cancel()
        }
      case .success(.none):
        continuation.finish()
      case .failure(let error):
        continuation.finish(throwing: error)
      }
    }
    let deadline = options.timeout.map { NIODeadline.now() + TimeAmount($0) }
    let begin: @Sendable (FixedMetadata) -> Void = { [self] fixed in
      let start: @Sendable (ClientConnection) throws -> Void = { connection in
        let bytes = try request.wireEncoding()
        let cancel = try connection.serverStreaming(
          method: method, request: bytes, options: options, deadline: deadline, fixed: fixed, deliver: deliver)
        cancelHolder.set(cancel)
      }
      if case .ready(let connection) = state.withLock({ $0 }), connection.isUsable {
        do { try start(connection) } catch { continuation.finish(throwing: error) }
      } else {
        connectFuture(before: deadline).whenComplete { result in
          do { try start(try result.get()) } catch { continuation.finish(throwing: error) }
        }
      }
    }
    if let fixed = fixedMetadataNow(for: method) {
      begin(fixed)
    } else {
      // Signing in first (a client with a password and no session yet).
      Task {
        do {
          begin(try await fixedMetadata(for: method, before: deadline))
        } catch {
          continuation.finish(throwing: error)
        }
      }
    }
    return stream
  }

  /// The fixed metadata when it needs no signing in; nil when it does. A session,
  /// once there is one, goes with every call (a public method's too: the server then
  /// knows who calls); a public method does not wait for signing in.
  private func fixedMetadataNow(for method: MethodDescriptor) -> FixedMetadata? {
    guard configuration.credentials != nil else {
      return FixedMetadata(userAgent: configuration.userAgent, authorization: nil)
    }
    let current = session.withLock { state -> String? in
      if case .signedIn(let authorization) = state { return authorization }
      return nil
    }
    if let current { return FixedMetadata(userAgent: configuration.userAgent, authorization: current) }
    if method.access == .public { return FixedMetadata(userAgent: configuration.userAgent, authorization: nil) }
    return nil
  }

  // MARK: Connection management

  private nonisolated(nonsending) func connection(before deadline: NIODeadline? = nil) async throws
    -> ClientConnection
  {
    if case .ready(let connection) = state.withLock({ $0 }), connection.isUsable {
      return connection
    }
    return try await connectFuture(before: deadline).get()
  }

  /// The connection, or DEADLINE_EXCEEDED when it is not made by `deadline` (the
  /// attempt goes on, for the calls that follow).
  private func connectFuture(before deadline: NIODeadline?) -> EventLoopFuture<ClientConnection> {
    let connecting = connectFuture()
    guard let deadline else { return connecting }
    let promise = eventLoop.makePromise(of: ClientConnection.self)
    let address = configuration.servers.map(\.description).joined(separator: ", ")
    let timer = eventLoop.scheduleTask(deadline: deadline) {
      promise.fail(
        RPCError(code: .deadlineExceeded, message: "the call's deadline passed while connecting to \(address)"))
    }
    connecting.whenComplete { result in
      timer.cancel()
      promise.completeWith(result)
    }
    return promise.futureResult
  }

  /// The current connection, or the one being made (one attempt series at a time).
  private func connectFuture() -> EventLoopFuture<ClientConnection> {
    let loop = eventLoop
    let promise = loop.makePromise(of: ClientConnection.self)
    let existing: EventLoopFuture<ClientConnection>? = state.withLock { state in
      switch state {
      case .ready(let connection) where connection.isUsable:
        return loop.makeSucceededFuture(connection)
      case .connecting(let future):
        return future
      case .closed:
        return loop.makeFailedFuture(RPCError(code: .unavailable, message: "the client is closed"))
      case .idle, .ready:
        state = .connecting(promise.futureResult)
        return nil
      }
    }
    if let existing {
      promise.completeWith(existing)  // unused, but a promise must be completed
      return existing
    }
    promise.completeWithTask { [self] in
      try await self.connectWithBackoff()
    }
    promise.futureResult.whenComplete { [self] result in
      self.state.withLock { state in
        guard case .connecting = state else { return }  // closed meanwhile
        switch result {
        case .success(let connection): state = .ready(connection)
        case .failure: state = .idle
        }
      }
    }
    return promise.futureResult
  }

  /// Connects to the first server that answers, starting with the one that answered
  /// last: each round tries every server once, and rounds are `connectAttempts` apart
  /// by the backoff. A final answer from a server (no such host, not a DMS RPC
  /// server, an untrusted certificate) drops it from the rounds. When none answers:
  /// with one server its own error, as it always was; with several, UNAVAILABLE
  /// naming each one's reason.
  private func connectWithBackoff() async throws -> ClientConnection {
    let servers = configuration.servers
    let first = preferredServer.withLock { $0 } % servers.count
    let order = Array(servers.indices[first...]) + Array(servers.indices[..<first])
    // Each server's latest failure; `final` holds those that are not worth retrying.
    var failures: [Int: ConnectFailure] = [:]
    var final: Set<Int> = []
    for attempt in 0..<max(1, configuration.connectAttempts) {
      if attempt > 0 {
        try await Task.sleep(for: configuration.backoff.delay(beforeAttempt: attempt))
      }
      for index in order where !final.contains(index) {
        var one = configuration
        one.host = servers[index].host
        one.port = servers[index].port
        one.failoverServers = []
        do {
          let connection = try await ClientConnection.connect(configuration: one, executor: taskExecutor)
          preferredServer.withLock { $0 = index }
          return connection
        } catch let failure as ConnectFailure {
          failures[index] = failure
          if !failure.retryable { final.insert(index) }
        }
      }
      if final.count == servers.count { break }
    }
    guard servers.count > 1 else {
      throw failures[0]?.rpcError ?? RPCError(code: .unavailable, message: "cannot reach \(servers[0])")
    }
    throw RPCError(
      code: .unavailable,
      message: "cannot reach any of \(servers.map(\.description).joined(separator: ", ")): "
        + order.compactMap { failures[$0]?.description }.joined(separator: "; "))
  }
}

/// Holds a streaming call's cancel function, which arrives after the stream exists.
private final class CancelHolder: Sendable {
  private let state = Mutex<(cancel: (@Sendable () -> Void)?, cancelled: Bool)>((nil, false))

  func set(_ cancel: @escaping @Sendable () -> Void) {
    let runNow = state.withLock { state -> Bool in
      state.cancel = cancel
      return state.cancelled
    }
    if runNow { cancel() }
  }

  func cancel() {
    let cancel = state.withLock { state -> (@Sendable () -> Void)? in
      state.cancelled = true
      return state.cancel
    }
    cancel?()
  }
}

extension SwiftProtobuf.Message {
  /// Decodes a response in place from the frame's bytes. The closure returns nothing,
  /// so `withUnsafeReadableBytes` is specialized even where `Self` is not known at
  /// compile time (a generic caller pays no metadata lookups for it).
  init(decoding payload: ByteBuffer) throws {
    self.init()
    try payload.withUnsafeReadableBytes { (bytes: UnsafeRawBufferPointer) throws -> Void in
      try self.merge(serializedBytes: bytes.bytes)
    }
  }
}
