import DMSMessages
import DMSRPC
import DMSStubs
import Synchronization

/// `dms.rpc.v1.Health`: whether the server (or one of its services) is serving.
///
/// The server's own status is the "" service. Later areas add theirs (the storage's)
/// with `setStatus(_:for:)`; `shutDown()` sets everything NOT_SERVING and ends the
/// Watch calls.
public final class HealthService: Dms_Rpc_V1_Health.ServiceProtocol {
  public typealias Status = Dms_Rpc_V1_HealthCheckResponse.ServingStatus

  private struct State {
    var statuses: [String: Status]
    var watchers: [UInt64: (service: String, continuation: AsyncStream<Status>.Continuation)] = [:]
    var nextWatcher: UInt64 = 0
    var shutDown = false
  }

  private let state: Mutex<State>
  /// The "" service's status, mirrored out of `state` for lock-free reads.
  private let serverStatus = Atomic<Int>(Status.serving.rawValue)
  private let serverHasProbe: Bool
  private let probes: [String: @Sendable () async -> Bool]

  /// A health service reporting SERVING for the server and for `services`; a service
  /// with a probe (such as the storage's) is SERVING when its probe answers true.
  public init(services: [String] = [], probes: [String: @Sendable () async -> Bool] = [:]) {
    var statuses: [String: Status] = ["": .serving]
    for service in services + probes.keys { statuses[service] = .serving }
    state = Mutex(State(statuses: statuses))
    self.probes = probes
    self.serverHasProbe = probes[""] != nil
  }

  /// Sets the status of `service` ("" = the server) and tells its watchers.
  public func setStatus(_ status: Status, for service: String = "") {
    state.withLock { state in
      state.statuses[service] = status
      if service.isEmpty { serverStatus.store(status.rawValue, ordering: .relaxed) }
      for watcher in state.watchers.values where watcher.service == service {
        watcher.continuation.yield(status)
      }
    }
  }

  /// Sets every service NOT_SERVING and ends every Watch after telling it: the
  /// server is shutting down, and open Watch calls must not hold up the drain.
  public func shutDown() {
    state.withLock { state in
      for service in state.statuses.keys { state.statuses[service] = .notServing }
      serverStatus.store(Status.notServing.rawValue, ordering: .relaxed)
      for watcher in state.watchers.values {
        watcher.continuation.yield(.notServing)
        watcher.continuation.finish()
      }
      state.watchers.removeAll()
      state.shutDown = true
    }
  }

  private func status(of service: String) -> Status {
    state.withLock { $0.statuses[service] } ?? .serviceUnknown
  }

  /// Answers on the event loop unless the service has a probe to wait for.
  public func checkImmediately(
    request: Dms_Rpc_V1_HealthCheckRequest,
    context: ServerContext
  ) throws -> Dms_Rpc_V1_HealthCheckResponse? {
    // The server's own status (the check load balancers and clients make all day)
    // needs no dictionary lookups.
    if request.service.isEmpty, !serverHasProbe {
      var response = Dms_Rpc_V1_HealthCheckResponse()
      response.status = Status(rawValue: serverStatus.load(ordering: .relaxed)) ?? .unknown
      return response
    }
    guard probes[request.service] == nil else { return nil }
    let status = status(of: request.service)
    guard status != .serviceUnknown else {
      throw RPCError(code: .notFound, message: "no service named \"\(request.service)\"")
    }
    var response = Dms_Rpc_V1_HealthCheckResponse()
    response.status = status
    return response
  }

  public func check(
    request: Dms_Rpc_V1_HealthCheckRequest,
    context: ServerContext
  ) async throws -> Dms_Rpc_V1_HealthCheckResponse {
    if let answer = try checkImmediately(request: request, context: context) { return answer }
    // A service with a probe: SERVING only while the probe says so.
    var response = Dms_Rpc_V1_HealthCheckResponse()
    response.status = status(of: request.service)
    if response.status == .serving, let probe = probes[request.service], await !probe() {
      response.status = .notServing
    }
    return response
  }

  public func watch(
    request: Dms_Rpc_V1_HealthCheckRequest,
    responses: ResponseStreamWriter<Dms_Rpc_V1_HealthCheckResponse>,
    context: ServerContext
  ) async throws {
    let (stream, continuation) = AsyncStream.makeStream(of: Status.self, bufferingPolicy: .bufferingNewest(8))
    let id = state.withLock { state in
      let id = state.nextWatcher
      state.nextWatcher += 1
      continuation.yield(state.statuses[request.service] ?? .serviceUnknown)
      if state.shutDown {
        continuation.finish()
      } else {
        state.watchers[id] = (request.service, continuation)
      }
      return id
    }
    defer { _ = state.withLock { $0.watchers.removeValue(forKey: id) } }
    try await withTaskCancellationHandler {
      var last: Status?
      for await status in stream where status != last {
        last = status
        var response = Dms_Rpc_V1_HealthCheckResponse()
        response.status = status
        try await responses.send(response)
      }
      try Task.checkCancellation()
    } onCancel: {
      continuation.finish()
    }
  }
}
