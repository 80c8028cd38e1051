import DMSClient
import DMSRPC
import DMSStubs
import Foundation
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// The client library with several server addresses (instances of one deployment):
/// it connects to the first that answers, stays there, and moves on when that one
/// goes away.
@Suite("Client failover between servers")
struct FailoverTests {
  /// A port that refuses connections for as long as it lives: bound, never listened
  /// on, so no other test's server can be given it meanwhile (a port freed by a
  /// stopped server can be, and then the "dead" server answers).
  final class RefusingPort {
    let fd: Int32
    let port: Int

    init() throws {
      let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
      var address = sockaddr_in()
      address.sin_family = sa_family_t(AF_INET)
      address.sin_port = 0
      address.sin_addr.s_addr = inet_addr("127.0.0.1")
      var length = socklen_t(MemoryLayout<sockaddr_in>.size)
      let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
          bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0
        }
      }
      guard bound else {
        close(fd)
        throw NonReadingClient.POSIXFailure(call: "bind")
      }
      self.fd = fd
      port = Int(UInt16(bigEndian: address.sin_port))
    }

    deinit { close(fd) }
  }

  @Test("a server that is down is skipped; when the one in use stops, calls go on on the next")
  func failover() async throws {
    let refusing = try RefusingPort()
    let dead = refusing.port
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
    #expect(ContinuousClock.now - started < .seconds(15), "two rounds of three refusals, not a hang")
    await client.close()
    withExtendedLifetime(refusing) {}
  }

  @Test("one server given: the errors are the server's own, as before")
  func single() async throws {
    let refusing = try RefusingPort()
    let dead = refusing.port
    let client = RPCClient(
      configuration: ClientConfiguration(host: "127.0.0.1", port: dead, connectAttempts: 1))
    let refused = await rpcError { _ = try await Dms_Rpc_V1_Health.Client(client).check() }
    #expect(refused?.code == .unavailable)
    #expect(refused?.message == "connection refused by 127.0.0.1:\(dead) (is the server running?)")
    await client.close()
    withExtendedLifetime(refusing) {}
  }
}
