import DMSMessages
import DMSRPC
import DMSStubs
import DMSWire
import Foundation
import NIOCore
import SwiftProtobuf
import Testing

/// The wire protocol, byte by byte, against a real server over TCP.
@Suite("Protocol over TCP")
struct ProtocolTests {
  @Test("the server answers a preface with its own and a SETTINGS frame")
  func prefaceAndSettings() async throws {
    try await withTestServer({ $0.limits.maxConcurrentCalls = 77 }) { server async throws in
      let (connection, settings) = try await RawConnection.open(port: server.port)
      #expect(settings.maxConcurrentCalls == 77)
      #expect(settings.maxFrameSize == 4 << 20)
      #expect(settings.idleTimeoutMs == 300_000)
      #expect(settings.server == "dms-settingsd-test")
      #expect(settings.features.contains("deadline"))
      await connection.close()
    }
  }

  @Test("an HTTP request gets a plain 400 that points to dmsctl, then the close")
  func httpRequest() async throws {
    try await withTestServer { server async throws in
      let connection = try await server.raw()
      try await connection.send(Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
      let text = String(decoding: try await connection.readUntilClosed(), as: UTF8.self)
      #expect(text.hasPrefix("HTTP/1.1 400 "))
      #expect(text.contains("DMS RPC"))
      #expect(text.contains("dmsctl --server 127.0.0.1:\(server.port) info"))
    }
  }

  @Test(
    "a bad preface is closed without an answer",
    arguments: [
      Array("hello, server\n".utf8),
      [0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xFC, 0x03, 0x03],  // TLS ClientHello
    ]
  )
  func badPreface(bytes: [UInt8]) async throws {
    try await withTestServer { server async throws in
      let connection = try await server.raw()
      try await connection.send(bytes)
      #expect(try await connection.readUntilClosed().isEmpty)
    }
  }

  @Test("an unsupported version gets GOAWAY UNIMPLEMENTED naming the version spoken")
  func unsupportedVersion() async throws {
    try await withTestServer { server async throws in
      let connection = try await server.raw()
      try await connection.send(Preface.bytes(version: 2))
      #expect(try await connection.readBytes(Preface.size) == Preface.bytes())
      let goAway = try await connection.readGoAwayAndClose()
      #expect(goAway.code == StatusCode.unimplemented.rawValue)
      #expect(goAway.reason.contains("version 1"))
    }
  }

  @Test("no preface within the timeout: closed")
  func prefaceTimeout() async throws {
    try await withTestServer({ $0.timeouts.preface = .milliseconds(150) }) { server async throws in
      let connection = try await server.raw()
      // Under load the 150 ms may pass before this is sent: the server has closed then,
      // and the send fails; either way nothing is answered and the connection closes.
      try? await connection.send(Array("DMS".utf8))
      #expect(try await connection.readUntilClosed(timeout: .seconds(5)).isEmpty)
    }
  }

  @Test("an oversized length gets GOAWAY RESOURCE_EXHAUSTED before its body is sent")
  func oversizedFrame() async throws {
    try await withTestServer { server async throws in
      let (connection, _) = try await RawConnection.open(port: server.port)
      var header = ByteBuffer()
      header.writeMultipleIntegers(UInt32(8 + (4 << 20) + 1), FrameType.call.rawValue, UInt8(1), UInt16(0), UInt32(1))
      try await connection.send(header)
      let goAway = try await connection.readGoAwayAndClose()
      #expect(goAway.code == StatusCode.resourceExhausted.rawValue)
    }
  }

  static let malformedFrames: [(String, [UInt8])] = {
    func header(_ length: UInt32, _ type: UInt8, _ flags: UInt8, _ metaLength: UInt16, _ id: UInt32) -> [UInt8] {
      var buffer = ByteBuffer()
      buffer.writeMultipleIntegers(length, type, flags, metaLength, id)
      return Array(buffer.readableBytesView)
    }
    return [
      ("unknown type", header(8, 42, 0, 0, 1)),
      ("reserved flag bits", header(8, 1, 0x80, 0, 1)),
      ("meta_len past the end", header(9, 1, 1, 5, 1) + [0]),
      ("undecodable meta", header(10, 1, 1, 2, 1) + [0xFF, 0xFF]),
      ("CALL on call id 0", header(8, 1, 1, 0, 0)),
      ("PING on a call id", header(16, 5, 0, 0, 9) + [UInt8](repeating: 0, count: 8)),
      ("MESSAGE from a client", header(9, 2, 0, 0, 1) + [0]),
    ]
  }()

  @Test(
    "a malformed frame gets GOAWAY INVALID_ARGUMENT naming the fault; others keep being served",
    arguments: malformedFrames)
  func malformedFrame(name: String, bytes: [UInt8]) async throws {
    try await withTestServer { server async throws in
      let (bystander, _) = try await RawConnection.open(port: server.port)
      let (connection, _) = try await RawConnection.open(port: server.port)
      try await connection.send(bytes)
      let goAway = try await connection.readGoAwayAndClose()
      #expect(goAway.code == StatusCode.invalidArgument.rawValue, "\(name)")
      #expect(!goAway.reason.isEmpty)

      try await bystander.send(
        RawFrame.call(id: 1, method: Dms_Rpc_V1_Health.Method.check.fullName, request: Dms_Rpc_V1_HealthCheckRequest()))
      let end = try await bystander.readFrame()
      #expect(end.type == .end)
      #expect(try RawFrame.status(of: end).code == 0)
    }
  }

  @Test("100 connections sending random bytes after the preface do not stop the server")
  func randomGarbage() async throws {
    try await withTestServer { server async throws in
      var random = SystemRandomNumberGenerator()
      for _ in 0..<100 {
        let (connection, _) = try await RawConnection.open(port: server.port)
        var bytes = (0..<Int.random(in: 1...200, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
        if bytes.count >= 12 {
          bytes[0] = 0
          bytes[1] = 0
          bytes[4] = UInt8.random(in: 1...7, using: &random)
        }
        try await connection.send(bytes)
        await connection.close()
      }
      let (connection, _) = try await RawConnection.open(port: server.port)
      try await connection.send(
        RawFrame.call(id: 1, method: Dms_Rpc_V1_Health.Method.check.fullName, request: Dms_Rpc_V1_HealthCheckRequest()))
      #expect(try RawFrame.status(of: try await connection.readFrame()).code == 0)
    }
  }

  @Test("a CALL reusing the id of an open call gets GOAWAY INVALID_ARGUMENT")
  func reusedCallID() async throws {
    try await withTestServer { server async throws in
      let (connection, _) = try await RawConnection.open(port: server.port)
      var block = Google_Protobuf_StringValue()
      block.value = "reuse"
      try await connection.send(RawFrame.call(id: 5, method: TestService.block.fullName, request: block))
      try await connection.send(RawFrame.call(id: 5, method: TestService.block.fullName, request: block))
      let goAway = try await connection.readGoAwayAndClose()
      #expect(goAway.code == StatusCode.invalidArgument.rawValue)
      #expect(goAway.reason.contains("reuses"))
      #expect(goAway.lastCallID == 5)
    }
  }

  @Test("PING is answered with ACK and the same 8 bytes")
  func ping() async throws {
    try await withTestServer { server async throws in
      let (connection, _) = try await RawConnection.open(port: server.port)
      var ping = ByteBuffer()
      Frame(type: .ping, callID: 0, payload: ByteBuffer(bytes: [1, 2, 3, 4, 5, 6, 7, 8])).write(into: &ping)
      try await connection.send(ping)
      let pong = try await connection.readFrame()
      #expect(pong.type == .ping)
      #expect(pong.flags == .ack)
      #expect(Array(pong.payload.readableBytesView) == [1, 2, 3, 4, 5, 6, 7, 8])
    }
  }

  @Test("an unknown method ends UNIMPLEMENTED and echoes the request id")
  func unknownMethod() async throws {
    try await withTestServer { server async throws in
      let (connection, _) = try await RawConnection.open(port: server.port)
      try await connection.send(
        RawFrame.call(id: 1, method: "/dms.nope.v1.Nope/Nothing", payload: [], metadata: ["request-id": "r-42"]))
      let end = try await connection.readFrame()
      let status = try RawFrame.status(of: end)
      #expect(end.type == .end && end.callID == 1)
      #expect(status.code == StatusCode.unimplemented.rawValue)
      #expect(status.message.contains("/dms.nope.v1.Nope/Nothing"))
      #expect(status.trailers["request-id"] == "r-42")
    }
  }

  @Test("the server makes a request id when the client sends none")
  func madeRequestID() async throws {
    try await withTestServer { server async throws in
      let (connection, _) = try await RawConnection.open(port: server.port)
      var batch = ByteBuffer()
      for id in 1...300 {
        var frame = try RawFrame.call(id: UInt32(id), method: Dms_Rpc_V1_Health.Method.check.fullName, payload: [])
        batch.writeBuffer(&frame)
      }
      try await connection.send(batch)
      var ids: [UInt32: String] = [:]
      for _ in 1...300 {
        let end = try await connection.readFrame()
        let status = try RawFrame.status(of: end)
        #expect(status.code == 0)
        ids[end.callID] = status.trailers["request-id"] ?? ""
      }
      // "<connection prefix>-<counter>", both in hex: distinct, and one prefix.
      let parts = ids.values.map { $0.split(separator: "-").map(String.init) }
      #expect(Set(ids.values).count == 300)
      #expect(parts.allSatisfy { $0.count == 2 && $0.allSatisfy { UInt32($0, radix: 16) != nil } })
      #expect(Set(parts.map { $0.first ?? "" }).count == 1)
      #expect(Set(parts.compactMap { $0.last.flatMap { UInt32($0, radix: 16) } }) == Set(1...300))
    }
  }

  @Test("an undecodable request payload ends INVALID_ARGUMENT naming the type")
  func undecodablePayload() async throws {
    try await withTestServer { server async throws in
      let (connection, _) = try await RawConnection.open(port: server.port)
      // One method answered on the event loop (Health/Check), one in a task (Echo).
      for (id, method, type) in [
        (UInt32(3), Dms_Rpc_V1_Health.Method.check.fullName, "dms.rpc.v1.HealthCheckRequest"),
        (UInt32(5), TestService.echo.fullName, "google.protobuf.BytesValue"),
      ] {
        try await connection.send(
          RawFrame.call(id: id, method: method, payload: [0x0A, 0xFF, 0x01], metadata: ["request-id": "bad-\(id)"]))
        let end = try await connection.readFrame()
        let status = try RawFrame.status(of: end)
        #expect(end.callID == id)
        #expect(status.code == StatusCode.invalidArgument.rawValue)
        #expect(status.message.contains(type))
        #expect(status.trailers["request-id"] == "bad-\(id)")
      }
    }
  }

  @Test("a CALL without END_STREAM ends INVALID_ARGUMENT")
  func callWithoutEndStream() async throws {
    try await withTestServer { server async throws in
      let (connection, _) = try await RawConnection.open(port: server.port)
      try await connection.send(
        RawFrame.call(id: 3, method: Dms_Rpc_V1_Health.Method.check.fullName, payload: [], flags: []))
      let status = try RawFrame.status(of: try await connection.readFrame())
      #expect(status.code == StatusCode.invalidArgument.rawValue)
    }
  }

  @Test("1,000 pipelined calls in one write all end, each matched to its id")
  func pipelined() async throws {
    try await withTestServer { server async throws in
      let (connection, _) = try await RawConnection.open(port: server.port)
      var batch = ByteBuffer()
      for id in 1...1000 {
        var request = Google_Protobuf_BytesValue()
        request.value = Data("payload-\(id)".utf8)
        var frame = try RawFrame.call(id: UInt32(id), method: TestService.echo.fullName, request: request)
        batch.writeBuffer(&frame)
      }
      try await connection.send(batch)
      var seen = Set<UInt32>()
      for _ in 1...1000 {
        let end = try await connection.readFrame()
        #expect(end.type == .end)
        #expect(try RawFrame.status(of: end).code == 0)
        let response = try Google_Protobuf_BytesValue(serializedBytes: Array(end.payload.readableBytesView))
        #expect(String(decoding: response.value, as: UTF8.self) == "payload-\(end.callID)")
        #expect(seen.insert(end.callID).inserted)
      }
      #expect(seen.count == 1000)
    }
  }

  @Test("a handler that answers immediately runs on the event loop, in no task; nil falls back to a task off the loop")
  func immediateHandlers() async throws {
    try await withTestServer { server async throws in
      let (connection, _) = try await RawConnection.open(port: server.port)
      var batch = ByteBuffer()
      // Immediate answers, task answers and an immediate error, pipelined in one write.
      let requests = ["now", "async", "refuse", "now", "async"]
      for (index, value) in requests.enumerated() {
        var frame = try RawFrame.call(
          id: UInt32(index + 1), method: TestService.whereRun.fullName, request: Google_Protobuf_StringValue(value),
          metadata: ["request-id": "where-\(index + 1)"])
        batch.writeBuffer(&frame)
      }
      try await connection.send(batch)
      var answers: [UInt32: String] = [:]
      for _ in requests {
        let end = try await connection.readFrame()
        let status = try RawFrame.status(of: end)
        #expect(status.trailers["request-id"] == "where-\(end.callID)")
        if status.code == 0 {
          answers[end.callID] = try Google_Protobuf_StringValue(serializedBytes: Array(end.payload.readableBytesView))
            .value
        } else {
          #expect(status.code == StatusCode.notFound.rawValue)
          answers[end.callID] = status.message
        }
      }
      #expect(
        answers == [
          1: "immediate, no task", 2: "task", 3: "refused immediately", 4: "immediate, no task", 5: "task",
        ])
    }
  }

  @Test("a passed deadline cancels the handler and ends DEADLINE_EXCEEDED")
  func deadline() async throws {
    try await withTestServer { server async throws in
      let (connection, _) = try await RawConnection.open(port: server.port)
      var block = Google_Protobuf_StringValue()
      block.value = "deadline"
      let started = ContinuousClock.now
      try await connection.send(
        RawFrame.call(id: 1, method: TestService.block.fullName, request: block, timeoutMs: 100))
      let end = try await connection.readFrame()
      #expect(try RawFrame.status(of: end).code == StatusCode.deadlineExceeded.rawValue)
      #expect(ContinuousClock.now - started >= .milliseconds(100))
      try await eventually { server.probe.cancelledTags.contains("deadline") }
    }
  }

  @Test("CANCEL stops the handler and ends CANCELLED; a CANCEL for no open call is ignored")
  func cancel() async throws {
    try await withTestServer { server async throws in
      let (connection, _) = try await RawConnection.open(port: server.port)
      try await connection.send(RawFrame.cancel(id: 99))
      var block = Google_Protobuf_StringValue()
      block.value = "cancel"
      try await connection.send(RawFrame.call(id: 1, method: TestService.block.fullName, request: block))
      try await eventually { server.probe.startedTags.contains("cancel") }
      try await connection.send(RawFrame.cancel(id: 1))
      let end = try await connection.readFrame()
      #expect(end.callID == 1)
      #expect(try RawFrame.status(of: end).code == StatusCode.cancelled.rawValue)
      try await eventually { server.probe.cancelledTags.contains("cancel") }
    }
  }

  @Test("at the concurrency limit the connection is not read until a call ends")
  func concurrencyLimit() async throws {
    try await withTestServer({ $0.limits.maxConcurrentCalls = 2 }) { server async throws in
      let (connection, settings) = try await RawConnection.open(port: server.port)
      #expect(settings.maxConcurrentCalls == 2)
      var batch = ByteBuffer()
      for id in 1...3 {
        var block = Google_Protobuf_StringValue()
        block.value = "limit-\(id)"
        var frame = try RawFrame.call(id: UInt32(id), method: TestService.block.fullName, request: block)
        batch.writeBuffer(&frame)
      }
      try await connection.send(batch)
      try await eventually { server.probe.startedTags.count == 2 }
      try await Task.sleep(for: .milliseconds(100))
      // The first two run at once, in either order; the third waits.
      #expect(Set(server.probe.startedTags) == ["limit-1", "limit-2"], "the third call waits")
      #expect(server.probe.startedTags.count == 2)
      try await connection.send(RawFrame.cancel(id: 1))
      #expect(try RawFrame.status(of: try await connection.readFrame()).code == StatusCode.cancelled.rawValue)
      try await eventually { server.probe.startedTags.contains("limit-3") }
      #expect(!connection.isClosed)
      await connection.close()
    }
  }

  @Test("an idle connection gets GOAWAY UNAVAILABLE \"idle\" and is closed")
  func idle() async throws {
    try await withTestServer({ $0.timeouts.idle = .milliseconds(200) }) { server async throws in
      let (connection, _) = try await RawConnection.open(port: server.port)
      let goAway = try await connection.readGoAwayAndClose()
      #expect(goAway.code == StatusCode.unavailable.rawValue)
      #expect(goAway.reason == "idle")
    }
  }

  @Test("a frame stalled half way closes the connection")
  func frameStall() async throws {
    try await withTestServer({ $0.timeouts.frameStall = .milliseconds(200) }) { server async throws in
      let (connection, _) = try await RawConnection.open(port: server.port)
      let frame = try RawFrame.call(id: 1, method: Dms_Rpc_V1_Health.Method.check.fullName, payload: [])
      try await connection.send(Array(frame.readableBytesView.prefix(7)))
      _ = try await connection.readUntilClosed(timeout: .seconds(5))
      #expect(connection.isClosed)
    }
  }
}

/// Waits until `condition` holds (polling), or fails after `timeout`.
func eventually(
  // Long: a condition met at once costs nothing, and under the whole suite in parallel
  // (a blocking-handler test holds one of the two cooperative threads for 9.8 s) a
  // handler once took more than 10 s to start.
  timeout: Duration = .seconds(30),
  _ condition: () -> Bool,
  sourceLocation: SourceLocation = #_sourceLocation
) async throws {
  let deadline = ContinuousClock.now + timeout
  while !condition() {
    guard ContinuousClock.now < deadline else {
      Issue.record("condition not met in \(timeout)", sourceLocation: sourceLocation)
      return
    }
    try await Task.sleep(for: .milliseconds(5))
  }
}
