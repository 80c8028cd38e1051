import DMSMessages
import DMSRPC
import DMSWire
import NIOCore
import SwiftProtobuf

/// One client-side connection: the NIO adapter of `ClientConnectionStateMachine`.
///
/// The state machine holds the protocol's rules (handshake, call table and queue under
/// the server's limit, batches, GOAWAY); this handler feeds it the calls made and the
/// frames read, and performs what it returns: it resumes the callers, runs the
/// deadline and handshake timers, answers PINGs and writes (coalesced: a flush per
/// read batch or event-loop tick, at once for a lone call). Everything here runs on
/// the connection's event loop.
final class ClientConnectionHandler: ChannelInboundHandler {
  typealias InboundIn = ByteBuffer
  typealias OutboundOut = ByteBuffer

  /// How a call's frames reach its caller.
  enum Receiver {
    /// A unary call: the END payload, or the error, to the waiting task (no promise
    /// and callback in between: the task resumes straight from the END frame).
    case unary(UnsafeContinuation<ByteBuffer, any Error>)
    /// A streaming call: each MESSAGE payload, then nil at an OK END (errors thrown).
    case stream(@Sendable (Result<ByteBuffer?, RPCError>) -> Void)
    /// One unary call of a batch: its result goes to the batch's slot `index`.
    case batch(UnaryBatch, index: Int)

    func fail(_ error: any Error) {
      switch self {
      case .unary(let continuation): continuation.resume(throwing: error)
      case .batch(let batch, let index): batch.fail(index, error)
      case .stream(let deliver):
        // Streams are not retried: a call the server did not run fails with its status.
        let rpcError =
          (error as? RPCError) ?? (error as? RetryableCallError)?.rpcError
          ?? RPCError(code: .unavailable, message: "\(error)")
        deliver(.failure(rpcError))
      }
    }

    func succeed(_ payload: ByteBuffer) {
      switch self {
      case .unary(let continuation): continuation.resume(returning: payload)
      case .stream(let deliver): deliver(.success(nil))
      case .batch(let batch, let index): batch.succeed(index, payload)
      }
    }
  }

  /// What the handler keeps of a call: its caller and its deadline timer (running
  /// from when the call was made, queued or sent).
  struct Call {
    let receiver: Receiver
    let timer: Scheduled<Void>?

    func fail(_ error: any Error) {
      timer?.cancel()
      receiver.fail(error)
    }

    func end(_ result: Result<ByteBuffer, RPCError>) {
      timer?.cancel()
      switch result {
      case .success(let payload): receiver.succeed(payload)
      case .failure(let error): receiver.fail(error)
      }
    }
  }

  typealias Machine = ClientConnectionStateMachine<Call, UnaryBatch>

  /// How the connection's handshake (preface and SETTINGS) is bounded and reported.
  struct Handshake {
    /// The server's host, as configured.
    let host: String
    /// The server's port.
    let port: Int
    /// How long the server may take to send its preface and SETTINGS.
    let timeout: Duration

    /// The server, as `host:port`, for messages.
    var server: String { ConnectFailure.address(host: host, port: port) }
  }

  /// The connection's mutable state, in one value: the protocol's state machine and
  /// the I/O around it.
  private struct State {
    var machine = Machine()
    var context: ChannelHandlerContext?
    /// Bytes read and not yet made into frames.
    var inbound: ByteBuffer?
    var flushes = WriteCoalescer()
    /// PINGs sent, by their 8 bytes, waiting for their ACK.
    var pings: [UInt64: EventLoopPromise<Void>] = [:]
    var handshakeTimer: Scheduled<Void>?
  }

  private let decoder: FrameDecoder
  /// The client's executor: the tasks a read resumes run as `endHold(loneCallEnded:)`
  /// says.
  private let executor: EventLoopTaskExecutor
  private let settingsPromise: EventLoopPromise<Dms_Rpc_V1_Settings>
  private let handshake: Handshake
  private let onUnusable: @Sendable () -> Void

  // Only the connection's event loop touches the state, and no access to it is held
  // across a call out of the handler (the context is copied out before each call into
  // NIO, and callers are resumed after the machine has answered), so release builds
  // skip Swift's dynamic exclusivity checks on it; debug builds, which the tests run,
  // keep them.
  #if DEBUG
    private var state = State()
  #else
    @exclusivity(unchecked) private var state = State()
  #endif

  init(
    maxFrameSize: Int,
    executor: EventLoopTaskExecutor,
    settingsPromise: EventLoopPromise<Dms_Rpc_V1_Settings>,
    handshake: Handshake,
    onUnusable: @escaping @Sendable () -> Void
  ) {
    self.decoder = FrameDecoder(maxFrameSize: maxFrameSize, maxMetaSize: 1 << 16)
    self.executor = executor
    self.settingsPromise = settingsPromise
    self.handshake = handshake
    self.onUnusable = onUnusable
  }

  // MARK: Calls (called on the event loop)

  /// Starts a batch of unary calls with consecutive ids from `firstCallID`. When they
  /// all fit under the concurrency limit their frames go out as one write (`frames`,
  /// one buffer) and the batch is one entry of the call table; otherwise each call
  /// starts or queues on its own (its frame a slice of that buffer, ending at its
  /// `frameEnds` offset).
  func startBatch(
    _ batch: UnaryBatch, firstCallID: UInt32, frames: ByteBuffer, frameEnds: [Int], deadline: NIODeadline?
  ) {
    switch state.machine.startBatch(batch, firstCallID: firstCallID, count: frameEnds.count, whole: deadline == nil) {
    case .sendWhole(let alone):
      write(frames, alone: alone)
    case .oneByOne:
      var from = frames.readerIndex
      for (index, end) in frameEnds.enumerated() {
        let frame = frames.getSlice(at: from, length: end - from)!
        from = end
        start(
          callID: firstCallID &+ UInt32(index), frame: frame, deadline: deadline,
          receiver: .batch(batch, index: index))
      }
    }
  }

  /// Starts a call, or queues it while the connection is not ready or the server's
  /// concurrency limit is reached. Its deadline runs from now, queued or not: a queued
  /// call whose deadline passes ends DEADLINE_EXCEEDED and is never sent.
  func start(callID: UInt32, frame: ByteBuffer, deadline: NIODeadline?, receiver: Receiver) {
    let call = Call(receiver: receiver, timer: deadlineTimer(callID, deadline))
    perform(state.machine.startCall(Machine.Pending(callID: callID, frame: frame, call: call)))
  }

  private func perform(_ start: Machine.StartCall) {
    switch start {
    case .send(let frame, let alone):
      write(frame, alone: alone)
    case .queued:
      break
    case .refuse(let call):
      call.fail(RetryableCallError(rpcError: RPCError(code: .unavailable, message: "the connection is closing")))
    }
  }

  private func deadlineTimer(_ callID: UInt32, _ deadline: NIODeadline?) -> Scheduled<Void>? {
    guard let deadline, let loop = state.context?.eventLoop else { return nil }
    let bound = NIOLoopBound(self, eventLoop: loop)
    return loop.scheduleTask(deadline: deadline) {
      bound.value.cancel(
        callID: callID, error: RPCError(code: .deadlineExceeded, message: "the call's deadline passed"))
    }
  }

  /// Sends the queued calls a free slot allows.
  private func startQueued() {
    while let next = state.machine.nextQueued() { perform(next) }
  }

  /// Cancels an open or queued call: CANCEL to the server (if it was sent), `error` to
  /// the caller.
  func cancel(callID: UInt32, error: RPCError) {
    switch state.machine.cancel(callID: callID) {
    case .open(let call):
      call.fail(error)
      writeCancel(callID)
    case .openInBatch(let batch, let index):
      batch.fail(index, error)
      writeCancel(callID)
    case .queued(let call):
      // Never sent: no CANCEL.
      call.fail(error)
    case .none:
      break
    }
  }

  private func writeCancel(_ callID: UInt32) {
    var frame = ByteBuffer()
    FrameHeader.write(type: .cancel, callID: callID, metaLength: 0, payloadLength: 0, into: &frame)
    write(frame)
    startQueued()
  }

  /// Sends a PING; the promise succeeds when its ACK arrives.
  func ping(promise: EventLoopPromise<Void>) {
    guard state.machine.phase == .ready || state.machine.phase == .goingAway else {
      promise.fail(RPCError(code: .unavailable, message: "the connection is not ready"))
      return
    }
    var opaque = UInt64.random(in: 0...UInt64.max)
    while state.pings[opaque] != nil { opaque &+= 1 }
    state.pings[opaque] = promise
    var frame = ByteBuffer()
    FrameHeader.write(type: .ping, callID: 0, metaLength: 0, payloadLength: 8, into: &frame)
    frame.writeInteger(opaque)
    write(frame)
  }

  // MARK: Channel events

  func handlerAdded(context: ChannelHandlerContext) {
    executor.connectionAdded()
    state.context = context
    if context.channel.isActive { sendPreface() }
  }

  func handlerRemoved(context: ChannelHandlerContext) {
    executor.connectionRemoved()
  }

  func channelActive(context: ChannelHandlerContext) {
    sendPreface()
    context.fireChannelActive()
  }

  private func sendPreface() {
    guard let context = state.context, state.machine.phase == .awaitingPreface, state.inbound == nil,
      state.handshakeTimer == nil
    else { return }
    context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: Preface.bytes())), promise: nil)
    let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
    let handshake = self.handshake
    state.handshakeTimer = context.eventLoop.scheduleTask(in: TimeAmount(handshake.timeout)) {
      bound.value.failHandshake(
        ConnectFailure(
          "\(handshake.server) accepted the connection but sent no DMS RPC preface and SETTINGS within "
            + "\(ConnectFailure.seconds(handshake.timeout)) (is it a DMS RPC port?)", retryable: false))
    }
  }

  /// Ends a connection whose handshake failed: connecting fails with `failure`.
  private func failHandshake(_ failure: ConnectFailure) {
    guard state.machine.isHandshaking || state.machine.phase == .closed else { return }
    settingsPromise.fail(failure)
    shutDown(failure.rpcError)
    state.context?.close(promise: nil)
  }

  /// Why the server's first bytes are not a DMS RPC version 1 preface, for a person.
  private static func notAPreface(_ bytes: ByteBuffer, server: String) -> ConnectFailure {
    let head = Array(bytes.readableBytesView.prefix(120))
    if case .preface(let version) = Preface.detect(bytes) {
      return ConnectFailure(
        "\(server) speaks DMS RPC version \(version); this client speaks version \(Preface.version)",
        retryable: false, code: .unimplemented)
    }
    if let first = head.first, first == 0x15 || first == 0x16 {
      return ConnectFailure(
        "not a DMS RPC server in plaintext: \(server) answered with TLS (connect with --tls)", retryable: false)
    }
    let line = head.prefix { $0 != 0x0D && $0 != 0x0A }
    if line.count >= 4, line.allSatisfy({ (0x20..<0x7F).contains($0) }) {
      return ConnectFailure(
        "not a DMS RPC server: \(server) answered \"\(String(decoding: line, as: UTF8.self))\"", retryable: false)
    }
    let hex = head.prefix(Preface.size).map { String($0, radix: 16) }.map { $0.count == 1 ? "0" + $0 : $0 }
    return ConnectFailure(
      "not a DMS RPC server: \(server) answered bytes \(hex.joined(separator: " ")) where a preface belongs",
      retryable: false)
  }

  func channelInactive(context: ChannelHandlerContext) {
    if state.machine.isHandshaking {
      failHandshake(
        ConnectFailure(
          "\(handshake.server) closed the connection before the DMS RPC handshake ended", retryable: true))
    }
    state.handshakeTimer?.cancel()
    shutDown(RPCError(code: .unavailable, message: "the connection to the server closed"))
    context.fireChannelInactive()
  }

  func errorCaught(context: ChannelHandlerContext, error: any Error) {
    if state.machine.isHandshaking {
      failHandshake(
        ConnectFailure.describing(
          error, host: handshake.host, port: handshake.port, connectTimeout: handshake.timeout))
      return
    }
    shutDown(RPCError(code: .unavailable, message: "connection error: \(error)"))
    context.close(promise: nil)
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    // The tasks this read's answers resume run as it ends (at once for a caller making
    // one call at a time, otherwise with those of the loop's other connections).
    executor.hold()
    defer { executor.endHold(loneCallEnded: state.machine.loneCallEnded) }
    var bytes = unwrapInboundIn(data)
    if state.inbound == nil || state.inbound!.readableBytes == 0 {
      state.inbound = bytes
    } else {
      state.inbound!.writeBuffer(&bytes)
    }
    state.flushes.beginReadBatch()
    state.machine.readBegan()
    while state.machine.phase != .closed, state.inbound != nil, state.inbound!.readableBytes > 0 {
      if state.machine.phase == .awaitingPreface {
        let inbound = state.inbound!
        switch state.machine.prefaceReceived(Preface.detect(inbound), available: inbound.readableBytes) {
        case .wait:
          return
        case .accept:
          state.inbound!.moveReaderIndex(forwardBy: Preface.size)
          continue
        case .reject:
          failHandshake(Self.notAPreface(inbound, server: handshake.server))
          return
        }
      }
      let frame: Frame?
      do {
        frame = try decoder.next(from: &state.inbound!)
      } catch {
        fatalProtocolError("malformed frame from the server: \(error.message)")
        return
      }
      guard let frame else { break }
      perform(state.machine.frameReceived(frame))
    }
    // Let go of a used-up receive buffer: NIO reuses it for the next read only when
    // no one else holds it.
    if let buffer = state.inbound, buffer.readableBytes == 0 { state.inbound = nil }
  }

  func channelReadComplete(context: ChannelHandlerContext) {
    if state.flushes.endReadBatch() { context.flush() }
    context.fireChannelReadComplete()
  }

  // MARK: Frames

  private func perform(_ action: Machine.FrameAction) {
    switch action {
    case .none:
      break
    case .settings(let settings, let handshakeDone):
      if handshakeDone {
        state.handshakeTimer?.cancel()
        state.handshakeTimer = nil
        settingsPromise.succeed(settings)
      }
      startQueued()
    case .message(let call, let payload):
      if case .stream(let deliver) = call.receiver { deliver(.success(payload)) }
    case .end(let call, let result, let closeNow):
      call.end(result)
      afterEnd(closeNow: closeNow)
    case .endInBatch(let batch, let index, let result, let closeNow):
      switch result {
      case .success(let payload): batch.succeed(index, payload)
      case .failure(let error): batch.fail(index, error)
      }
      afterEnd(closeNow: closeNow)
    case .ping(let payload):
      var reply = ByteBuffer()
      FrameHeader.write(type: .ping, flags: .ack, callID: 0, metaLength: 0, payloadLength: 8, into: &reply)
      reply.writeImmutableBuffer(payload)
      write(reply)
    case .pingAck(var payload):
      if let opaque = payload.readInteger(as: UInt64.self) { state.pings.removeValue(forKey: opaque)?.succeed() }
    case .goAway(let goAway):
      if goAway.duringHandshake { settingsPromise.fail(goAway.error) }
      onUnusable()
      // Calls the server did not run go back to the client to retry elsewhere.
      let refused = RetryableCallError(rpcError: goAway.error)
      for call in goAway.refused { call.fail(refused) }
      for (batch, index) in goAway.refusedInBatches { batch.fail(index, refused) }
      for call in goAway.queued { call.fail(refused) }
      if goAway.closeNow { state.context?.close(promise: nil) }
    case .protocolError(let message):
      fatalProtocolError(message)
    }
  }

  private func afterEnd(closeNow: Bool) {
    startQueued()
    if closeNow { state.context?.close(promise: nil) }
  }

  private func fatalProtocolError(_ message: String) {
    shutDown(RPCError(code: .internal, message: message))
    state.context?.close(promise: nil)
  }

  /// Fails everything still waiting: the connection is gone.
  private func shutDown(_ error: RPCError) {
    state.handshakeTimer?.cancel()
    state.handshakeTimer = nil
    state.inbound = nil
    let pings = state.pings
    state.pings.removeAll()
    onUnusable()
    guard let lost = state.machine.connectionLost() else {
      for promise in pings.values { promise.fail(error) }
      return
    }
    if !lost.wasReady { settingsPromise.fail(error) }
    for call in lost.open { call.fail(error) }
    for (batch, index) in lost.openInBatches { batch.fail(index, error) }
    // Queued calls were never sent: safe to retry.
    for call in lost.queued { call.fail(RetryableCallError(rpcError: error)) }
    for promise in pings.values { promise.fail(error) }
  }

  // MARK: Writing

  /// Writes `buffer`, flushed at the end of the read batch or the event-loop tick, or
  /// at once when it is `alone` and nothing else waits for a flush: a lone call does
  /// not wait for the tick to end (a task hop). A call is alone when it is the
  /// connection's only open call and the last read batch ended at most one call (when
  /// it ended many, their callers' next calls follow in this tick, and go out
  /// together).
  private func write(_ buffer: ByteBuffer, alone: Bool = false) {
    guard let context = state.context else { return }
    context.write(wrapOutboundOut(buffer), promise: nil)
    if alone {
      if state.flushes.didWriteAlone() { context.flush() }
      return
    }
    guard state.flushes.didWrite() else { return }
    let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
    context.eventLoop.execute {
      let handler = bound.value
      if handler.state.flushes.scheduledFlushRuns() { handler.state.context?.flush() }
    }
  }
}

/// The calls of one `RPCClient.unaryBatch`: collects their results on the event loop
/// and resumes the waiting task when the last one ends. (Which of its calls are open is
/// the state machine's to know; a result for an index that already has one is
/// ignored.)
final class UnaryBatch {
  /// How many calls.
  let count: Int

  private struct Results {
    /// Calls not yet ended.
    var remaining: Int
    var ended: [Bool]
    var payloads: [ByteBuffer]
    var failures: [Int: any Error] = [:]
  }

  // Touched on the connection's event loop only; release builds skip the dynamic
  // exclusivity checks, as the handler's state does.
  #if DEBUG
    private var results: Results
  #else
    @exclusivity(unchecked) private var results: Results
  #endif
  private let continuation: UnsafeContinuation<BatchOutcome, Never>

  init(count: Int, continuation: UnsafeContinuation<BatchOutcome, Never>) {
    self.count = count
    self.results = Results(
      remaining: count, ended: Array(repeating: false, count: count),
      payloads: Array(repeating: ByteBuffer(), count: count))
    self.continuation = continuation
  }

  /// Call `index` answered with `payload` (ignored when it had already ended).
  func succeed(_ index: Int, _ payload: ByteBuffer) {
    guard end(index) else { return }
    results.payloads[index] = payload
    finishIfDone()
  }

  /// Call `index` failed (ignored when it had already ended).
  func fail(_ index: Int, _ error: any Error) {
    guard end(index) else { return }
    results.failures[index] = error
    finishIfDone()
  }

  private func end(_ index: Int) -> Bool {
    guard !results.ended[index] else { return false }
    results.ended[index] = true
    results.remaining -= 1
    return true
  }

  private func finishIfDone() {
    guard results.remaining == 0 else { return }
    continuation.resume(returning: BatchOutcome(payloads: results.payloads, failures: results.failures))
  }
}

/// How the calls of a batch ended, by index: the response payload of each call that
/// succeeded, and the error of each that failed (few: kept apart).
struct BatchOutcome: Sendable {
  /// Each successful call's payload (an empty buffer where the call failed).
  var payloads: [ByteBuffer]
  /// Each failed call's error.
  var failures: [Int: any Error]
}
