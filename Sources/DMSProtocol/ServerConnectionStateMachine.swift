import DMSMessages
import DMSRPC
import DMSWire
import NIOCore
import SwiftProtobuf

/// What the server's handler keeps of a call running in a task: the task and its
/// deadline timer (either may be absent: a test's call has neither).
package struct RunningCall {
  package var task: Task<Void, Never>?
  package var deadlineTimer: Scheduled<Void>?

  package init(task: Task<Void, Never>? = nil, deadlineTimer: Scheduled<Void>? = nil) {
    self.task = task
    self.deadlineTimer = deadlineTimer
  }

  /// Stops the call: its timer and its task.
  package func stop() {
    deadlineTimer?.cancel()
    task?.cancel()
  }
}

/// The protocol's rules for one server connection, apart from any I/O: the preface,
/// which frame may come when, the call table and its limit, parked calls, draining,
/// the idle and stall rules, and the memory one connection may hold for a client that
/// does not read.
///
/// A value type: each mutating method takes an event (a frame received, a call ended,
/// a timer fired, writability changed, shutdown) and returns what to do. The handler
/// (`ServerConnectionHandler`) performs those actions; it decodes, dispatches and
/// writes, and keeps no rule of its own. A `RunningCall` is what the handler keeps per
/// call running in a task.
///
/// Not generic: generic code is specialized only within its module, and this is on
/// every call's path. `package`: the unit tests and the fuzz target drive it without a
/// socket.
package struct ServerConnectionStateMachine {
  /// The limits the rules apply.
  package struct Limits: Sendable {
    /// Calls open at once; more are parked (SETTINGS `max_concurrent_calls`).
    package var maxConcurrentCalls: Int
    /// What one connection may hold for a client that does not read (unread answers,
    /// parked calls) before it is closed RESOURCE_EXHAUSTED.
    package var maxBufferedBytes: Int
    /// Parked bytes past which the connection is not read until a call ends.
    package var parkWindow: Int

    package init(maxConcurrentCalls: Int, maxBufferedBytes: Int, parkWindow: Int = 64 << 10) {
      self.maxConcurrentCalls = maxConcurrentCalls
      self.maxBufferedBytes = maxBufferedBytes
      self.parkWindow = parkWindow
    }
  }

  /// Where the connection is in its life.
  package enum Phase: Equatable, Sendable {
    /// Connected; the client's preface has not arrived.
    case awaitingPreface
    /// Calls are taken.
    case open
    /// GOAWAY sent (shutdown) or received: no new calls; close when the open ones end.
    case draining
    /// Closed (or closing): nothing more is done.
    case closed
  }

  /// A call running in a task.
  private struct OpenCall {
    let serial: UInt64
    let requestID: String
    var handle: RunningCall?
  }

  package let limits: Limits
  package private(set) var phase = Phase.awaitingPreface
  /// The highest call id accepted: a GOAWAY's `last_call_id`.
  package private(set) var highestCallID: UInt32 = 0
  private var calls: [UInt32: OpenCall] = [:]
  private var nextSerial: UInt64 = 0
  /// CALL frames read while `maxConcurrentCalls` calls were open, in arrival order;
  /// the handler copies them out of the receive buffer before they come here.
  private var parked: [Frame] = []
  private var parkedHead = 0
  package private(set) var parkedBytes = 0
  /// The channel's writability: while false, the connection is not read.
  private var writable = true
  /// Bytes handed to the channel since it last became unwritable.
  private var unsentBytes = 0
  /// A read the channel asked for while reads waited; done when they may resume.
  private var readPending = false
  /// When the last call ended (or the connection opened), for the idle rule.
  private var lastCallEnded: NIODeadline
  /// A call was answered at once since `lastCallEnded` was last brought up to date:
  /// the clock is read once per read batch, not once per call.
  private var immediateCallEnded = false
  /// Since when a frame has stayed half-received.
  private var partialSince: NIODeadline?

  /// A connection that has just been accepted, at `now`.
  package init(limits: Limits, now: NIODeadline) {
    self.limits = limits
    self.lastCallEnded = now
  }

  // MARK: Queries

  /// Calls running in tasks.
  package var openCalls: Int { calls.count }
  /// Parked CALL frames.
  package var parkedCount: Int { parked.count - parkedHead }
  private var atCallLimit: Bool { calls.count >= limits.maxConcurrentCalls }

  /// Whether reading waits: for a call to end (parked calls past their window), or for
  /// the client to read the answers already sent (the channel not writable).
  package var readsWait: Bool {
    !writable || (parkedCount > 0 && (parkedBytes >= limits.parkWindow || parkedCount >= limits.maxConcurrentCalls))
  }

  // MARK: Preface

  /// What to do with the connection's first bytes.
  package enum PrefaceAction: Equatable {
    /// Too few bytes yet.
    case wait
    /// A version 1 preface: consume it, answer with the preface and SETTINGS, and
    /// start the idle timer; frames may follow.
    case accept
    /// Another version: answer with our preface, then GOAWAY UNIMPLEMENTED, and close.
    case unsupportedVersion(UInt16)
    /// An HTTP request: answer 400 with a pointer to dmsctl, and close.
    case refuseHTTP
    /// TLS or anything else: close without an answer.
    case close
  }

  /// The client's first bytes were classified as `detection`, at `now`.
  package mutating func prefaceReceived(_ detection: Preface.Detection, now: NIODeadline) -> PrefaceAction {
    guard phase == .awaitingPreface else { return .wait }
    switch detection {
    case .incomplete:
      return .wait
    case .preface(let version) where version == Preface.version:
      phase = .open
      lastCallEnded = now
      return .accept
    case .preface(let version):
      phase = .closed
      return .unsupportedVersion(version)
    case .http:
      phase = .closed
      return .refuseHTTP
    case .tls, .garbage:
      phase = .closed
      return .close
    }
  }

  /// The preface timer fired: true when the connection must close (no preface yet).
  package mutating func prefaceTimedOut() -> Bool {
    guard phase == .awaitingPreface else { return false }
    phase = .closed
    return true
  }

  // MARK: Frames

  /// What to do with a frame from the client.
  package enum FrameAction {
    /// Nothing (a frame handled by the rules alone, or ignored).
    case none
    /// Start this call: decode its meta, dispatch it, then `callStarted` or
    /// `callAnsweredAtOnce`.
    case startCall(Frame)
    /// End this call at once with this error, unrun (its meta still names the request
    /// id for the trailers).
    case refuseCall(Frame, RPCError)
    /// The call `callID` is cancelled: stop its handle and end it with this error.
    case cancelCall(callID: UInt32, requestID: String, handle: RunningCall?, error: RPCError)
    /// A parked call was cancelled before it ran: end it with this error.
    case cancelParkedCall(callID: UInt32, error: RPCError)
    /// Answer a PING with ACK and these 8 bytes.
    case pingAck(ByteBuffer)
    /// Acknowledge a SETTINGS.
    case settingsAck
    /// Send GOAWAY with this code and reason (naming `highestCallID`), then close.
    case goAwayAndClose(StatusCode, String)
    /// Close (a client's GOAWAY with no call open).
    case close
  }

  /// The call the client cancels with CANCEL.
  private static var cancelledByClient: RPCError {
    RPCError(code: .cancelled, message: "the call was cancelled by the client")
  }

  /// A frame arrived (after the preface).
  package mutating func frameReceived(_ frame: Frame) -> FrameAction {
    guard phase == .open || phase == .draining else { return .none }
    switch frame.type {
    case .call:
      return callReceived(frame)
    case .cancel:
      if let call = calls.removeValue(forKey: frame.callID) {
        noteCallEnded()
        return .cancelCall(
          callID: frame.callID, requestID: call.requestID, handle: call.handle, error: Self.cancelledByClient)
      }
      if let index = parked[parkedHead...].firstIndex(where: { $0.callID == frame.callID }) {
        let call = parked.remove(at: index)
        parkedBytes -= call.meta.readableBytes + call.payload.readableBytes
        return .cancelParkedCall(callID: call.callID, error: Self.cancelledByClient)
      }
      return .none  // a CANCEL for no open call is ignored
    case .ping:
      return frame.flags.contains(.ack) ? .none : .pingAck(frame.payload)
    case .settings:
      guard Self.decodes(Dms_Rpc_V1_Settings.self, frame.meta) else { return undecodableMeta(frame) }
      return frame.flags.contains(.ack) ? .none : .settingsAck
    case .goAway:
      guard Self.decodes(Dms_Rpc_V1_GoAway.self, frame.meta) else { return undecodableMeta(frame) }
      phase = .draining
      return calls.isEmpty ? closing() : .none
    case .message, .end:
      return protocolViolation(
        .invalidArgument, "a client sends no \(frame.type) frames in version 1 (call id \(frame.callID))")
    }
  }

  private mutating func callReceived(_ frame: Frame) -> FrameAction {
    if calls[frame.callID] != nil
      || (parkedCount > 0 && parked[parkedHead...].contains { $0.callID == frame.callID })
    {
      return protocolViolation(.invalidArgument, "CALL reuses the id \(frame.callID) of an open call")
    }
    if atCallLimit || parkedCount > 0 {
      // Behind the calls already waiting: calls start in the order they came. Copied:
      // a slice would keep the whole receive buffer alive while it waits.
      var copy = frame
      copy.meta = Self.allocator.buffer(buffer: frame.meta)
      copy.payload = Self.allocator.buffer(buffer: frame.payload)
      parked.append(copy)
      parkedBytes += frame.meta.readableBytes + frame.payload.readableBytes
      return checkBufferedBytes(batched: 0)
    }
    return admit(frame)
  }

  /// Whether a call may run: refused while draining or without END_STREAM.
  private mutating func admit(_ frame: Frame) -> FrameAction {
    guard phase == .open else {
      return .refuseCall(frame, Self.shuttingDown)
    }
    highestCallID = max(highestCallID, frame.callID)
    guard frame.flags.contains(.endStream) else {
      return .refuseCall(
        frame,
        RPCError(
          code: .invalidArgument,
          message: "a CALL must carry END_STREAM: client streaming is not supported in version 1"))
    }
    return .startCall(frame)
  }

  /// The frame decoder refused the bytes: GOAWAY with the code the fault calls for.
  package mutating func decodingFailed(_ error: WireError) -> FrameAction {
    protocolViolation(error.kind == .tooLarge ? .resourceExhausted : .invalidArgument, error.message)
  }

  /// A CALL's meta did not decode: GOAWAY INVALID_ARGUMENT.
  package mutating func undecodableCallMeta(callID: UInt32) -> FrameAction {
    protocolViolation(.invalidArgument, "undecodable CALL meta on call id \(callID)")
  }

  private mutating func undecodableMeta(_ frame: Frame) -> FrameAction {
    protocolViolation(.invalidArgument, "undecodable \(frame.type) meta on call id \(frame.callID)")
  }

  private mutating func protocolViolation(_ code: StatusCode, _ reason: String) -> FrameAction {
    guard phase != .closed else { return .none }
    phase = .closed
    return .goAwayAndClose(code, reason)
  }

  private mutating func closing() -> FrameAction {
    phase = .closed
    return .close
  }

  private static var allocator: ByteBufferAllocator { ByteBufferAllocator() }

  private static func decodes<M: SwiftProtobuf.Message>(_ type: M.Type, _ meta: ByteBuffer) -> Bool {
    (try? meta.withUnsafeReadableBytes { try M.decode(from: $0) }) != nil
  }

  // MARK: Calls

  /// A call the handler dispatched runs in a task: it is open from now until
  /// `callCompleted`, `callExpired` or a CANCEL. Returns its serial, which tells a late
  /// completion of an ended call from a new call that reuses its id.
  package mutating func callStarted(callID: UInt32, requestID: String) -> UInt64 {
    nextSerial &+= 1
    calls[callID] = OpenCall(serial: nextSerial, requestID: requestID, handle: nil)
    return nextSerial
  }

  /// The started call's handle (its task, its timer), once the handler has it.
  /// Returns false when the call has already ended (its task finished inline): then
  /// there is nothing to keep.
  package mutating func setHandle(_ handle: RunningCall, callID: UInt32, serial: UInt64) -> Bool {
    guard calls[callID]?.serial == serial else { return false }
    calls[callID]!.handle = handle
    return true
  }

  /// A call was answered or refused without running (immediate answer, unknown
  /// method, undecodable request).
  package mutating func callAnsweredAtOnce() {
    immediateCallEnded = true
  }

  /// A call ends: its handler finished, its deadline passed, or a message it streamed
  /// was over the frame limit. Returns its request id and handle when it was still
  /// open (write its END; stop the handle unless the handler finished), nil when it
  /// had already ended. `afterCallsEnded` says what follows.
  package mutating func endCall(callID: UInt32, serial: UInt64) -> (requestID: String, handle: RunningCall?)? {
    guard let call = calls[callID], call.serial == serial else { return nil }
    calls.removeValue(forKey: callID)
    noteCallEnded()
    return (call.requestID, call.handle)
  }

  /// Whether `callID` with `serial` is open (a streaming call may still send).
  package func isOpen(callID: UInt32, serial: UInt64) -> Bool {
    phase != .closed && calls[callID]?.serial == serial
  }

  private mutating func noteCallEnded() {
    immediateCallEnded = false
    pendingLastCallEnd = true
  }

  /// Set when a call ended and `lastCallEnded` must be brought up to date.
  private var pendingLastCallEnd = false

  /// What follows a call's end: close when draining and none is left; otherwise
  /// parked calls may start (`nextParkedCall`) and reads may resume.
  package enum AfterCallEnd: Equatable {
    case none
    /// Start the parked calls `nextParkedCall` returns, then resume reading if
    /// `readsMayResume` says so.
    case startParkedCalls
    /// Draining and no call is left: close.
    case close
  }

  /// After one or more calls ended, at `now`.
  package mutating func afterCallsEnded(now: NIODeadline) -> AfterCallEnd {
    if pendingLastCallEnd {
      pendingLastCallEnd = false
      if calls.isEmpty { lastCallEnded = now }
    }
    switch phase {
    case .draining:
      if calls.isEmpty {
        phase = .closed
        return .close
      }
      return .none
    case .open where parkedCount > 0:
      return .startParkedCalls
    default:
      return .none
    }
  }

  /// The next parked call that may run now (a slot is free), admitted as a new CALL
  /// would be: start it, or end it as refused.
  package mutating func nextParkedCall() -> FrameAction? {
    guard phase == .open, !atCallLimit, parkedHead < parked.count else {
      if parkedHead == parked.count, parkedHead > 0 {
        parked.removeAll(keepingCapacity: false)
        parkedHead = 0
      }
      return nil
    }
    let frame = parked[parkedHead]
    parkedHead += 1
    parkedBytes -= frame.meta.readableBytes + frame.payload.readableBytes
    return admit(frame)
  }

  /// A read batch ended at `now`: brings the idle clock up to date after calls
  /// answered at once.
  package mutating func readBatchEnded(now: NIODeadline) {
    guard immediateCallEnded else { return }
    immediateCallEnded = false
    if calls.isEmpty { lastCallEnded = now }
  }

  // MARK: Reading and writing

  /// The channel asks to read: true to read now, false to hold the read until reads
  /// may resume (the client is not reading its answers, or parked calls are full).
  package mutating func readRequested() -> Bool {
    if readsWait && phase != .closed {
      readPending = true
      return false
    }
    return true
  }

  /// True when a held read should be done now (nothing makes reads wait any more).
  package mutating func readsMayResume() -> Bool {
    guard readPending, !readsWait, phase != .closed else { return false }
    readPending = false
    return true
  }

  /// The channel's writability changed: true when a held read should be done now.
  package mutating func writabilityChanged(_ isWritable: Bool) -> Bool {
    writable = isWritable
    guard isWritable else { return false }
    unsentBytes = 0
    return readsMayResume()
  }

  /// `count` bytes were handed to the channel; `batched` more wait in the handler's
  /// batch buffer. While the channel is not writable they count against
  /// `maxBufferedBytes`: past it, GOAWAY RESOURCE_EXHAUSTED and close.
  package mutating func bytesHanded(_ count: Int, batched: Int) -> FrameAction {
    guard !writable else { return .none }
    unsentBytes += count
    return checkBufferedBytes(batched: batched)
  }

  /// A parked frame was added (`parkedBytes` grew): the same bound.
  package mutating func checkBufferedBytes(batched: Int) -> FrameAction {
    let held = unsentBytes + parkedBytes + batched
    guard held > limits.maxBufferedBytes else { return .none }
    return protocolViolation(
      .resourceExhausted,
      "the connection holds \(held) bytes its client has not read, over the limit of \(limits.maxBufferedBytes)")
  }

  // MARK: Timers

  /// What the idle check found.
  package enum IdleCheck: Equatable {
    /// Check again after this long.
    case checkAgain(after: TimeAmount)
    /// No call for the idle timeout: GOAWAY UNAVAILABLE "idle", close.
    case goAwayAndClose(StatusCode, String)
    /// The connection is not open: stop checking.
    case stop
  }

  /// The idle timer fired at `now`; `timeout` is the idle timeout.
  package mutating func idleCheck(now: NIODeadline, timeout: TimeAmount) -> IdleCheck {
    guard phase == .open else { return .stop }
    readBatchEnded(now: now)
    let idleFor = now - lastCallEnded
    if calls.isEmpty, idleFor >= timeout {
      phase = .closed
      return .goAwayAndClose(.unavailable, "idle")
    }
    return .checkAgain(after: calls.isEmpty ? timeout - idleFor : timeout)
  }

  /// After reading at `now`: whether a frame is half-received (`partial`). Returns
  /// true when the stall timer should be started (none runs yet: `stallTimerRunning`).
  package mutating func watchForStall(partial: Bool, now: NIODeadline, stallTimerRunning: Bool) -> Bool {
    guard partial, !readsWait, phase != .closed else {
      partialSince = nil
      return false
    }
    if partialSince == nil { partialSince = now }
    return !stallTimerRunning
  }

  /// What the stall timer found.
  package enum StallCheck: Equatable {
    /// The frame stayed half-received for the whole stall timeout: close.
    case close
    /// It moved on meanwhile: check again (if a frame is still partial).
    case watchAgain
    /// Nothing is half-received.
    case none
  }

  /// The stall timer fired at `now`; `timeout` is the frame-stall timeout.
  package mutating func stallCheck(now: NIODeadline, timeout: TimeAmount) -> StallCheck {
    guard let since = partialSince, phase != .closed else { return .none }
    if now - since >= timeout {
      phase = .closed
      return .close
    }
    return .watchAgain
  }

  // MARK: Lifecycle

  /// What a shutdown asks of the connection.
  package enum ShutdownAction {
    /// Nothing to do (already draining or closed).
    case none
    /// No preface yet: close.
    case close
    /// Send GOAWAY (UNAVAILABLE, shutting down, naming `highestCallID`); refuse these
    /// parked calls (their END UNAVAILABLE: to be retried elsewhere); start the grace
    /// timer; close now if `closeNow`.
    case drain(refuse: [Frame], closeNow: Bool)
  }

  /// The server is shutting down.
  package mutating func shutdown() -> ShutdownAction {
    switch phase {
    case .awaitingPreface:
      phase = .closed
      return .close
    case .open:
      phase = .draining
      let refused = Array(parked[parkedHead...])
      parked.removeAll()
      parkedHead = 0
      parkedBytes = 0
      let closeNow = calls.isEmpty
      if closeNow { phase = .closed }
      return .drain(refuse: refused, closeNow: closeNow)
    case .draining, .closed:
      return .none
    }
  }

  /// A call refused while draining: the error its END carries.
  package static var shuttingDown: RPCError {
    RPCError(code: .unavailable, message: "server is shutting down; retry on another connection")
  }

  /// The shutdown grace period ran out: true to close (calls still open).
  package mutating func graceExpired() -> Bool {
    guard phase == .draining else { return false }
    phase = .closed
    return true
  }

  /// The connection is to close (an error, a close asked for): true when it was not
  /// already closed.
  package mutating func close() -> Bool {
    guard phase != .closed else { return false }
    phase = .closed
    return true
  }

  /// The channel closed: every open call's handle, to stop. Nothing is open after.
  package mutating func channelClosed() -> [RunningCall] {
    phase = .closed
    let handles = calls.values.compactMap(\.handle)
    calls.removeAll()
    parked.removeAll()
    parkedHead = 0
    parkedBytes = 0
    return handles
  }
}
