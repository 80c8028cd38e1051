import DMSClient
import DMSMessages
import DMSRPC
import DMSStubs
import DMSWire
import SwiftProtobuf
import Testing

/// Graceful shutdown: GOAWAY, open calls finish, new calls refused.
@Suite("Graceful shutdown")
struct ShutdownTests {
  @Test("an open call finishes, a new call is refused, and the server stops")
  func drains() async throws {
    // A grace period well past the open call, which runs long enough (10 s) that the
    // connection is still open for call 2 on a loaded machine (the suites run in
    // parallel, some of them spawning processes; 3 s was once too short in CI).
    let server = try await TestServer.start { $0.timeouts.shutdownGrace = .seconds(30) }
    let (connection, _) = try await RawConnection.open(port: server.port)
    var sleep = Google_Protobuf_UInt32Value()
    sleep.value = 10_000
    try await connection.send(RawFrame.call(id: 1, method: TestService.sleep.fullName, request: sleep))
    // Wait for the handler to start (not a fixed time: tests run in parallel, and a
    // loaded machine can take longer than any guess).
    while !server.probe.startedTags.contains("sleep 10000") { try await Task.sleep(for: .milliseconds(5)) }

    server.server.beginGracefulShutdown()
    let goAwayFrame = try await connection.readFrame()
    #expect(goAwayFrame.type == .goAway)
    let goAway = try Dms_Rpc_V1_GoAway(serializedBytes: Array(goAwayFrame.meta.readableBytesView))
    #expect(goAway.lastCallID == 1)
    #expect(goAway.code == StatusCode.unavailable.rawValue)

    try await connection.send(RawFrame.call(id: 2, method: Dms_Rpc_V1_Health.Method.check.fullName, payload: []))
    let refused = try await connection.readFrame()
    #expect(refused.callID == 2)
    #expect(try RawFrame.status(of: refused).code == StatusCode.unavailable.rawValue)

    // The call's own 10 s, and room for a loaded machine's late timers (readFrame's
    // default 10 s raced the call's end).
    let finished = try await connection.readFrame(timeout: .seconds(40))
    #expect(finished.callID == 1)
    #expect(try RawFrame.status(of: finished).code == 0, "the open call ran to completion")
    _ = try await connection.readUntilClosed()
    try await server.waitUntilStopped()

    // New connections are refused once the server has stopped listening.
    await #expect(throws: (any Error).self) { _ = try await RawConnection.connect(port: server.port) }
  }

  @Test("on shutdown Health/Watch reports NOT_SERVING and ends, without holding up the drain")
  func watchEndsOnShutdown() async throws {
    // A 60 s grace period: the stream must end well inside it however loaded the machine.
    let server = try await TestServer.start { $0.timeouts.shutdownGrace = .seconds(60) }
    let client = server.client()
    var iterator = Dms_Rpc_V1_Health.Client(client).watch().makeAsyncIterator()
    #expect(try await iterator.next()?.status == .serving)
    let clock = ContinuousClock()
    let started = clock.now
    server.server.beginGracefulShutdown()
    #expect(try await iterator.next()?.status == .notServing)
    #expect(try await iterator.next() == nil, "the stream ends OK")
    try await server.waitUntilStopped()
    #expect(clock.now - started < .seconds(40), "not held for the 60 s grace period")
    await client.close()
  }

  @Test("calls still open when the grace period ends are cut off")
  func graceExpires() async throws {
    let server = try await TestServer.start { $0.timeouts.shutdownGrace = .milliseconds(200) }
    let (connection, _) = try await RawConnection.open(port: server.port)
    var block = Google_Protobuf_StringValue()
    block.value = "grace"
    try await connection.send(RawFrame.call(id: 1, method: TestService.block.fullName, request: block))
    try await eventually { server.probe.startedTags.contains("grace") }
    let clock = ContinuousClock()
    let started = clock.now
    server.server.beginGracefulShutdown()
    _ = try await connection.readUntilClosed()
    try await server.waitUntilStopped()
    // The handler never ends by itself: without the cut-off this would not return. The
    // bound leaves room for a loaded machine (6.3 s was seen under the whole suite).
    #expect(clock.now - started < .seconds(20))
    try await eventually { server.probe.cancelledTags.contains("grace") }
  }

  @Test("a batch cut off by the grace period: its finished call keeps its answer, the open one fails UNAVAILABLE")
  func batchCutOff() async throws {
    // A grace long enough for the 1 ms call to finish on a loaded machine (the whole
    // suite runs in parallel), far shorter than the 5 s one.
    let server = try await TestServer.start { $0.timeouts.shutdownGrace = .seconds(1) }
    let client = server.client { $0.connectAttempts = 1 }
    let requests: [Google_Protobuf_UInt32Value] = [1, 5_000]
    async let results: [Result<Google_Protobuf_Empty, RPCError>] = client.unaryBatch(
      TestService.sleep, requests: requests)
    try await eventually { server.probe.startedTags.contains("sleep 5000") }
    server.server.beginGracefulShutdown()
    let outcome = try await results
    #expect(outcome.count == 2)
    _ = try outcome[0].get()
    guard case .failure(let error) = outcome[1] else {
      Issue.record("the open call should have failed")
      return
    }
    // The GOAWAY counted it as run (it is not retried); the connection then closed.
    #expect(error.code == .unavailable)
    try await server.waitUntilStopped()
    await client.close()
  }

  /// A second server on the port a shutting-down one listened on: the first stops
  /// listening at once, but closing its socket takes a moment.
  private func startAgain(port: Int) async throws -> TestServer {
    // One data folder for every attempt: on PostgreSQL each new folder is a new
    // database, too slow to make while the client waits.
    let folder = TestServer.temporaryDirectory()
    for _ in 0..<200 {
      if let server = try? await TestServer.start(port: port, dataDirectory: folder) { return server }
      try await Task.sleep(for: .milliseconds(10))
    }
    return try await TestServer.start(port: port, dataDirectory: folder)
  }

  /// A server that allows one call at a time, and a client of it that keeps trying to
  /// reconnect (to a second server on the same port).
  private func oneCallAtATime() async throws -> (TestServer, RPCClient) {
    let server = try await TestServer.start { $0.limits.maxConcurrentCalls = 1 }
    let client = server.client {
      $0.connectAttempts = 50; $0.backoff.initial = .milliseconds(20)
    }
    #expect(try await client.serverSettings().maxConcurrentCalls == 1)
    return (server, client)
  }

  @Test("a call a GOAWAY says was not run is retried on a new connection; the open one finishes")
  func clientRetriesAfterGoAway() async throws {
    let (first, client) = try await oneCallAtATime()
    let port = first.port

    // Long enough that, on a loaded machine, the queued call cannot be let through
    // (and answered NOT_SERVING by the first server, shutting down) before the
    // shutdown begins.
    var sleep = Google_Protobuf_UInt32Value()
    sleep.value = 2_000
    async let running: Google_Protobuf_Empty = client.unary(TestService.sleep, request: sleep, options: CallOptions())
    while !first.probe.startedTags.contains("sleep 2000") { try await Task.sleep(for: .milliseconds(5)) }
    // Waits in the client's queue: the server allows one call at a time.
    async let queued = Dms_Rpc_V1_Health.Client(client).check()
    try await Task.sleep(for: .milliseconds(50))

    first.server.beginGracefulShutdown()
    let secondServer = try await startAgain(port: port)
    #expect(try await queued.status == .serving, "retried against the second server")
    _ = try await running  // finished on the first server during its drain
    try await first.waitUntilStopped()
    await client.close()
    try await secondServer.stop()
  }

  @Test("a batch's calls a GOAWAY says were not run are retried on a new connection; the open one finishes")
  func batchRetriesAfterGoAway() async throws {
    let (first, client) = try await oneCallAtATime()
    let port = first.port

    // The server allows one call at a time: the first runs, the other two wait in the
    // client's queue. The first lasts long enough (2 s) for the GOAWAY to reach the
    // client before it ends, on a loaded machine too (the suite runs in parallel).
    let requests: [Google_Protobuf_UInt32Value] = [2_001, 402, 403]
    async let results: [Result<Google_Protobuf_Empty, RPCError>] = client.unaryBatch(
      TestService.sleep, requests: requests)
    while !first.probe.startedTags.contains("sleep 2001") { try await Task.sleep(for: .milliseconds(5)) }

    first.server.beginGracefulShutdown()
    let secondServer = try await startAgain(port: port)
    let outcome = try await results
    #expect(outcome.count == 3)
    for result in outcome { _ = try result.get() }
    #expect(first.probe.startedTags.filter { $0.hasPrefix("sleep") } == ["sleep 2001"], "ran once, on the first server")
    #expect(Set(secondServer.probe.startedTags) == ["sleep 402", "sleep 403"], "retried on the second")
    try await first.waitUntilStopped()
    await client.close()
    try await secondServer.stop()
  }
}
