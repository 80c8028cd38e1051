import DMSClient
import DMSRPC
import DMSStubs
import Foundation
import SwiftProtobuf
import Testing

/// The client against servers that are not there, not DMS RPC, or slow: every
/// failure is an `RPCError` saying what happened, within the call's deadline.
@Suite("Client: connecting")
struct ClientConnectingTests {
  /// The error a Health check through a fresh client of `port` ends with, and how long
  /// it took.
  func checkFailure(
    host: String = "127.0.0.1", port: Int, timeout: Duration? = nil,
    _ configure: (inout ClientConfiguration) -> Void = { _ in }
  ) async -> (error: RPCError?, took: Duration) {
    var configuration = ClientConfiguration(host: host, port: port, connectAttempts: 1)
    configure(&configuration)
    let client = RPCClient(configuration: configuration)
    let clock = ContinuousClock()
    let start = clock.now
    var caught: RPCError?
    do {
      _ = try await Dms_Rpc_V1_Health.Client(client).check(options: CallOptions(timeout: timeout))
    } catch {
      caught = error as? RPCError
    }
    let took = clock.now - start
    await client.close()
    return (caught, took)
  }

  @Test("a host name that does not resolve: UNAVAILABLE naming the host, no retries")
  func unresolvable() async throws {
    // A retry would first wait 60 s: the time tells retried from not, however slow the
    // machine's resolver is under load (it has taken 10 s to say no while the whole
    // suite ran), and the deadline ends a retrying call with DEADLINE_EXCEEDED instead.
    let (error, took) = await checkFailure(host: "nosuchhost.invalid", port: 7411, timeout: .seconds(50)) {
      $0.connectAttempts = 5
      $0.backoff = ClientConfiguration.Backoff(initial: .seconds(60), maximum: .seconds(60), jitter: 0)
    }
    #expect(error?.code == .unavailable)
    #expect(
      error?.message.hasPrefix("cannot resolve the host name nosuchhost.invalid") == true,
      "\(String(describing: error))")
    #expect(took < .seconds(40), "a final answer is not retried")
  }

  @Test("a refused connection says so, without library internals")
  func refused() async throws {
    // Port 1: nothing listens there. (A port freed by a stopped server can be taken at
    // once by another test's server: the suite runs in parallel.)
    let port = 1
    let (error, _) = await checkFailure(port: port)
    #expect(error?.code == .unavailable)
    #expect(error?.message == "connection refused by 127.0.0.1:\(port) (is the server running?)")
  }

  @Test("a peer answering HTTP is reported as not a DMS RPC server, at once")
  func http() async throws {
    let peer = try await FakePeer.start(.answer(Array("HTTP/1.0 400 Bad Request\r\nServer: x\r\n\r\n".utf8)))
    // A retry would first wait 60 s: the time tells retried from not however loaded the
    // machine is (CI has taken 10 s to answer this once while the whole suite ran).
    let (error, took) = await checkFailure(port: peer.port, timeout: .seconds(50)) {
      $0.connectAttempts = 3
      $0.backoff = ClientConfiguration.Backoff(initial: .seconds(60), maximum: .seconds(60), jitter: 0)
    }
    #expect(error?.code == .unavailable)
    #expect(error?.message == "not a DMS RPC server: 127.0.0.1:\(peer.port) answered \"HTTP/1.0 400 Bad Request\"")
    #expect(took < .seconds(40), "a final answer is not retried")
    await peer.stop()
  }

  @Test("a peer answering other bytes, or TLS, is reported with what it sent")
  func garbage() async throws {
    let peer = try await FakePeer.start(.answer([1, 2, 3, 4, 5, 6, 7, 8, 9]))
    let (error, _) = await checkFailure(port: peer.port)
    #expect(
      error?.message
        == "not a DMS RPC server: 127.0.0.1:\(peer.port) answered bytes 01 02 03 04 05 06 07 08 where a preface belongs"
    )
    await peer.stop()
    let tls = try await FakePeer.start(.answer([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x46, 0x00]))
    let (tlsError, _) = await checkFailure(port: tls.port)
    #expect(tlsError?.message.contains("answered with TLS (connect with --tls)") == true)
    await tls.stop()
  }

  @Test("a server of another protocol version is named with its version")
  func otherVersion() async throws {
    let peer = try await FakePeer.start(.answer(Array("DMSRPC".utf8) + [0, 2]))
    let (error, _) = await checkFailure(port: peer.port)
    #expect(error?.code == .unimplemented)
    #expect(error?.message.contains("speaks DMS RPC version 2") == true)
    await peer.stop()
  }

  @Test("a listener that never answers: the call's deadline covers connecting")
  func silentWithDeadline() async throws {
    let peer = try await FakePeer.start(.silent)
    let (error, took) = await checkFailure(port: peer.port, timeout: .milliseconds(300)) {
      $0.connectTimeout = .seconds(30)
    }
    #expect(error?.code == .deadlineExceeded)
    #expect(error?.message.contains("while connecting to 127.0.0.1:\(peer.port)") == true)
    // Well below the 30 s connect timeout; loose enough for a loaded machine (the whole
    // suite runs at once, twice as much with PostgreSQL's tests).
    #expect(took < .seconds(15))
    await peer.stop()
  }

  @Test("a listener that never answers: the connect timeout covers the preface and SETTINGS")
  func silentWithConnectTimeout() async throws {
    let peer = try await FakePeer.start(.silent)
    // 5 s: time enough for the TCP connection itself on a loaded machine (1 s was not,
    // once, with the whole suite running), so that the timeout that fires is the
    // preface's.
    let (error, took) = await checkFailure(port: peer.port) { $0.connectTimeout = .seconds(5) }
    #expect(error?.code == .unavailable)
    #expect(
      error?.message.contains("sent no DMS RPC preface and SETTINGS within 5 s") == true, "\(String(describing: error))"
    )
    // Without the timeout it would wait forever; loose enough for a loaded machine.
    #expect(took < .seconds(30))
    await peer.stop()
  }

  @Test("a peer that closes at once: UNAVAILABLE, said so")
  func closesAtOnce() async throws {
    let peer = try await FakePeer.start(.close)
    let (error, _) = await checkFailure(port: peer.port)
    #expect(error?.code == .unavailable)
    #expect(
      error?.message.contains("closed the connection before the DMS RPC handshake ended") == true,
      "\(String(describing: error))")
    await peer.stop()
  }
}

/// When a call's deadline and cancellation take effect on the client.
@Suite("Client: deadlines and cancellation before sending")
struct ClientCallLifecycleTests {
  @Test("a call queued behind the server's concurrency limit ends at its deadline, never sent")
  func queuedDeadline() async throws {
    try await withTestServer({ $0.limits.maxConcurrentCalls = 1 }) { server async throws in
      let client = server.client()
      _ = try await client.serverSettings()
      let occupant = Task {
        let _: Google_Protobuf_Empty = try await client.unary(
          TestService.block, request: Google_Protobuf_StringValue("occupant"), options: CallOptions())
      }
      try await eventually { server.probe.startedTags.contains("occupant") }
      let clock = ContinuousClock()
      let start = clock.now
      await #expect {
        let _: Google_Protobuf_Empty = try await client.unary(
          TestService.block, request: Google_Protobuf_StringValue("queued"),
          options: CallOptions(timeout: .milliseconds(200)))
      } throws: { error in
        (error as? RPCError)?.code == .deadlineExceeded
      }
      // The occupant blocks until cancelled: any bound tells "at its deadline" from "never".
      #expect(clock.now - start < .seconds(15))
      occupant.cancel()
      _ = await occupant.result
      // The slot is free again, and the queued call was dropped, not sent late.
      #expect(try await Dms_Rpc_V1_Health.Client(client).check().status == .serving)
      try await Task.sleep(for: .milliseconds(100))
      #expect(!server.probe.startedTags.contains("queued"))
      await client.close()
    }
  }

  @Test(
    "a call whose task is already cancelled ends CANCELLED and is never sent",
    arguments: [false, true])
  func cancelledBeforeSending(onClientExecutor: Bool) async throws {
    try await withTestServer { server async throws in
      let client = server.client()
      _ = try await client.serverSettings()
      let tag = "pre-cancelled-\(onClientExecutor)"
      let call: @Sendable () async throws -> Void = {
        withUnsafeCurrentTask { $0?.cancel() }
        let _: Google_Protobuf_Empty = try await client.unary(
          TestService.block, request: Google_Protobuf_StringValue(tag), options: CallOptions())
      }
      let task =
        onClientExecutor
        ? Task(executorPreference: client.taskExecutor) { try await call() } : Task { try await call() }
      await #expect {
        try await task.value
      } throws: { error in
        (error as? RPCError)?.code == .cancelled
      }
      let batchTask = Task {
        withUnsafeCurrentTask { $0?.cancel() }
        let results: [Result<Google_Protobuf_Empty, RPCError>] = try await client.unaryBatch(
          TestService.block, requests: [Google_Protobuf_StringValue(tag + "-batch")])
        return results
      }
      let results = try await batchTask.value
      #expect(results.count == 1)
      if case .failure(let error) = results[0] { #expect(error.code == .cancelled) } else { Issue.record("ran") }
      #expect(try await Dms_Rpc_V1_Health.Client(client).check().status == .serving)
      try await Task.sleep(for: .milliseconds(100))
      #expect(!server.probe.startedTags.contains { $0.hasPrefix(tag) })
      await client.close()
    }
  }
}
