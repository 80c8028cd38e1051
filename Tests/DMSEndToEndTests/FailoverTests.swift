import DMSClient
import DMSRPC
import DMSStubs
import Foundation
import Testing

/// The client library with several server addresses (instances of one deployment):
/// it connects to the first that answers, stays there, and moves on when that one
/// goes away.
@Suite("Client failover between servers")
struct FailoverTests {
  /// A port nothing listens on (bound, then closed).
  static func deadPort() async throws -> Int {
    let server = try await TestServer.start()
    let port = server.port
    try await server.stop()
    return port
  }

  @Test("a server that is down is skipped; when the one in use stops, calls go on on the next")
  func failover() async throws {
    let dead = try await Self.deadPort()
    let first = try await TestServer.start()
    let second = try await TestServer.start()
    let client = first.client {
      $0.port = dead
      $0.failoverServers = [.init(host: "127.0.0.1", port: first.port), .init(host: "127.0.0.1", port: second.port)]
      $0.credentials = nil
      $0.connectAttempts = 2
      $0.backoff = .init(initial: .milliseconds(10), maximum: .milliseconds(50))
    }
    #expect(client.server.port == dead, "before any connection: the first given")
    #expect(try await Dms_Rpc_V1_Health.Client(client).check().status == .serving)
    #expect(client.server.port == first.port, "the dead one skipped")
    try await first.stop()
    // The connection to the stopped server ends; the next call connects to the second.
    var answered = false
    for _ in 0..<20 where !answered {
      answered = (try? await Dms_Rpc_V1_Health.Client(client).check().status) == .serving
    }
    #expect(answered)
    #expect(client.server.port == second.port)
    try await second.stop()

    let started = ContinuousClock.now
    let refused = await rpcError { _ = try await Dms_Rpc_V1_Health.Client(client).check() }
    #expect(refused?.code == .unavailable)
    #expect(refused?.message.contains("cannot reach any of 127.0.0.1:\(dead), 127.0.0.1:\(first.port)") == true)
    #expect(ContinuousClock.now - started < .seconds(5), "two rounds of three refusals, not a hang")
    await client.close()
  }

  @Test("one server given: the errors are the server's own, as before")
  func single() async throws {
    let dead = try await Self.deadPort()
    let client = RPCClient(
      configuration: ClientConfiguration(host: "127.0.0.1", port: dead, connectAttempts: 1))
    let refused = await rpcError { _ = try await Dms_Rpc_V1_Health.Client(client).check() }
    #expect(refused?.code == .unavailable && refused?.message.hasPrefix("connection refused by 127.0.0.1:") == true)
    await client.close()
  }
}
