import DMSClient
import DMSMessages
import DMSRPC
import DMSStubs
import Foundation
import SwiftProtobuf
import Testing

/// The client library against a real server.
@Suite("Client library")
struct ClientTests {
  @Test("1,000 concurrent calls from many tasks share one connection and all succeed")
  func concurrentCalls() async throws {
    try await withTestServer { server async throws in
      let client = server.client()
      try await withThrowingTaskGroup(of: Void.self) { group in
        for index in 0..<1000 {
          group.addTask {
            var request = Google_Protobuf_BytesValue()
            request.value = Data("call-\(index)".utf8)
            let response: Google_Protobuf_BytesValue = try await client.unary(
              TestService.echo, request: request, options: CallOptions())
            #expect(response.value == request.value)
          }
        }
        try await group.waitForAll()
      }
      await client.close()
    }
  }

  @Test("calls from tasks preferring the client's executor run on its event loop, without hops")
  func taskExecutorPreference() async throws {
    try await withTestServer { server async throws in
      let client = server.client()
      try await withThrowingTaskGroup(of: Bool.self) { group in
        for _ in 0..<8 {
          group.addTask(executorPreference: client.taskExecutor) {
            for _ in 0..<100 {
              _ = try await Dms_Rpc_V1_Health.Client(client).check()
              guard client.eventLoop.inEventLoop else { return false }
            }
            return true
          }
        }
        for try await onLoop in group { #expect(onLoop, "resumed on the connection's event loop") }
      }
      await client.close()
    }
  }

  @Test("the client keeps to the server's concurrency limit: no spurious failures")
  func keepsToLimit() async throws {
    try await withTestServer({ $0.limits.maxConcurrentCalls = 2 }) { server async throws in
      let client = server.client()
      #expect(try await client.serverSettings().maxConcurrentCalls == 2)
      let clock = ContinuousClock()
      let started = clock.now
      try await withThrowingTaskGroup(of: Void.self) { group in
        for _ in 0..<10 {
          group.addTask {
            var request = Google_Protobuf_UInt32Value()
            request.value = 50
            let _: Google_Protobuf_Empty = try await client.unary(
              TestService.sleep, request: request, options: CallOptions())
          }
        }
        try await group.waitForAll()
      }
      // Ten 50 ms calls, two at a time: at least five rounds.
      #expect(clock.now - started >= .milliseconds(250))
      await client.close()
    }
  }

  @Test("a failed call throws RPCError with code, message, violations and the request id")
  func errorCarriesViolations() async throws {
    try await withTestServer { server async throws in
      let client = server.client()
      var request = Google_Protobuf_StringValue()
      request.value = "x"
      do {
        let _: Google_Protobuf_Empty = try await client.unary(
          TestService.reject, request: request, options: CallOptions(metadata: ["request-id": "abc"]))
        Issue.record("the call should fail")
      } catch let error as RPCError {
        #expect(error.code == .invalidArgument)
        #expect(error.message == "the request breaks a rule")
        #expect(error.violations == [FieldViolation(field: "value", rule: "TEST-1", description: "must not be x")])
        #expect(error.trailers["request-id"] == "abc")
      }
      await client.close()
    }
  }

  @Test("an unexpected handler error reaches the client as INTERNAL without its details")
  func internalErrorHidesDetails() async throws {
    try await withTestServer { server async throws in
      let client = server.client()
      do {
        let _: Google_Protobuf_Empty = try await client.unary(
          TestService.fail, request: Google_Protobuf_Empty(), options: CallOptions())
        Issue.record("the call should fail")
      } catch let error as RPCError {
        #expect(error.code == .internal)
        #expect(!error.message.contains("secret"))
      }
      await client.close()
    }
  }

  @Test("a response over the frame limit ends RESOURCE_EXHAUSTED; one under it arrives whole")
  func oversizedResponse() async throws {
    try await withTestServer({ $0.limits.maxFrameSize = 64 << 10 }) { server async throws in
      let client = server.client()
      var request = Google_Protobuf_UInt32Value()
      request.value = 40 << 10
      let fits: Google_Protobuf_BytesValue = try await client.unary(
        TestService.big, request: request, options: CallOptions())
      #expect(fits.value.count == 40 << 10)
      request.value = 100 << 10
      await #expect {
        let _: Google_Protobuf_BytesValue = try await client.unary(
          TestService.big, request: request, options: CallOptions())
      } throws: { error in
        (error as? RPCError)?.code == .resourceExhausted
      }
      #expect(try await Dms_Rpc_V1_Health.Client(client).check().status == .serving)
      await client.close()
    }
  }

  @Test("an error with more violations than a frame's meta holds arrives trimmed, saying so")
  func manyViolations() async throws {
    try await withTestServer { server async throws in
      let client = server.client()
      var request = Google_Protobuf_UInt32Value()
      request.value = 10_000
      do {
        let _: Google_Protobuf_Empty = try await client.unary(
          TestService.manyViolations, request: request, options: CallOptions())
        Issue.record("the call should fail")
      } catch let error as RPCError {
        #expect(error.code == .invalidArgument)
        #expect(!error.violations.isEmpty && error.violations.count < 10_000)
        #expect(error.message.contains("more violations not shown"))
      }
      await client.close()
    }
  }

  @Test("a per-call deadline ends the call DEADLINE_EXCEEDED and stops the handler")
  func deadline() async throws {
    try await withTestServer { server async throws in
      let client = server.client()
      // Connected first: the deadline covers connecting too, and this test is about the
      // call on the server.
      _ = try await client.serverSettings()
      var request = Google_Protobuf_StringValue()
      request.value = "client-deadline"
      await #expect {
        let _: Google_Protobuf_Empty = try await client.unary(
          TestService.block, request: request, options: CallOptions(timeout: .milliseconds(100)))
      } throws: { error in
        (error as? RPCError)?.code == .deadlineExceeded
      }
      try await eventually { server.probe.cancelledTags.contains("client-deadline") }
      await client.close()
    }
  }

  @Test("cancelling the calling task sends CANCEL: the handler stops")
  func taskCancellation() async throws {
    try await withTestServer { server async throws in
      let client = server.client()
      let task = Task {
        var request = Google_Protobuf_StringValue()
        request.value = "task-cancel"
        let _: Google_Protobuf_Empty = try await client.unary(
          TestService.block, request: request, options: CallOptions())
      }
      try await eventually { server.probe.startedTags.contains("task-cancel") }
      task.cancel()
      await #expect {
        try await task.value
      } throws: { error in
        (error as? RPCError)?.code == .cancelled
      }
      try await eventually { server.probe.cancelledTags.contains("task-cancel") }
      // The connection still serves.
      #expect(try await Dms_Rpc_V1_Health.Client(client).check().status == .serving)
      await client.close()
    }
  }

  @Test("dropping a server stream cancels the call on the server")
  func streamCancellation() async throws {
    try await withTestServer { server async throws in
      let client = server.client()
      let task = Task {
        for try await _ in Dms_Rpc_V1_Health.Client(client).watch() {}
      }
      try await Task.sleep(for: .milliseconds(100))
      task.cancel()
      _ = await task.result
      #expect(try await Dms_Rpc_V1_Health.Client(client).check().status == .serving)
      await client.close()
    }
  }

  @Test("PING measures a round trip")
  func ping() async throws {
    try await withTestServer { server async throws in
      let client = server.client()
      let rtt = try await client.ping()
      #expect(rtt > .zero && rtt < .seconds(15))
      await client.close()
    }
  }

  @Test("the client reconnects with backoff when the server comes back")
  func reconnect() async throws {
    let first = try await TestServer.start()
    let port = first.port
    let client = first.client {
      $0.connectAttempts = 20; $0.backoff.initial = .milliseconds(20)
    }
    let health = Dms_Rpc_V1_Health.Client(client)
    #expect(try await health.check().status == .serving)
    try await first.stop()

    let second = try await TestServer.start(port: port)
    #expect(try await health.check().status == .serving)
    await client.close()
    try await second.stop()
  }

  @Test("with no server, a call fails UNAVAILABLE after its connection attempts")
  func unavailable() async throws {
    // A port that refuses for the test's length (a stopped server's could be given to
    // another test's server meanwhile).
    let refusing = try FailoverTests.RefusingPort()
    let port = refusing.port
    let client = RPCClient(
      configuration: ClientConfiguration(port: port, backoff: .init(initial: .milliseconds(5)), connectAttempts: 3))
    await #expect {
      _ = try await Dms_Rpc_V1_Health.Client(client).check()
    } throws: { error in
      (error as? RPCError)?.code == .unavailable
    }
    await client.close()
    withExtendedLifetime(refusing) {}
  }

  @Test("calls alternating methods, metadata and deadlines each carry their own meta")
  func metaPerCall() async throws {
    try await withTestServer { server async throws in
      let client = server.client()
      for round in 0..<20 {
        let echo: Google_Protobuf_BytesValue = try await client.unary(
          TestService.echo, request: Google_Protobuf_BytesValue(Data([UInt8(round)])), options: CallOptions())
        #expect(echo.value == Data([UInt8(round)]))
        let options =
          round % 3 == 0
          ? CallOptions(metadata: ["request-id": "mine-\(round)"])
          : round % 3 == 1 ? CallOptions(timeout: .seconds(5)) : CallOptions()
        do {
          let _: Google_Protobuf_StringValue = try await client.unary(
            TestService.whereRun, request: Google_Protobuf_StringValue("refuse"), options: options)
          Issue.record("the call should have failed")
        } catch let error as RPCError {
          #expect(error.code == .notFound)
          let requestID = error.trailers[MetadataKey.requestID] ?? ""
          #expect(round % 3 == 0 ? requestID == "mine-\(round)" : !requestID.hasPrefix("mine"))
        }
      }
      await client.close()
    }
  }

  @Test("each call's context carries its own metadata and request id, however the calls before it looked")
  func contextPerCall() async throws {
    try await withTestServer { server async throws in
      let client = server.client()
      // Repeats of one meta (the server reuses what it made of it) between changes.
      var seenIDs = Set<String>()
      for (index, tag) in ["a", "a", "a", "b", "b", "-", "a", "a"].enumerated() {
        var metadata: [String: String] = [:]
        if tag != "-" { metadata["x-test"] = tag }
        let ownID = index % 4 == 3
        if ownID { metadata["request-id"] = "ctx-\(index)" }
        let answer: Google_Protobuf_StringValue = try await client.unary(
          TestService.whereRun, request: Google_Protobuf_StringValue("context"),
          options: CallOptions(metadata: metadata))
        let parts = answer.value.split(separator: " ").map(String.init)
        #expect(parts.count == 4)
        #expect(parts.prefix(3) == [TestService.whereRun.fullName, tag, "peer"])
        if ownID { #expect(parts.last == "ctx-\(index)") }
        #expect(seenIDs.insert(parts.last ?? "").inserted, "a request id of its own")
      }
      await client.close()
    }
  }

  // MARK: Batches

  @Test("a batch of calls returns each response in the order of its request")
  func batchOrder() async throws {
    try await withTestServer { server async throws in
      let client = server.client()
      #expect(try await client.serverSettings().maxConcurrentCalls == 128)
      // Under the server's limit (the calls go out together, one entry in the client's
      // call table) and over it (they start one by one as calls end).
      for count in [100, 200] {
        let requests = (0..<count).map { Google_Protobuf_BytesValue(Data("call-\($0)".utf8)) }
        let results: [Result<Google_Protobuf_BytesValue, RPCError>] = try await client.unaryBatch(
          TestService.echo, requests: requests)
        #expect(try results.map { try $0.get() } == requests)
      }
      let none: [Result<Google_Protobuf_BytesValue, RPCError>] = try await client.unaryBatch(
        TestService.echo, requests: [Google_Protobuf_BytesValue]())
      #expect(none.isEmpty)
      await client.close()
    }
  }

  @Test("a call of a batch fails alone, with its own status")
  func batchErrors() async throws {
    try await withTestServer { server async throws in
      let client = server.client()
      let requests: [Google_Protobuf_StringValue] = ["now", "refuse", "async", "refuse"]
      let results: [Result<Google_Protobuf_StringValue, RPCError>] = try await client.unaryBatch(
        TestService.whereRun, requests: requests)
      #expect(try results[0].get().value == "immediate, no task")
      #expect(try results[2].get().value == "task")
      for index in [1, 3] {
        guard case .failure(let error) = results[index] else {
          Issue.record("call \(index) should have failed")
          continue
        }
        #expect(error.code == .notFound)
        #expect(error.message == "refused immediately")
        #expect(error.trailers[MetadataKey.requestID]?.isEmpty == false)
      }
      await client.close()
    }
  }

  @Test("a batch larger than the server's concurrency limit waits its turn: every call succeeds")
  func batchOverLimit() async throws {
    try await withTestServer({ $0.limits.maxConcurrentCalls = 3 }) { server async throws in
      let client = server.client()
      let requests = (0..<50).map { Google_Protobuf_BytesValue(Data([UInt8($0)])) }
      let results: [Result<Google_Protobuf_BytesValue, RPCError>] = try await client.unaryBatch(
        TestService.echo, requests: requests)
      #expect(try results.map { try $0.get() } == requests)
      await client.close()
    }
  }

  @Test("a batch's deadline ends each of its calls DEADLINE_EXCEEDED")
  func batchDeadline() async throws {
    try await withTestServer { server async throws in
      let client = server.client()
      _ = try await client.serverSettings()  // the deadline covers connecting too
      let requests: [Google_Protobuf_UInt32Value] = [5_000, 5_000]
      let results: [Result<Google_Protobuf_Empty, RPCError>] = try await client.unaryBatch(
        TestService.sleep, requests: requests, options: CallOptions(timeout: .milliseconds(100)))
      for result in results {
        guard case .failure(let error) = result else {
          Issue.record("the call should have failed")
          continue
        }
        #expect(error.code == .deadlineExceeded)
      }
      await client.close()
    }
  }

  @Test("cancelling the task waiting for a batch sends CANCEL for each of its calls")
  func batchCancellation() async throws {
    try await withTestServer { server async throws in
      let client = server.client()
      let tags = ["batch-a", "batch-b", "batch-c"]
      let task = Task {
        let results: [Result<Google_Protobuf_Empty, RPCError>] = try await client.unaryBatch(
          TestService.block, requests: tags.map { Google_Protobuf_StringValue($0) })
        return results
      }
      try await eventually { tags.allSatisfy(server.probe.startedTags.contains) }
      task.cancel()
      let results = try await task.value
      #expect(results.allSatisfy { if case .failure(let error) = $0 { error.code == .cancelled } else { false } })
      try await eventually { tags.allSatisfy(server.probe.cancelledTags.contains) }
      #expect(try await Dms_Rpc_V1_Health.Client(client).check().status == .serving)
      await client.close()
    }
  }
}
