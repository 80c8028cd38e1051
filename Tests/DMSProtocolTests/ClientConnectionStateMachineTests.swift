import DMSClient
import DMSMessages
import DMSRPC
import DMSWire
import NIOCore
import SwiftProtobuf
import Testing

/// The client connection's rules, driven without a socket: the handshake, the call
/// table and its queue at the server's limit, batches, GOAWAY, the lone-call flush.
@Suite("Client connection state machine")
struct ClientConnectionStateMachineTests {
  /// Calls are named by a string; batches by an object.
  final class Batch {}
  typealias Machine = ClientConnectionStateMachine<String, Batch>

  static func settings(maxConcurrentCalls: UInt32) -> Frame {
    var settings = Dms_Rpc_V1_Settings()
    settings.maxConcurrentCalls = maxConcurrentCalls
    return Frame(type: .settings, callID: 0, meta: ByteBuffer(bytes: try! settings.serializedBytes() as [UInt8]))
  }

  static func end(_ id: UInt32, code: StatusCode = .ok, payload: [UInt8] = [1]) -> Frame {
    var status = Dms_Rpc_V1_Status()
    status.code = code.rawValue
    if code != .ok { status.message = "failed" }
    return Frame(
      type: .end, flags: .endStream, callID: id, meta: ByteBuffer(bytes: try! status.serializedBytes() as [UInt8]),
      payload: ByteBuffer(bytes: code == .ok ? payload : []))
  }

  static func goAway(lastCallID: UInt32) -> Frame {
    var goAway = Dms_Rpc_V1_GoAway()
    goAway.lastCallID = lastCallID
    goAway.code = StatusCode.unavailable.rawValue
    goAway.reason = "shutting down"
    return Frame(type: .goAway, callID: 0, meta: ByteBuffer(bytes: try! goAway.serializedBytes() as [UInt8]))
  }

  /// A machine past the handshake, with the server's limit.
  static func ready(limit: UInt32 = 4) -> Machine {
    var machine = Machine()
    let accepted = machine.prefaceReceived(.preface(version: 1), available: 8)
    #expect(accepted == .accept)
    guard case .settings(_, handshakeDone: true) = machine.frameReceived(settings(maxConcurrentCalls: limit)) else {
      Issue.record("handshake not done")
      return machine
    }
    return machine
  }

  static func pending(_ id: UInt32) -> Machine.Pending {
    Machine.Pending(callID: id, frame: ByteBuffer(bytes: [UInt8(id & 0xFF)]), call: "call \(id)")
  }

  // MARK: Handshake

  @Test(
    "the server's preface: wait for 8 bytes, accept version 1, reject anything else",
    arguments: [
      (Preface.Detection.preface(version: 1), 8, Machine.PrefaceResult.accept),
      (.preface(version: 1), 7, .wait),
      (.preface(version: 2), 8, .reject),
      (.http, 8, .reject),
      (.tls, 8, .reject),
      (.garbage, 8, .reject),
    ])
  func preface(detection: Preface.Detection, available: Int, result: Machine.PrefaceResult) {
    var machine = Machine()
    let got = machine.prefaceReceived(detection, available: available)
    #expect(got == result)
    #expect(machine.isHandshaking == (result != .reject))
  }

  @Test("calls made before SETTINGS wait, and leave when SETTINGS come, up to the limit")
  func callsBeforeSettings() {
    var machine = Machine()
    _ = machine.prefaceReceived(.preface(version: 1), available: 8)
    for id: UInt32 in 1...3 {
      guard case .queued = machine.startCall(Self.pending(id)) else {
        Issue.record("sent before SETTINGS")
        return
      }
    }
    guard
      case .settings(let settings, handshakeDone: true) = machine.frameReceived(Self.settings(maxConcurrentCalls: 2))
    else {
      Issue.record("no handshake")
      return
    }
    #expect(settings.maxConcurrentCalls == 2)
    var sent: [UInt32] = []
    while case .send(let frame, _) = machine.nextQueued() {
      sent.append(UInt32(frame.getInteger(at: 0, as: UInt8.self)!))
    }
    #expect(sent == [1, 2])
    #expect(machine.queuedCalls == 1)
    #expect(machine.openCalls == 2)
  }

  @Test("a second SETTINGS changes the limit but ends no handshake; an ACK is nothing")
  func laterSettings() {
    var machine = Self.ready(limit: 1)
    guard case .settings(_, handshakeDone: false) = machine.frameReceived(Self.settings(maxConcurrentCalls: 3)) else {
      Issue.record("not taken")
      return
    }
    #expect(machine.maxConcurrentCalls == 3)
    guard case .none = machine.frameReceived(Frame(type: .settings, flags: .ack, callID: 0)) else {
      Issue.record("acted on an ACK")
      return
    }
  }

  // MARK: The call table

  @Test("calls up to the limit are sent; the next waits and leaves when one ends")
  func limit() {
    var machine = Self.ready(limit: 2)
    guard case .send(_, alone: true) = machine.startCall(Self.pending(1)) else {
      Issue.record("the only call is not alone")
      return
    }
    guard case .send(_, alone: false) = machine.startCall(Self.pending(2)) else {
      Issue.record("a second call is alone")
      return
    }
    guard case .queued = machine.startCall(Self.pending(3)) else {
      Issue.record("over the limit, sent")
      return
    }
    #expect(machine.nextQueued() == nil)
    guard case .end("call 1", .success(let payload), closeNow: false) = machine.frameReceived(Self.end(1)) else {
      Issue.record("END not delivered")
      return
    }
    #expect(payload.readableBytes == 1)
    guard case .send = machine.nextQueued() else {
      Issue.record("the waiting call did not leave")
      return
    }
    #expect(machine.openCalls == 2)
  }

  @Test("an error END carries its status; an END for no open call is nothing; MESSAGE reaches an open call")
  func ends() {
    var machine = Self.ready()
    _ = machine.startCall(Self.pending(1))
    guard case .message("call 1", _) = machine.frameReceived(Frame(type: .message, callID: 1)) else {
      Issue.record("message lost")
      return
    }
    guard case .end("call 1", .failure(let error), _) = machine.frameReceived(Self.end(1, code: .notFound)) else {
      Issue.record("error END not delivered")
      return
    }
    #expect(error.code == .notFound)
    #expect(error.message == "failed")
    guard case .none = machine.frameReceived(Self.end(1)) else {
      Issue.record("a second END delivered")
      return
    }
    guard case .none = machine.frameReceived(Frame(type: .message, callID: 1)) else {
      Issue.record("a message for an ended call delivered")
      return
    }
  }

  @Test("cancelling: an open call (CANCEL follows), a queued one (never sent), an ended one (nothing)")
  func cancel() {
    var machine = Self.ready(limit: 1)
    _ = machine.startCall(Self.pending(1))
    _ = machine.startCall(Self.pending(2))
    guard case .queued("call 2") = machine.cancel(callID: 2) else {
      Issue.record("queued call not cancelled")
      return
    }
    #expect(machine.queuedCalls == 0)
    guard case .open("call 1") = machine.cancel(callID: 1) else {
      Issue.record("open call not cancelled")
      return
    }
    #expect(machine.openCalls == 0)
    guard case .none = machine.cancel(callID: 1) else {
      Issue.record("cancelled twice")
      return
    }
    guard case .none = machine.frameReceived(Self.end(1)) else {
      Issue.record("the END of a cancelled call delivered")
      return
    }
  }

  // MARK: Batches

  @Test("a batch within the limit is one write and one entry; each END reaches its index")
  func wholeBatch() {
    var machine = Self.ready(limit: 4)
    let batch = Batch()
    #expect(machine.startBatch(batch, firstCallID: 10, count: 3, whole: true) == .sendWhole(alone: true))
    #expect(machine.openCalls == 3)
    guard case .endInBatch(let ended, index: 1, .success, closeNow: false) = machine.frameReceived(Self.end(11)) else {
      Issue.record("batch END lost")
      return
    }
    #expect(ended === batch)
    guard case .openInBatch(_, index: 2) = machine.cancel(callID: 12) else {
      Issue.record("batch call not cancelled")
      return
    }
    guard case .none = machine.frameReceived(Self.end(12)) else {
      Issue.record("END of a cancelled batch call delivered")
      return
    }
    guard case .endInBatch(_, index: 0, _, _) = machine.frameReceived(Self.end(10)) else { return }
    #expect(machine.openCalls == 0)
  }

  @Test(
    "a batch over the limit, with deadlines, or behind waiting calls starts one by one",
    arguments: [(count: 5, whole: true, queued: false), (2, false, false), (2, true, true)])
  func oneByOne(count: Int, whole: Bool, queued: Bool) {
    var machine = Self.ready(limit: 4)
    if queued {
      for id: UInt32 in 1...5 { _ = machine.startCall(Self.pending(id)) }
    }
    #expect(machine.startBatch(Batch(), firstCallID: 100, count: count, whole: whole) == .oneByOne)
  }

  // MARK: GOAWAY

  @Test("GOAWAY: calls above its last id and the queued ones are refused; the rest finish, then close")
  func goAway() {
    var machine = Self.ready(limit: 3)
    let batch = Batch()
    _ = machine.startCall(Self.pending(1))
    #expect(machine.startBatch(batch, firstCallID: 2, count: 2, whole: true) == .sendWhole(alone: false))
    _ = machine.startCall(Self.pending(4))  // queued: the limit is 3
    guard case .goAway(let goAway) = machine.frameReceived(Self.goAway(lastCallID: 2)) else {
      Issue.record("GOAWAY not taken")
      return
    }
    #expect(goAway.refused.isEmpty)
    #expect(goAway.refusedInBatches.map(\.index) == [1])
    #expect(goAway.queued == ["call 4"])
    #expect(!goAway.closeNow)
    #expect(!goAway.duringHandshake)
    #expect(machine.phase == .goingAway)
    guard case .refuse("call 5") = machine.startCall(Self.pending(5)) else {
      Issue.record("a call started after GOAWAY")
      return
    }
    guard case .end(_, _, closeNow: false) = machine.frameReceived(Self.end(1)) else { return }
    guard case .endInBatch(_, index: 0, _, closeNow: true) = machine.frameReceived(Self.end(2)) else {
      Issue.record("did not close after the last call")
      return
    }
    #expect(machine.phase == .closed)
  }

  @Test("GOAWAY during the handshake fails connecting with its code")
  func goAwayInHandshake() {
    var machine = Machine()
    _ = machine.prefaceReceived(.preface(version: 1), available: 8)
    var goAway = Dms_Rpc_V1_GoAway()
    goAway.code = StatusCode.unimplemented.rawValue
    goAway.reason = "version 2"
    let frame = Frame(type: .goAway, callID: 0, meta: ByteBuffer(bytes: try! goAway.serializedBytes() as [UInt8]))
    guard case .goAway(let result) = machine.frameReceived(frame) else { return }
    #expect(result.duringHandshake)
    #expect(result.closeNow)
    #expect(result.error.code == .unimplemented)
  }

  // MARK: Faults and the end

  @Test(
    "a server sending CALL or CANCEL, or undecodable meta, breaks the protocol",
    arguments: [
      Frame(type: .call, flags: .endStream, callID: 1),
      Frame(type: .cancel, callID: 1),
      Frame(type: .goAway, callID: 0, meta: ByteBuffer(bytes: [0xFF, 0xFF])),
      Frame(type: .settings, callID: 0, meta: ByteBuffer(bytes: [0xFF, 0xFF])),
      Frame(type: .end, flags: .endStream, callID: 1, meta: ByteBuffer(bytes: [0x08])),
    ])
  func protocolErrors(frame: Frame) {
    var machine = Self.ready()
    _ = machine.startCall(Self.pending(1))
    guard case .protocolError = machine.frameReceived(frame) else {
      Issue.record("\(frame.type) accepted")
      return
    }
    #expect(machine.phase == .closed)
    let lost = machine.connectionLost()
    #expect(lost?.open == ["call 1"], "the open call is still failed")
  }

  @Test("PING is answered; an ACK is matched")
  func ping() {
    var machine = Self.ready()
    let bytes = ByteBuffer(bytes: [1, 2, 3, 4, 5, 6, 7, 8])
    guard case .ping(bytes) = machine.frameReceived(Frame(type: .ping, callID: 0, payload: bytes)) else {
      Issue.record("no answer")
      return
    }
    guard case .pingAck(bytes) = machine.frameReceived(Frame(type: .ping, flags: .ack, callID: 0, payload: bytes))
    else {
      Issue.record("ACK not matched")
      return
    }
  }

  @Test("the connection lost: open calls fail, queued ones are retryable, and only once")
  func lost() {
    var machine = Self.ready(limit: 1)
    _ = machine.startCall(Self.pending(1))
    _ = machine.startCall(Self.pending(2))
    let lost = machine.connectionLost()
    #expect(lost?.wasReady == true)
    #expect(lost?.open == ["call 1"])
    #expect(lost?.queued == ["call 2"])
    #expect(machine.connectionLost() == nil)
    guard case .refuse = machine.startCall(Self.pending(3)) else {
      Issue.record("a call started on a lost connection")
      return
    }
  }

  @Test("a lone call: one END in a read and none open lets its caller run at once")
  func loneCall() {
    var machine = Self.ready()
    _ = machine.startCall(Self.pending(1))
    machine.readBegan()
    _ = machine.frameReceived(Self.end(1))
    #expect(machine.loneCallEnded)
    _ = machine.startCall(Self.pending(2))
    _ = machine.startCall(Self.pending(3))
    machine.readBegan()
    _ = machine.frameReceived(Self.end(2))
    #expect(!machine.loneCallEnded, "another call is open")
    _ = machine.frameReceived(Self.end(3))
    #expect(!machine.loneCallEnded, "two ENDs in one read")
    // After a read that ended two calls, the next call is not alone: the callers' next
    // calls follow in this tick and go out together.
    guard case .send(_, alone: false) = machine.startCall(Self.pending(4)) else {
      Issue.record("alone after a read that ended two")
      return
    }
  }

  /// Every frame type a server can send, well formed.
  static let everyFrame: [Frame] = [
    settings(maxConcurrentCalls: 8),
    Frame(type: .message, callID: 1),
    end(1),
    Frame(type: .ping, callID: 0, payload: ByteBuffer(bytes: [1, 2, 3, 4, 5, 6, 7, 8])),
    Frame(type: .ping, flags: .ack, callID: 0, payload: ByteBuffer(bytes: [1, 2, 3, 4, 5, 6, 7, 8])),
    goAway(lastCallID: 0),
    Frame(type: .call, flags: .endStream, callID: 1),
    Frame(type: .cancel, callID: 1),
  ]

  @Test("every frame type before the server's preface and after the close is nothing", arguments: everyFrame)
  func framesOutsideTheConnection(frame: Frame) {
    var fresh = Machine()
    guard case .none = fresh.frameReceived(frame) else {
      Issue.record("acted on \(frame.type) before the preface")
      return
    }
    var closed = Self.ready()
    _ = closed.connectionLost()
    guard case .none = closed.frameReceived(frame) else {
      Issue.record("acted on \(frame.type) after the close")
      return
    }
  }

  @Test("every frame type while awaiting SETTINGS", arguments: everyFrame)
  func framesAwaitingSettings(frame: Frame) {
    var machine = Machine()
    _ = machine.prefaceReceived(.preface(version: 1), available: 8)
    _ = machine.startCall(Self.pending(1))  // queued until SETTINGS
    let action = machine.frameReceived(frame)
    switch (frame.type, action) {
    case (.settings, .settings(_, handshakeDone: true)):
      #expect(machine.phase == .ready)
    case (.message, .none), (.end, .none):
      #expect(machine.queuedCalls == 1, "a frame for a call not sent is nothing")
    case (.ping, .ping), (.ping, .pingAck):
      break
    case (.goAway, .goAway(let goAway)):
      #expect(goAway.duringHandshake)
      #expect(goAway.queued == ["call 1"])
    case (.call, .protocolError), (.cancel, .protocolError):
      #expect(machine.phase == .closed)
    default:
      Issue.record("\(frame.type) while awaiting SETTINGS: \(action)")
    }
  }

  @Test("every frame type while going away", arguments: everyFrame)
  func framesGoingAway(frame: Frame) {
    var machine = Self.ready()
    _ = machine.startCall(Self.pending(1))
    guard case .goAway(let goAway) = machine.frameReceived(Self.goAway(lastCallID: 1)), !goAway.closeNow else {
      Issue.record("not going away")
      return
    }
    let action = machine.frameReceived(frame)
    switch (frame.type, action) {
    case (.settings, .settings(_, handshakeDone: false)), (.ping, .ping), (.ping, .pingAck):
      #expect(machine.phase == .goingAway)
    case (.message, .message("call 1", _)):
      break
    case (.end, .end("call 1", _, closeNow: true)):
      #expect(machine.phase == .closed)
    case (.goAway, .goAway(let again)):
      // A second GOAWAY with a lower last id refuses the call the first one let run.
      #expect(again.refused == ["call 1"])
      #expect(again.closeNow)
    case (.call, .protocolError), (.cancel, .protocolError):
      #expect(machine.phase == .closed)
    default:
      Issue.record("\(frame.type) while going away: \(action)")
    }
  }
}
