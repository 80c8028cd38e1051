import DMSMessages
import DMSRPC
import DMSWire
import NIOCore
import SwiftProtobuf

/// The protocol's rules for one client connection, apart from any I/O: the handshake
/// (the server's preface, then SETTINGS), the call table under the server's
/// concurrency limit with its queue, batches of calls sent whole, which calls a
/// GOAWAY refused, and when a write may be flushed alone.
///
/// A value type: each mutating method takes an event (a call made or cancelled, a
/// frame received, the connection lost) and returns what to do. The client's handler
/// (`ClientConnectionHandler`) performs it: it resumes the callers, runs the deadline
/// timers and writes. `Call` is what the handler keeps per call (the caller's
/// continuation, the deadline timer), `Batch` per batch of calls (the object that
/// collects their results); the machine never looks inside either.
///
/// In the client's module, not in `DMSProtocol` with the server's: generic code is
/// specialized for `Call` and `Batch` only within its module, and this is on every
/// call's path (unspecialized, W2 and W4 lost about a third of their calls/s).
package struct ClientConnectionStateMachine<Call, Batch> {
  /// Where the connection is in its life.
  package enum Phase: Equatable, Sendable {
    /// The client's preface is sent; the server's has not arrived.
    case awaitingPreface
    /// The server's preface arrived; its SETTINGS have not.
    case awaitingSettings
    /// Calls may be made.
    case ready
    /// The server sent GOAWAY: no new calls; close when the open ones end.
    case goingAway
    /// Closed.
    case closed
  }

  /// A call made and not yet sent (the connection not ready, or the limit reached).
  package struct Pending {
    package let callID: UInt32
    package let frame: ByteBuffer
    package let call: Call

    package init(callID: UInt32, frame: ByteBuffer, call: Call) {
      self.callID = callID
      self.frame = frame
      self.call = call
    }
  }

  /// A batch sent whole: its calls are the ids `firstCallID ..< firstCallID + count`,
  /// one entry of the table for all of them.
  private struct OpenBatch {
    let firstCallID: UInt32
    var open: OpenSet
    var remaining: Int
    let batch: Batch

    /// The index in the batch of `callID`, if it is one of the batch's ids.
    func index(of callID: UInt32) -> Int? {
      let offset = callID &- firstCallID
      return offset < UInt32(open.count) ? Int(offset) : nil
    }
  }

  /// Which calls of a batch are open: bits in the value for up to 64 calls (no
  /// allocation per batch), an array past that.
  private struct OpenSet {
    let count: Int
    private var bits: UInt64
    private var more: [Bool]?

    init(allOpen count: Int) {
      self.count = count
      if count <= 64 {
        bits = count == 64 ? .max : (1 << UInt64(count)) - 1
        more = nil
      } else {
        bits = 0
        more = Array(repeating: true, count: count)
      }
    }

    subscript(index: Int) -> Bool {
      more?[index] ?? (bits & (1 << UInt64(index)) != 0)
    }

    mutating func close(_ index: Int) {
      if more != nil {
        more![index] = false
      } else {
        bits &= ~(1 << UInt64(index))
      }
    }

    var indices: Range<Int> { 0..<count }
  }

  package private(set) var phase = Phase.awaitingPreface
  /// The server's SETTINGS `max_concurrent_calls` (1 until they arrive).
  package private(set) var maxConcurrentCalls = 1
  private var calls: [UInt32: Call] = [:]
  private var batches: [OpenBatch] = []
  /// The open calls of `batches`.
  private var batchCallsOpen = 0
  private var queue: [Pending] = []
  private var queueHead = 0
  /// Calls the current (or last) read batch ended.
  private var endsInReadBatch = 0

  package init() {}

  /// Calls sent and not yet answered (or cancelled).
  package var openCalls: Int { calls.count + batchCallsOpen }
  /// Calls waiting to be sent.
  package var queuedCalls: Int { queue.count - queueHead }

  // MARK: Handshake

  /// What the server's first bytes mean.
  package enum PrefaceResult: Equatable {
    /// Too few bytes yet.
    case wait
    /// A version 1 preface: consume it; SETTINGS come next.
    case accept
    /// Not a version 1 preface: the handshake fails (say what the bytes were).
    case reject
  }

  /// The server's first bytes arrived, classified as `detection` (`available` bytes).
  package mutating func prefaceReceived(_ detection: Preface.Detection, available: Int) -> PrefaceResult {
    guard phase == .awaitingPreface else { return .wait }
    guard available >= Preface.size else { return .wait }
    guard case .preface(let version) = detection, version == Preface.version else {
      phase = .closed
      return .reject
    }
    phase = .awaitingSettings
    return .accept
  }

  /// Whether the handshake is still under way (the connect timeout applies).
  package var isHandshaking: Bool { phase == .awaitingPreface || phase == .awaitingSettings }

  // MARK: Making calls

  /// What to do with a call made.
  package enum StartCall {
    /// Write its frame now; flush at once when `alone` (the connection's only call, with
    /// no answers ending around it), else with the writes around it.
    case send(ByteBuffer, alone: Bool)
    /// Queued until the connection is ready or a call ends.
    case queued
    /// The connection is closing: fail it, as not sent (safe to retry elsewhere).
    case refuse(Call)
  }

  /// A call is made.
  package mutating func startCall(_ pending: Pending) -> StartCall {
    switch phase {
    case .ready where openCalls < maxConcurrentCalls && queueHead == queue.count:
      return send(pending)
    case .ready, .awaitingPreface, .awaitingSettings:
      queue.append(pending)
      return .queued
    case .goingAway, .closed:
      return .refuse(pending.call)
    }
  }

  private mutating func send(_ pending: Pending) -> StartCall {
    calls[pending.callID] = pending.call
    return .send(pending.frame, alone: openCalls == 1 && endsInReadBatch <= 1)
  }

  /// The next queued call that may be sent now (a slot is free), to write as `send` says.
  package mutating func nextQueued() -> StartCall? {
    guard phase == .ready, openCalls < maxConcurrentCalls, queueHead < queue.count else {
      if queueHead == queue.count, queueHead > 0 {
        queue.removeAll(keepingCapacity: queue.count < 1024)
        queueHead = 0
      }
      return nil
    }
    let next = queue[queueHead]
    queueHead += 1
    return send(next)
  }

  /// What to do with a batch of `count` calls with consecutive ids from `firstCallID`.
  package enum StartBatch: Equatable {
    /// Write the batch's frames as one write (flushed at once when `alone`): the batch
    /// is one entry of the call table.
    case sendWhole(alone: Bool)
    /// Start each call on its own (`startCall`), each queuing as it must.
    case oneByOne
  }

  /// A batch of calls is made; `whole` is false when its calls need their own entries
  /// (a deadline timer each).
  package mutating func startBatch(_ batch: Batch, firstCallID: UInt32, count: Int, whole: Bool) -> StartBatch {
    guard whole, phase == .ready, queueHead == queue.count, count + openCalls <= maxConcurrentCalls else {
      return .oneByOne
    }
    batches.append(
      OpenBatch(firstCallID: firstCallID, open: OpenSet(allOpen: count), remaining: count, batch: batch))
    batchCallsOpen += count
    return .sendWhole(alone: openCalls == count && endsInReadBatch <= count)
  }

  /// What a cancellation (the caller's, or its deadline) ends.
  package enum Cancel {
    /// An open call: fail it, send CANCEL, then send what `nextQueued` gives.
    case open(Call)
    /// An open call of a batch: the same, for its index.
    case openInBatch(Batch, index: Int)
    /// A queued call, never sent: fail it (no CANCEL).
    case queued(Call)
    /// Nothing: the call had ended.
    case none
  }

  /// The call `callID` is cancelled (by its caller or its deadline).
  package mutating func cancel(callID: UInt32) -> Cancel {
    if !batches.isEmpty, let (slot, index) = openBatchCall(callID) {
      return .openInBatch(endBatchCall(slot: slot, index: index), index: index)
    }
    if let call = calls.removeValue(forKey: callID) {
      return .open(call)
    }
    if let index = queue[queueHead...].firstIndex(where: { $0.callID == callID }) {
      return .queued(queue.remove(at: index).call)
    }
    return .none
  }

  /// The open batch call `callID`, if it is one: where its batch is, and its index.
  private func openBatchCall(_ callID: UInt32) -> (slot: Int, index: Int)? {
    for slot in batches.indices {
      if let index = batches[slot].index(of: callID) {
        return batches[slot].open[index] ? (slot, index) : nil
      }
    }
    return nil
  }

  /// Ends the open batch call at `slot`, `index`; returns its batch.
  private mutating func endBatchCall(slot: Int, index: Int) -> Batch {
    let batch = batches[slot].batch
    batches[slot].open.close(index)
    batches[slot].remaining -= 1
    batchCallsOpen -= 1
    if batches[slot].remaining == 0 { batches.remove(at: slot) }
    return batch
  }

  // MARK: Frames from the server

  /// What a frame from the server means.
  package enum FrameAction {
    /// Nothing (an ACK, a frame for a call no longer open).
    case none
    /// The server's SETTINGS: the handshake is done when `handshakeDone`; then send
    /// what `nextQueued` gives.
    case settings(Dms_Rpc_V1_Settings, handshakeDone: Bool)
    /// A streamed message for this call.
    case message(Call, ByteBuffer)
    /// This call ended with this result (its END); then send what `nextQueued` gives,
    /// and close when `closeNow` (going away, nothing left open).
    case end(Call, Result<ByteBuffer, RPCError>, closeNow: Bool)
    /// A batch's call ended, the same.
    case endInBatch(Batch, index: Int, Result<ByteBuffer, RPCError>, closeNow: Bool)
    /// The server pings: answer with ACK and these 8 bytes.
    case ping(ByteBuffer)
    /// The ACK of our PING carrying these 8 bytes.
    case pingAck(ByteBuffer)
    /// The server goes away: fail `refused` calls and batch calls (not run: safe to
    /// retry) and the queued calls; fail the handshake when `duringHandshake`; close
    /// now when `closeNow`.
    case goAway(GoAway)
    /// The server broke the protocol: fail everything and close.
    case protocolError(String)
  }

  /// What a GOAWAY ends.
  package struct GoAway {
    package let error: RPCError
    package let refused: [Call]
    package let refusedInBatches: [(batch: Batch, index: Int)]
    package let queued: [Call]
    package let duringHandshake: Bool
    package let closeNow: Bool
  }

  /// A read from the server begins: its ENDs are counted (for `alone`).
  package mutating func readBegan() {
    endsInReadBatch = 0
  }

  /// Whether the last read ended exactly one call and none is left open: the caller
  /// making one call at a time may run at once.
  package var loneCallEnded: Bool { endsInReadBatch == 1 && openCalls == 0 }

  /// A frame arrived after the server's preface.
  package mutating func frameReceived(_ frame: Frame) -> FrameAction {
    guard phase != .closed, phase != .awaitingPreface else { return .none }
    switch frame.type {
    case .settings:
      guard !frame.flags.contains(.ack) else { return .none }
      guard let settings = Self.decode(Dms_Rpc_V1_Settings.self, frame.meta) else {
        return protocolError("undecodable SETTINGS meta from the server")
      }
      maxConcurrentCalls = max(1, Int(settings.maxConcurrentCalls))
      let handshakeDone = phase == .awaitingSettings
      if handshakeDone { phase = .ready }
      return .settings(settings, handshakeDone: handshakeDone)
    case .message:
      guard let call = calls[frame.callID] else { return .none }
      return .message(call, frame.payload)
    case .end:
      return endReceived(frame)
    case .ping:
      return frame.flags.contains(.ack) ? .pingAck(frame.payload) : .ping(frame.payload)
    case .goAway:
      guard let goAway = Self.decode(Dms_Rpc_V1_GoAway.self, frame.meta) else {
        return protocolError("undecodable GOAWAY meta from the server")
      }
      return goAwayReceived(goAway)
    case .call, .cancel:
      return protocolError("the server sent a \(frame.type) frame")
    }
  }

  private mutating func endReceived(_ frame: Frame) -> FrameAction {
    endsInReadBatch += 1
    // Only the code is read for an OK END (the hot path); an error's Status is
    // decoded whole for its message, violations and trailers.
    let code: Int32
    do {
      code = try MetaDecoder.statusCode(frame.meta)
    } catch {
      return protocolError("undecodable END meta from the server")
    }
    var result = Result<ByteBuffer, RPCError>.success(frame.payload)
    if code != StatusCode.ok.rawValue {
      guard let status = Self.decode(Dms_Rpc_V1_Status.self, frame.meta) else {
        return protocolError("undecodable END meta from the server")
      }
      result = .failure(RPCError(wireStatus: status))
    }
    if !batches.isEmpty, let (slot, index) = openBatchCall(frame.callID) {
      let batch = endBatchCall(slot: slot, index: index)
      return .endInBatch(batch, index: index, result, closeNow: closesWhenDone())
    }
    guard let call = calls.removeValue(forKey: frame.callID) else { return .none }
    return .end(call, result, closeNow: closesWhenDone())
  }

  /// Going away and nothing left open: the connection closes.
  private mutating func closesWhenDone() -> Bool {
    guard phase == .goingAway, openCalls == 0 else { return false }
    phase = .closed
    return true
  }

  private mutating func goAwayReceived(_ goAway: Dms_Rpc_V1_GoAway) -> FrameAction {
    let reason = "the server is going away (\(StatusCode(rawValue: goAway.code).name): \(goAway.reason))"
    let duringHandshake = isHandshaking
    phase = .goingAway
    // Calls the server did not run go back to their callers, to retry elsewhere.
    var refused: [Call] = []
    for (callID, call) in calls where callID > goAway.lastCallID {
      calls.removeValue(forKey: callID)
      refused.append(call)
    }
    var refusedInBatches: [(batch: Batch, index: Int)] = []
    for slot in batches.indices.reversed() {
      let open = batches[slot]
      for index in open.open.indices where open.open[index] && open.firstCallID &+ UInt32(index) > goAway.lastCallID {
        refusedInBatches.append((endBatchCall(slot: slot, index: index), index))
      }
    }
    let queued = queue[queueHead...].map(\.call)
    queue.removeAll()
    queueHead = 0
    let closeNow = openCalls == 0
    if closeNow { phase = .closed }
    return .goAway(
      GoAway(
        error: RPCError(
          code: duringHandshake ? StatusCode(rawValue: goAway.code) : .unavailable, message: reason),
        refused: refused, refusedInBatches: refusedInBatches, queued: queued, duringHandshake: duringHandshake,
        closeNow: closeNow))
  }

  private mutating func protocolError(_ message: String) -> FrameAction {
    phase = .closed
    return .protocolError(message)
  }

  private static func decode<M: SwiftProtobuf.Message>(_ type: M.Type, _ meta: ByteBuffer) -> M? {
    try? meta.withUnsafeReadableBytes { try M.decode(from: $0) }
  }

  // MARK: The end

  /// Everything still waiting when the connection is lost.
  package struct Lost {
    /// Whether the handshake had completed (else connecting fails).
    package let wasReady: Bool
    /// Sent calls: their outcome is unknown.
    package let open: [Call]
    package let openInBatches: [(batch: Batch, index: Int)]
    /// Never sent: safe to retry.
    package let queued: [Call]
  }

  /// The connection is lost or closed: what to fail. Nil when it already was.
  package mutating func connectionLost() -> Lost? {
    guard phase != .closed || !calls.isEmpty || batchCallsOpen > 0 || queueHead < queue.count else { return nil }
    let wasReady = phase == .ready || phase == .goingAway
    phase = .closed
    let open = Array(calls.values)
    calls.removeAll()
    var openInBatches: [(batch: Batch, index: Int)] = []
    for batch in batches {
      for index in batch.open.indices where batch.open[index] { openInBatches.append((batch.batch, index)) }
    }
    batches.removeAll()
    batchCallsOpen = 0
    let queued = queue[queueHead...].map(\.call)
    queue.removeAll()
    queueHead = 0
    return Lost(wasReady: wasReady, open: open, openInBatches: openInBatches, queued: queued)
  }
}
