import DMSMessages
import DMSProtocol
import DMSRPC
import DMSWire
import NIOCore
import SwiftProtobuf
import Testing

/// The server connection's rules, driven without a socket: every frame type in every
/// phase, every limit at its edge.
@Suite("Server connection state machine")
struct ServerConnectionStateMachineTests {
  typealias Machine = ServerConnectionStateMachine
  typealias FrameAction = Machine.FrameAction

  static let start = NIODeadline.uptimeNanoseconds(1_000_000_000)

  static func machine(
    maxConcurrentCalls: Int = 4, maxBufferedBytes: Int = 1 << 20, parkWindow: Int = 64 << 10
  ) -> Machine {
    Machine(
      limits: .init(
        maxConcurrentCalls: maxConcurrentCalls, maxBufferedBytes: maxBufferedBytes, parkWindow: parkWindow),
      now: start)
  }

  /// A machine past the preface.
  static func open(maxConcurrentCalls: Int = 4, maxBufferedBytes: Int = 1 << 20, parkWindow: Int = 64 << 10) -> Machine
  {
    var machine = machine(
      maxConcurrentCalls: maxConcurrentCalls, maxBufferedBytes: maxBufferedBytes, parkWindow: parkWindow)
    let r1 = machine.prefaceReceived(.preface(version: 1), now: start)
    #expect(r1 == .accept)
    return machine
  }

  static func call(_ id: UInt32, payload: Int = 0, endStream: Bool = true) -> Frame {
    var meta = Dms_Rpc_V1_CallMeta()
    meta.method = "/dms.test.v1.Test/Echo"
    return Frame(
      type: .call, flags: endStream ? .endStream : [], callID: id,
      meta: ByteBuffer(bytes: try! meta.serializedBytes() as [UInt8]),
      payload: ByteBuffer(repeating: 1, count: payload))
  }

  static func meta(_ message: some SwiftProtobuf.Message) -> ByteBuffer {
    ByteBuffer(bytes: try! message.serializedBytes() as [UInt8])
  }

  /// Every frame type a peer can send, well formed.
  static let everyFrame: [Frame] = [
    call(1),
    Frame(type: .message, callID: 1),
    Frame(type: .end, flags: .endStream, callID: 1),
    Frame(type: .cancel, callID: 1),
    Frame(type: .ping, callID: 0, payload: ByteBuffer(bytes: [1, 2, 3, 4, 5, 6, 7, 8])),
    Frame(type: .goAway, callID: 0, meta: meta(Dms_Rpc_V1_GoAway())),
    Frame(type: .settings, callID: 0, meta: meta(Dms_Rpc_V1_Settings())),
  ]

  // MARK: Preface

  @Test(
    "the preface decides the connection's start",
    arguments: [
      (Preface.Detection.incomplete, Machine.PrefaceAction.wait, Machine.Phase.awaitingPreface),
      (.preface(version: 1), .accept, .open),
      (.preface(version: 2), .unsupportedVersion(2), .closed),
      (.http, .refuseHTTP, .closed),
      (.tls, .close, .closed),
      (.garbage, .close, .closed),
    ])
  func preface(detection: Preface.Detection, action: Machine.PrefaceAction, phase: Machine.Phase) {
    var machine = Self.machine()
    let r2 = machine.prefaceReceived(detection, now: Self.start)
    #expect(r2 == action)
    #expect(machine.phase == phase)
    // A second preface is not looked at.
    let r3 = machine.prefaceReceived(.preface(version: 1), now: Self.start)
    #expect(r3 == (phase == .awaitingPreface ? .accept : .wait))
  }

  @Test("no preface in time closes; after the preface the timer does nothing")
  func prefaceTimeout() {
    var waiting = Self.machine()
    let r4 = waiting.prefaceTimedOut()
    #expect(r4)
    #expect(waiting.phase == .closed)
    var open = Self.open()
    let r5 = open.prefaceTimedOut()
    #expect(!r5)
    #expect(open.phase == .open)
  }

  @Test("frames before the preface or after the close do nothing", arguments: everyFrame)
  func framesOutsideOpenPhases(frame: Frame) {
    var waiting = Self.machine()
    guard case .none = waiting.frameReceived(frame) else {
      Issue.record("acted on a \(frame.type) before the preface")
      return
    }
    var closed = Self.open()
    let r6 = closed.close()
    #expect(r6)
    guard case .none = closed.frameReceived(frame) else {
      Issue.record("acted on a \(frame.type) after the close")
      return
    }
  }

  // MARK: Each frame type, open

  @Test("CALL with END_STREAM starts; without it the call is refused INVALID_ARGUMENT")
  func call() {
    var machine = Self.open()
    guard case .startCall(let frame) = machine.frameReceived(Self.call(7)) else {
      Issue.record("not started")
      return
    }
    #expect(frame.callID == 7)
    #expect(machine.highestCallID == 7)
    guard case .refuseCall(_, let error) = machine.frameReceived(Self.call(9, endStream: false)) else {
      Issue.record("not refused")
      return
    }
    #expect(error.code == .invalidArgument)
    #expect(machine.highestCallID == 9)
  }

  @Test("MESSAGE and END from a client: GOAWAY INVALID_ARGUMENT", arguments: [FrameType.message, .end])
  func clientMayNotSend(type: FrameType) {
    var machine = Self.open()
    guard case .goAwayAndClose(let code, let reason) = machine.frameReceived(Frame(type: type, callID: 3)) else {
      Issue.record("not refused")
      return
    }
    #expect(code == .invalidArgument)
    #expect(reason.contains("call id 3"))
    #expect(machine.phase == .closed)
  }

  @Test("PING is answered with its bytes; a PING ACK is not")
  func ping() {
    var machine = Self.open()
    let bytes = ByteBuffer(bytes: [1, 2, 3, 4, 5, 6, 7, 8])
    guard case .pingAck(let echoed) = machine.frameReceived(Frame(type: .ping, callID: 0, payload: bytes)) else {
      Issue.record("no ACK")
      return
    }
    #expect(echoed == bytes)
    guard case .none = machine.frameReceived(Frame(type: .ping, flags: .ack, callID: 0, payload: bytes)) else {
      Issue.record("answered an ACK")
      return
    }
  }

  @Test("SETTINGS is acknowledged, an ACK is not; undecodable SETTINGS or GOAWAY meta: GOAWAY")
  func settingsAndMeta() {
    var machine = Self.open()
    guard case .settingsAck = machine.frameReceived(Frame(type: .settings, callID: 0)) else {
      Issue.record("no ACK")
      return
    }
    guard case .none = machine.frameReceived(Frame(type: .settings, flags: .ack, callID: 0)) else {
      Issue.record("answered an ACK")
      return
    }
    for type in [FrameType.settings, .goAway] {
      var broken = Self.open()
      let garbage = ByteBuffer(bytes: [0xFF, 0xFF, 0xFF])
      guard
        case .goAwayAndClose(.invalidArgument, let reason) = broken.frameReceived(
          Frame(type: type, callID: 0, meta: garbage))
      else {
        Issue.record("undecodable \(type) meta accepted")
        continue
      }
      #expect(reason.contains("undecodable"))
    }
  }

  @Test("a client's GOAWAY: close at once with no call open, else when the last one ends")
  func clientGoAway() {
    var idle = Self.open()
    guard case .close = idle.frameReceived(Frame(type: .goAway, callID: 0)) else {
      Issue.record("did not close")
      return
    }
    var busy = Self.open()
    guard case .startCall = busy.frameReceived(Self.call(1)) else { return }
    let serial = busy.callStarted(callID: 1, requestID: "r1")
    guard case .none = busy.frameReceived(Frame(type: .goAway, callID: 0)) else {
      Issue.record("closed with a call open")
      return
    }
    #expect(busy.phase == .draining)
    // New calls are refused UNAVAILABLE while draining.
    guard case .refuseCall(_, let error) = busy.frameReceived(Self.call(3)) else {
      Issue.record("a call started while draining")
      return
    }
    #expect(error.code == .unavailable)
    let r7 = busy.endCall(callID: 1, serial: serial)
    #expect(r7?.requestID == "r1")
    let r8 = busy.afterCallsEnded(now: Self.start)
    #expect(r8 == .close)
    #expect(busy.phase == .closed)
  }

  @Test("CANCEL ends an open call with its handle, a parked one unrun; one for no call is ignored")
  func cancel() {
    var machine = Self.open(maxConcurrentCalls: 1)
    guard case .startCall = machine.frameReceived(Self.call(1)) else { return }
    let serial = machine.callStarted(callID: 1, requestID: "r1")
    let r9 = machine.setHandle(RunningCall(), callID: 1, serial: serial)
    #expect(r9)
    guard case .none = machine.frameReceived(Self.call(2)) else {
      Issue.record("not parked")
      return
    }
    #expect(machine.parkedCount == 1)
    guard case .cancelParkedCall(2, let parkedError) = machine.frameReceived(Frame(type: .cancel, callID: 2)) else {
      Issue.record("parked call not cancelled")
      return
    }
    #expect(parkedError.code == .cancelled)
    #expect(machine.parkedCount == 0)
    guard case .cancelCall(1, "r1", .some, let error) = machine.frameReceived(Frame(type: .cancel, callID: 1)) else {
      Issue.record("open call not cancelled")
      return
    }
    #expect(error.code == .cancelled)
    #expect(machine.openCalls == 0)
    // Its late completion is dropped, and a CANCEL for it now is ignored.
    let r10 = machine.endCall(callID: 1, serial: serial)
    #expect(r10 == nil)
    guard case .none = machine.frameReceived(Frame(type: .cancel, callID: 1)) else {
      Issue.record("acted on a CANCEL for no call")
      return
    }
  }

  @Test("a CALL reusing the id of an open or a parked call: GOAWAY INVALID_ARGUMENT", arguments: [1, 2])
  func reusedID(id: UInt32) {
    var machine = Self.open(maxConcurrentCalls: 1)
    guard case .startCall = machine.frameReceived(Self.call(1)) else { return }
    _ = machine.callStarted(callID: 1, requestID: "r1")
    _ = machine.frameReceived(Self.call(2))  // parked
    guard case .goAwayAndClose(.invalidArgument, let reason) = machine.frameReceived(Self.call(id)) else {
      Issue.record("reuse accepted")
      return
    }
    #expect(reason.contains("reuses the id \(id)"))
  }

  @Test("an id is free again once its call ended; the old call's serial no longer matches")
  func idReuseAfterEnd() {
    var machine = Self.open()
    guard case .startCall = machine.frameReceived(Self.call(5)) else { return }
    let first = machine.callStarted(callID: 5, requestID: "a")
    let r11 = machine.endCall(callID: 5, serial: first)
    #expect(r11 != nil)
    guard case .startCall = machine.frameReceived(Self.call(5)) else {
      Issue.record("a finished call's id was refused")
      return
    }
    let second = machine.callStarted(callID: 5, requestID: "b")
    #expect(first != second)
    let r12 = machine.endCall(callID: 5, serial: first)
    #expect(r12 == nil)
    #expect(machine.isOpen(callID: 5, serial: second))
    let r13 = machine.endCall(callID: 5, serial: second)
    #expect(r13?.requestID == "b")
  }

  @Test("wire errors: an oversized frame is RESOURCE_EXHAUSTED, a malformed one INVALID_ARGUMENT")
  func decodingFailures() {
    var large = Self.open()
    guard case .goAwayAndClose(.resourceExhausted, _) = large.decodingFailed(WireError(.tooLarge, "big")) else {
      Issue.record("wrong answer")
      return
    }
    var malformed = Self.open()
    guard case .goAwayAndClose(.invalidArgument, "bad") = malformed.decodingFailed(WireError(.malformed, "bad"))
    else {
      Issue.record("wrong answer")
      return
    }
    var meta = Self.open()
    guard case .goAwayAndClose(.invalidArgument, let reason) = meta.undecodableCallMeta(callID: 4) else { return }
    #expect(reason == "undecodable CALL meta on call id 4")
    // Only the first violation acts.
    guard case .none = meta.decodingFailed(WireError(.malformed, "again")) else {
      Issue.record("a second GOAWAY")
      return
    }
  }

  // MARK: Limits at their edges

  @Test("the concurrency limit: calls up to it start, the next is parked and starts when one ends")
  func concurrencyLimit() {
    let limit = 3
    var machine = Self.open(maxConcurrentCalls: limit)
    var serials: [UInt32: UInt64] = [:]
    for id in 1...UInt32(limit) {
      guard case .startCall = machine.frameReceived(Self.call(id)) else {
        Issue.record("call \(id) under the limit did not start")
        return
      }
      serials[id] = machine.callStarted(callID: id, requestID: "r\(id)")
    }
    guard case .none = machine.frameReceived(Self.call(10)) else {
      Issue.record("call over the limit not parked")
      return
    }
    #expect(machine.parkedCount == 1)
    let r14 = machine.nextParkedCall()
    #expect(r14 == nil, "no slot is free yet")
    _ = machine.endCall(callID: 1, serial: serials[1]!)
    let r15 = machine.afterCallsEnded(now: Self.start)
    #expect(r15 == .startParkedCalls)
    guard case .startCall(let frame) = machine.nextParkedCall() else {
      Issue.record("parked call did not start")
      return
    }
    #expect(frame.callID == 10)
    _ = machine.callStarted(callID: 10, requestID: "r10")
    let r16 = machine.nextParkedCall()
    #expect(r16 == nil)
    #expect(machine.openCalls == limit)
  }

  @Test("parked calls start in arrival order, behind each other even when a slot is free")
  func parkedOrder() {
    var machine = Self.open(maxConcurrentCalls: 1)
    guard case .startCall = machine.frameReceived(Self.call(1)) else { return }
    let serial = machine.callStarted(callID: 1, requestID: "r1")
    for id: UInt32 in [2, 3, 4] { _ = machine.frameReceived(Self.call(id)) }
    _ = machine.endCall(callID: 1, serial: serial)
    var started: [UInt32] = []
    _ = machine.afterCallsEnded(now: Self.start)
    while let action = machine.nextParkedCall() {
      guard case .startCall(let frame) = action else { break }
      started.append(frame.callID)
      // Ends at once (an immediate answer): the slot is free for the next.
      machine.callAnsweredAtOnce()
    }
    #expect(started == [2, 3, 4])
    #expect(machine.parkedCount == 0)
  }

  @Test(
    "reading waits when parked calls reach the limit's count or the park window, and resumes when one starts",
    arguments: [(count: 2, payload: 0), (count: 1, payload: 1024)])
  func parkWindow(count: Int, payload: Int) {
    var machine = Self.open(maxConcurrentCalls: 2, parkWindow: 1000)
    var serials: [UInt64] = []
    for id in 1...UInt32(2) {
      _ = machine.frameReceived(Self.call(id))
      serials.append(machine.callStarted(callID: id, requestID: "r"))
    }
    let r17 = machine.readRequested()
    #expect(r17)
    for index in 0..<count {
      _ = machine.frameReceived(Self.call(UInt32(10 + index), payload: payload))
    }
    #expect(machine.readsWait)
    let r18 = machine.readRequested()
    #expect(!r18, "a read while parked calls are full is held")
    let r19 = machine.readsMayResume()
    #expect(!r19)
    _ = machine.endCall(callID: 1, serial: serials[0])
    _ = machine.afterCallsEnded(now: Self.start)
    if case .startCall(let frame) = machine.nextParkedCall() {
      _ = machine.callStarted(callID: frame.callID, requestID: "p")
    }
    #expect(!machine.readsWait)
    let r20 = machine.readsMayResume()
    #expect(r20, "the held read is done now")
    let r21 = machine.readsMayResume()
    #expect(!r21, "once")
  }

  @Test("a client not reading: reads wait while the channel is not writable, and resume when it is")
  func writability() {
    var machine = Self.open()
    let r22 = machine.writabilityChanged(false)
    #expect(!r22)
    #expect(machine.readsWait)
    let r23 = machine.readRequested()
    #expect(!r23)
    let r24 = machine.writabilityChanged(true)
    #expect(r24, "the held read is done when writable again")
    let r25 = machine.readRequested()
    #expect(r25)
    // Writable again with no read held: nothing to do.
    let r26 = machine.writabilityChanged(false)
    #expect(!r26)
    let r27 = machine.writabilityChanged(true)
    #expect(!r27)
  }

  @Test("the memory bound: bytes handed while not writable, up to the limit and one past it")
  func bufferedBytes() {
    let limit = 10_000
    var machine = Self.open(maxBufferedBytes: limit)
    // While writable nothing is counted.
    guard case .none = machine.bytesHanded(limit * 10, batched: 0) else {
      Issue.record("counted while writable")
      return
    }
    _ = machine.writabilityChanged(false)
    guard case .none = machine.bytesHanded(limit - 100, batched: 100) else {
      Issue.record("closed at the limit")
      return
    }
    // Writable again: the count starts over.
    _ = machine.writabilityChanged(true)
    _ = machine.writabilityChanged(false)
    guard case .none = machine.bytesHanded(limit, batched: 0) else {
      Issue.record("the count did not start over")
      return
    }
    guard case .goAwayAndClose(.resourceExhausted, let reason) = machine.bytesHanded(1, batched: 0) else {
      Issue.record("not closed past the limit")
      return
    }
    #expect(reason.contains("over the limit of \(limit)"))
    #expect(machine.phase == .closed)
  }

  @Test("parked calls count against the memory bound")
  func parkedBytesBound() {
    var machine = Self.open(maxConcurrentCalls: 1, maxBufferedBytes: 2_000, parkWindow: 1 << 20)
    _ = machine.frameReceived(Self.call(1))
    _ = machine.callStarted(callID: 1, requestID: "r")
    guard case .none = machine.frameReceived(Self.call(2, payload: 1_000)) else {
      Issue.record("closed under the bound")
      return
    }
    guard case .goAwayAndClose(.resourceExhausted, _) = machine.frameReceived(Self.call(3, payload: 1_000)) else {
      Issue.record("not closed past the bound")
      return
    }
  }

  // MARK: Timers

  @Test("idle: GOAWAY UNAVAILABLE \"idle\" after the timeout with no call; a call open keeps it")
  func idle() {
    let timeout = TimeAmount.seconds(10)
    var machine = Self.open()
    let r28 = machine.idleCheck(now: Self.start + .seconds(4), timeout: timeout)
    #expect(r28 == .checkAgain(after: .seconds(6)))
    guard case .startCall = machine.frameReceived(Self.call(1)) else { return }
    let serial = machine.callStarted(callID: 1, requestID: "r")
    let r29 = machine.idleCheck(now: Self.start + .seconds(20), timeout: timeout)
    #expect(r29 == .checkAgain(after: timeout))
    _ = machine.endCall(callID: 1, serial: serial)
    _ = machine.afterCallsEnded(now: Self.start + .seconds(20))
    let r30 = machine.idleCheck(now: Self.start + .seconds(29), timeout: timeout)
    #expect(r30 == .checkAgain(after: .seconds(1)))
    let r31 = machine.idleCheck(now: Self.start + .seconds(30), timeout: timeout)
    #expect(r31 == .goAwayAndClose(.unavailable, "idle"))
    let r32 = machine.idleCheck(now: Self.start + .seconds(31), timeout: timeout)
    #expect(r32 == .stop)
  }

  @Test("idle: calls answered at once count as activity, as of the read batch")
  func idleAfterImmediateCalls() {
    let timeout = TimeAmount.seconds(10)
    var machine = Self.open()
    _ = machine.frameReceived(Self.call(1))
    machine.callAnsweredAtOnce()
    machine.readBatchEnded(now: Self.start + .seconds(8))
    let r33 = machine.idleCheck(now: Self.start + .seconds(10), timeout: timeout)
    #expect(r33 == .checkAgain(after: .seconds(8)))
  }

  @Test("a frame half-received for the stall timeout closes; one that moved on is watched again")
  func stall() {
    let timeout = TimeAmount.seconds(30)
    var machine = Self.open()
    let r34 = machine.watchForStall(partial: false, now: Self.start, stallTimerRunning: false)
    #expect(!r34)
    let r35 = machine.stallCheck(now: Self.start + timeout, timeout: timeout)
    #expect(r35 == .none)
    let r36 = machine.watchForStall(partial: true, now: Self.start, stallTimerRunning: false)
    #expect(r36)
    let r37 = machine.watchForStall(partial: true, now: Self.start + .seconds(1), stallTimerRunning: true)
    #expect(!r37)
    let r38 = machine.stallCheck(now: Self.start + .seconds(29), timeout: timeout)
    #expect(r38 == .watchAgain)
    let r39 = machine.stallCheck(now: Self.start + timeout, timeout: timeout)
    #expect(r39 == .close)
    #expect(machine.phase == .closed)
    // While reads wait (the server chose not to read), a partial frame is not a stall.
    var waiting = Self.open()
    _ = waiting.writabilityChanged(false)
    let r40 = waiting.watchForStall(partial: true, now: Self.start, stallTimerRunning: false)
    #expect(!r40)
    let r41 = waiting.stallCheck(now: Self.start + timeout, timeout: timeout)
    #expect(r41 == .none)
  }

  // MARK: Lifecycle

  @Test("shutdown: before the preface close; open with calls drain; parked calls are refused; twice is once")
  func shutdown() {
    var waiting = Self.machine()
    guard case .close = waiting.shutdown() else {
      Issue.record("did not close")
      return
    }
    var idle = Self.open()
    guard case .drain(let none, closeNow: true) = idle.shutdown() else {
      Issue.record("an idle connection did not close")
      return
    }
    #expect(none.isEmpty)
    var busy = Self.open(maxConcurrentCalls: 1)
    _ = busy.frameReceived(Self.call(1))
    let serial = busy.callStarted(callID: 1, requestID: "r")
    _ = busy.frameReceived(Self.call(2))
    guard case .drain(let refused, closeNow: false) = busy.shutdown() else {
      Issue.record("did not drain")
      return
    }
    #expect(refused.map(\.callID) == [2])
    #expect(busy.parkedCount == 0)
    guard case .none = busy.shutdown() else {
      Issue.record("a second shutdown acted")
      return
    }
    let r42 = busy.endCall(callID: 1, serial: serial)
    #expect(r42 != nil)
    let r43 = busy.afterCallsEnded(now: Self.start)
    #expect(r43 == .close)
  }

  @Test("the grace period closes a draining connection, and nothing else")
  func grace() {
    var machine = Self.open()
    let r44 = machine.graceExpired()
    #expect(!r44)
    _ = machine.frameReceived(Self.call(1))
    _ = machine.callStarted(callID: 1, requestID: "r")
    _ = machine.shutdown()
    let r45 = machine.graceExpired()
    #expect(r45)
    #expect(machine.phase == .closed)
  }

  @Test("when the channel closes every open call's handle is returned to stop")
  func channelClosed() {
    var machine = Self.open()
    for id in 1...UInt32(3) {
      _ = machine.frameReceived(Self.call(id))
      let serial = machine.callStarted(callID: id, requestID: "r")
      let r46 = machine.setHandle(RunningCall(), callID: id, serial: serial)
      #expect(r46)
    }
    let r47 = machine.channelClosed()
    #expect(r47.count == 3)
    #expect(machine.openCalls == 0)
    #expect(machine.phase == .closed)
    let r48 = machine.setHandle(RunningCall(), callID: 1, serial: 1)
    #expect(!r48, "no handle is kept for an ended call")
  }

  @Test("every frame type while draining: calls refused UNAVAILABLE, the rest as when open", arguments: everyFrame)
  func framesWhileDraining(frame: Frame) {
    var machine = Self.open(maxConcurrentCalls: 4)
    _ = machine.frameReceived(Self.call(9))
    _ = machine.callStarted(callID: 9, requestID: "r9")
    guard case .drain(_, closeNow: false) = machine.shutdown() else {
      Issue.record("not draining")
      return
    }
    let action = machine.frameReceived(frame)
    switch (frame.type, action) {
    case (.call, .refuseCall(_, let error)):
      #expect(error.code == .unavailable)
    case (.message, .goAwayAndClose(.invalidArgument, _)), (.end, .goAwayAndClose(.invalidArgument, _)):
      #expect(machine.phase == .closed)
    case (.cancel, .none), (.ping, .pingAck), (.settings, .settingsAck), (.goAway, .none):
      #expect(machine.phase == .draining)
    default:
      Issue.record("\(frame.type) while draining: \(action)")
    }
  }
}
