import DMSMessages
import DMSRPC
import DMSWire
import NIOCore
import SwiftProtobuf

/// One client-side connection's protocol state, on its event loop: preface,
/// SETTINGS, call table, concurrency limit, PING and GOAWAY.
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
  }

  /// A call made while the connection is not ready or the server's concurrency limit
  /// is reached. Its deadline timer already runs: a call's deadline counts from when
  /// it is made, not from when it is sent.
  private struct PendingCall {
    let callID: UInt32
    let frame: ByteBuffer
    let receiver: Receiver
    let timer: Scheduled<Void>?
  }

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

  private struct OpenCall {
    let receiver: Receiver
    var timer: Scheduled<Void>?
  }

  /// A batch started whole: its calls are the ids `firstCallID ..< firstCallID +
  /// batch.count`, open while the batch says so (no entry per call in `calls`).
  private struct OpenBatch {
    let firstCallID: UInt32
    let batch: UnaryBatch

    /// The index in the batch of `callID`, if it is one of the batch's ids.
    func index(of callID: UInt32) -> Int? {
      let offset = callID &- firstCallID
      return offset < UInt32(batch.count) ? Int(offset) : nil
    }
  }

  private enum Phase { case awaitingPreface, awaitingSettings, ready, goingAway, closed }

  private let decoder: FrameDecoder
  /// The client's executor: the tasks a read resumes run as `endHold(loneCallEnded:)`
  /// says.
  private let executor: EventLoopTaskExecutor
  private let settingsPromise: EventLoopPromise<Dms_Rpc_V1_Settings>
  private let handshake: Handshake
  private let onUnusable: @Sendable () -> Void

  // The connection's state. Only the connection's event loop touches it, and no access
  // to it is held across a call out of the handler, so release builds skip Swift's
  // dynamic exclusivity checks on it (they cost about a tenth of the CPU of a call);
  // debug builds, which the tests run, keep them. The two lists must stay alike.
  // `batchCallsOpen` counts the open calls of `batches`; `endsInReadBatch`, the calls
  // the current (or last) read batch ended.
  #if DEBUG
    private var phase = Phase.awaitingPreface
    private var context: ChannelHandlerContext?
    private var inbound: ByteBuffer?
    private var maxConcurrentCalls = 1
    private var calls: [UInt32: OpenCall] = [:]
    private var batches: [OpenBatch] = []
    private var batchCallsOpen = 0
    private var queue: [PendingCall] = []
    private var queueHead = 0
    private var pings: [UInt64: EventLoopPromise<Void>] = [:]
    private var flushes = WriteCoalescer()
    private var endsInReadBatch = 0
    private var handshakeTimer: Scheduled<Void>?
  #else
    @exclusivity(unchecked) private var phase = Phase.awaitingPreface
    @exclusivity(unchecked) private var context: ChannelHandlerContext?
    @exclusivity(unchecked) private var inbound: ByteBuffer?
    @exclusivity(unchecked) private var maxConcurrentCalls = 1
    @exclusivity(unchecked) private var calls: [UInt32: OpenCall] = [:]
    @exclusivity(unchecked) private var batches: [OpenBatch] = []
    @exclusivity(unchecked) private var batchCallsOpen = 0
    @exclusivity(unchecked) private var queue: [PendingCall] = []
    @exclusivity(unchecked) private var queueHead = 0
    @exclusivity(unchecked) private var pings: [UInt64: EventLoopPromise<Void>] = [:]
    @exclusivity(unchecked) private var flushes = WriteCoalescer()
    @exclusivity(unchecked) private var endsInReadBatch = 0
    @exclusivity(unchecked) private var handshakeTimer: Scheduled<Void>?
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

  /// Calls sent and not yet answered (or cancelled).
  private var openCalls: Int { calls.count + batchCallsOpen }

  /// Starts a batch of unary calls with consecutive ids from `firstCallID`. When they
  /// all fit under the concurrency limit their frames go out as one write (`frames`,
  /// one buffer) and the batch is one entry of the call table; otherwise each call
  /// starts or queues on its own (its frame a slice of that buffer, ending at its
  /// `frameEnds` offset).
  func startBatch(
    _ batch: UnaryBatch, firstCallID: UInt32, frames: ByteBuffer, frameEnds: [Int], deadline: NIODeadline?
  ) {
    guard phase == .ready, queueHead == queue.count, frameEnds.count + openCalls <= maxConcurrentCalls,
      deadline == nil
    else {
      var from = frames.readerIndex
      for (index, end) in frameEnds.enumerated() {
        let frame = frames.getSlice(at: from, length: end - from)!
        from = end
        start(
          callID: firstCallID &+ UInt32(index), frame: frame, deadline: deadline, receiver: .batch(batch, index: index))
      }
      return
    }
    batches.append(OpenBatch(firstCallID: firstCallID, batch: batch))
    batchCallsOpen += batch.count
    write(frames, alone: openCalls == batch.count && endsInReadBatch <= batch.count)
  }

  /// The open batch call `callID`, if it is one: where its batch is in `batches`, and
  /// its index in the batch.
  private func openBatchCall(_ callID: UInt32) -> (slot: Int, index: Int)? {
    for slot in batches.indices {
      if let index = batches[slot].index(of: callID) {
        return batches[slot].batch.isOpen(index) ? (slot, index) : nil
      }
    }
    return nil
  }

  /// Ends the open batch call at `slot`, `index` with `result`.
  private func endBatchCall(slot: Int, index: Int, _ result: Result<ByteBuffer, any Error>) {
    let batch = batches[slot].batch
    switch result {
    case .success(let payload): batch.succeed(index, payload)
    case .failure(let error): batch.fail(index, error)
    }
    batchCallsOpen -= 1
    if batch.remaining == 0 { batches.remove(at: slot) }
  }

  /// Starts a call, or queues it while the connection is not ready or the server's
  /// concurrency limit is reached. Its deadline runs from now, queued or not: a queued
  /// call whose deadline passes ends DEADLINE_EXCEEDED and is never sent.
  func start(callID: UInt32, frame: ByteBuffer, deadline: NIODeadline?, receiver: Receiver) {
    switch phase {
    case .ready where openCalls < maxConcurrentCalls && queueHead == queue.count:
      send(PendingCall(callID: callID, frame: frame, receiver: receiver, timer: deadlineTimer(callID, deadline)))
    case .ready, .awaitingPreface, .awaitingSettings:
      queue.append(
        PendingCall(callID: callID, frame: frame, receiver: receiver, timer: deadlineTimer(callID, deadline)))
    case .goingAway, .closed:
      receiver.fail(RetryableCallError(rpcError: RPCError(code: .unavailable, message: "the connection is closing")))
    }
  }

  private func deadlineTimer(_ callID: UInt32, _ deadline: NIODeadline?) -> Scheduled<Void>? {
    guard let deadline, let loop = context?.eventLoop else { return nil }
    let bound = NIOLoopBound(self, eventLoop: loop)
    return loop.scheduleTask(deadline: deadline) {
      bound.value.cancel(
        callID: callID, error: RPCError(code: .deadlineExceeded, message: "the call's deadline passed"))
    }
  }

  private func send(_ call: PendingCall) {
    calls[call.callID] = OpenCall(receiver: call.receiver, timer: call.timer)
    write(call.frame, alone: openCalls == 1 && endsInReadBatch <= 1)
  }

  /// Cancels an open or queued call: CANCEL to the server, `error` to the caller.
  func cancel(callID: UInt32, error: RPCError) {
    let wasOpen: Bool
    if !batches.isEmpty, let (slot, index) = openBatchCall(callID) {
      endBatchCall(slot: slot, index: index, .failure(error))
      wasOpen = true
    } else if let call = calls.removeValue(forKey: callID) {
      call.timer?.cancel()
      call.receiver.fail(error)
      wasOpen = true
    } else {
      wasOpen = false
    }
    if wasOpen {
      var frame = ByteBuffer()
      FrameHeader.write(type: .cancel, callID: callID, metaLength: 0, payloadLength: 0, into: &frame)
      write(frame)
      startQueued()
    } else if let index = queue[queueHead...].firstIndex(where: { $0.callID == callID }) {
      // Never sent: no CANCEL.
      queue[index].timer?.cancel()
      queue[index].receiver.fail(error)
      queue.remove(at: index)
    }
  }

  /// Sends a PING; the promise succeeds when its ACK arrives.
  func ping(promise: EventLoopPromise<Void>) {
    guard phase == .ready || phase == .goingAway else {
      promise.fail(RPCError(code: .unavailable, message: "the connection is not ready"))
      return
    }
    var opaque = UInt64.random(in: 0...UInt64.max)
    while pings[opaque] != nil { opaque &+= 1 }
    pings[opaque] = promise
    var frame = ByteBuffer()
    FrameHeader.write(type: .ping, callID: 0, metaLength: 0, payloadLength: 8, into: &frame)
    frame.writeInteger(opaque)
    write(frame)
  }

  private func startQueued() {
    while phase == .ready, openCalls < maxConcurrentCalls, queueHead < queue.count {
      let next = queue[queueHead]
      queueHead += 1
      send(next)
    }
    if queueHead == queue.count {
      queue.removeAll(keepingCapacity: queue.count < 1024)
      queueHead = 0
    }
  }

  // MARK: Channel events

  func handlerAdded(context: ChannelHandlerContext) {
    executor.connectionAdded()
    self.context = context
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
    guard let context, phase == .awaitingPreface, inbound == nil, handshakeTimer == nil else { return }
    context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: Preface.bytes())), promise: nil)
    let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
    let handshake = self.handshake
    handshakeTimer = context.eventLoop.scheduleTask(in: TimeAmount(handshake.timeout)) {
      bound.value.failHandshake(
        ConnectFailure(
          "\(handshake.server) accepted the connection but sent no DMS RPC preface and SETTINGS within "
            + "\(ConnectFailure.seconds(handshake.timeout)) (is it a DMS RPC port?)", retryable: false))
    }
  }

  /// Ends a connection whose handshake failed: connecting fails with `failure`.
  private func failHandshake(_ failure: ConnectFailure) {
    guard phase == .awaitingPreface || phase == .awaitingSettings else { return }
    settingsPromise.fail(failure)
    shutDown(failure.rpcError)
    context?.close(promise: nil)
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
    if phase == .awaitingPreface || phase == .awaitingSettings {
      failHandshake(
        ConnectFailure(
          "\(handshake.server) closed the connection before the DMS RPC handshake ended", retryable: true))
    }
    handshakeTimer?.cancel()
    shutDown(RPCError(code: .unavailable, message: "the connection to the server closed"))
    context.fireChannelInactive()
  }

  func errorCaught(context: ChannelHandlerContext, error: any Error) {
    if phase == .awaitingPreface || phase == .awaitingSettings {
      let failure = ConnectFailure.describing(
        error, host: handshake.host, port: handshake.port, connectTimeout: handshake.timeout)
      failHandshake(failure)
      return
    }
    shutDown(RPCError(code: .unavailable, message: "connection error: \(error)"))
    context.close(promise: nil)
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    // The tasks this read's answers resume run as it ends (at once for a caller making
    // one call at a time, otherwise with those of the loop's other connections).
    executor.hold()
    defer { executor.endHold(loneCallEnded: endsInReadBatch == 1 && openCalls == 0) }
    var bytes = unwrapInboundIn(data)
    if inbound == nil || inbound!.readableBytes == 0 {
      inbound = bytes
    } else {
      inbound!.writeBuffer(&bytes)
    }
    flushes.beginReadBatch()
    endsInReadBatch = 0
    while phase != .closed, inbound != nil, inbound!.readableBytes > 0 {
      if phase == .awaitingPreface {
        guard inbound!.readableBytes >= Preface.size else { break }
        guard case .preface(let version) = Preface.detect(inbound!), version == Preface.version else {
          failHandshake(Self.notAPreface(inbound!, server: handshake.server))
          return
        }
        inbound!.moveReaderIndex(forwardBy: Preface.size)
        phase = .awaitingSettings
        continue
      }
      let frame: Frame?
      do {
        frame = try decoder.next(from: &inbound!)
      } catch {
        fatalProtocolError("malformed frame from the server: \(error.message)")
        return
      }
      guard let frame else { break }
      handle(frame)
    }
    // Let go of a used-up receive buffer: NIO reuses it for the next read only when
    // no one else holds it.
    if let buffer = inbound, buffer.readableBytes == 0 { inbound = nil }
  }

  func channelReadComplete(context: ChannelHandlerContext) {
    if flushes.endReadBatch() { context.flush() }
    context.fireChannelReadComplete()
  }

  // MARK: Frames

  private func handle(_ frame: Frame) {
    switch frame.type {
    case .settings:
      guard !frame.flags.contains(.ack) else { return }
      guard let settings = decodeMeta(Dms_Rpc_V1_Settings.self, frame) else { return }
      maxConcurrentCalls = max(1, Int(settings.maxConcurrentCalls))
      if phase == .awaitingSettings {
        phase = .ready
        handshakeTimer?.cancel()
        handshakeTimer = nil
        settingsPromise.succeed(settings)
      }
      startQueued()
    case .message:
      guard let call = calls[frame.callID], case .stream(let deliver) = call.receiver else { return }
      deliver(.success(frame.payload))
    case .end:
      endsInReadBatch += 1
      // Only the code is read for an OK END (the hot path); an error's Status is
      // decoded whole for its message, violations and trailers.
      let code: Int32
      do {
        code = try MetaDecoder.statusCode(frame.meta)
      } catch {
        fatalProtocolError("undecodable END meta from the server")
        return
      }
      var status: Dms_Rpc_V1_Status?
      if code != StatusCode.ok.rawValue {
        guard let decoded = decodeMeta(Dms_Rpc_V1_Status.self, frame) else { return }
        status = decoded
      }
      if !batches.isEmpty, let (slot, index) = openBatchCall(frame.callID) {
        endBatchCall(
          slot: slot, index: index, status.map { .failure(RPCError(wireStatus: $0)) } ?? .success(frame.payload))
      } else {
        guard let call = calls.removeValue(forKey: frame.callID) else { return }
        call.timer?.cancel()
        if let status {
          call.receiver.fail(RPCError(wireStatus: status))
        } else {
          switch call.receiver {
          case .unary(let continuation): continuation.resume(returning: frame.payload)
          case .stream(let deliver): deliver(.success(nil))
          case .batch(let batch, let index): batch.succeed(index, frame.payload)
          }
        }
      }
      startQueued()
      if phase == .goingAway, openCalls == 0 { context?.close(promise: nil) }
    case .ping:
      if frame.flags.contains(.ack) {
        var payload = frame.payload
        if let opaque = payload.readInteger(as: UInt64.self) { pings.removeValue(forKey: opaque)?.succeed() }
      } else {
        var reply = ByteBuffer()
        FrameHeader.write(type: .ping, flags: .ack, callID: 0, metaLength: 0, payloadLength: 8, into: &reply)
        reply.writeImmutableBuffer(frame.payload)
        write(reply)
      }
    case .goAway:
      guard let goAway = decodeMeta(Dms_Rpc_V1_GoAway.self, frame) else { return }
      receiveGoAway(goAway)
    case .call, .cancel:
      fatalProtocolError("the server sent a \(frame.type) frame")
    }
  }

  private func receiveGoAway(_ goAway: Dms_Rpc_V1_GoAway) {
    let reason = "the server is going away (\(StatusCode(rawValue: goAway.code).name): \(goAway.reason))"
    if phase == .awaitingSettings || phase == .awaitingPreface {
      settingsPromise.fail(RPCError(code: StatusCode(rawValue: goAway.code), message: reason))
    }
    phase = .goingAway
    onUnusable()
    // Calls the server did not run go back to the client to retry elsewhere.
    let refused = RetryableCallError(rpcError: RPCError(code: .unavailable, message: reason))
    for (callID, call) in calls where callID > goAway.lastCallID {
      calls.removeValue(forKey: callID)
      call.timer?.cancel()
      call.receiver.fail(refused)
    }
    for slot in batches.indices.reversed() {
      let open = batches[slot]
      for index in 0..<open.batch.count
      where open.batch.isOpen(index) && open.firstCallID &+ UInt32(index) > goAway.lastCallID {
        endBatchCall(slot: slot, index: index, .failure(refused))
      }
    }
    for pending in queue[queueHead...] {
      pending.timer?.cancel()
      pending.receiver.fail(refused)
    }
    queue.removeAll()
    queueHead = 0
    if openCalls == 0 { context?.close(promise: nil) }
  }

  private func decodeMeta<M: SwiftProtobuf.Message>(_ type: M.Type, _ frame: Frame) -> M? {
    do {
      return try frame.meta.withUnsafeReadableBytes { try M.decode(from: $0) }
    } catch {
      fatalProtocolError("undecodable \(frame.type) meta from the server")
      return nil
    }
  }

  private func fatalProtocolError(_ message: String) {
    shutDown(RPCError(code: .internal, message: message))
    context?.close(promise: nil)
  }

  /// Fails everything still waiting: the connection is gone.
  private func shutDown(_ error: RPCError) {
    guard phase != .closed else { return }
    let wasReady = phase == .ready || phase == .goingAway
    phase = .closed
    onUnusable()
    if !wasReady { settingsPromise.fail(error) }
    let open = calls
    calls.removeAll()
    for call in open.values {
      call.timer?.cancel()
      call.receiver.fail(error)
    }
    let openBatches = batches
    batches.removeAll()
    batchCallsOpen = 0
    for open in openBatches {
      for index in 0..<open.batch.count where open.batch.isOpen(index) { open.batch.fail(index, error) }
    }
    // Queued calls were never sent: safe to retry.
    for pending in queue[queueHead...] {
      pending.timer?.cancel()
      pending.receiver.fail(RetryableCallError(rpcError: error))
    }
    queue.removeAll()
    queueHead = 0
    for promise in pings.values { promise.fail(error) }
    pings.removeAll()
    handshakeTimer?.cancel()
    handshakeTimer = nil
    inbound = nil
  }

  // MARK: Writing

  /// Writes `buffer`, flushed at the end of the read batch or the event-loop tick, or
  /// at once when it is `alone` and nothing else waits for a flush: a lone call does
  /// not wait for the tick to end (a task hop). A call is alone when it is the
  /// connection's only open call and the last read batch ended at most one call (when
  /// it ended many, their callers' next calls follow in this tick, and go out
  /// together).
  private func write(_ buffer: ByteBuffer, alone: Bool = false) {
    guard let context else { return }
    context.write(wrapOutboundOut(buffer), promise: nil)
    if alone {
      if flushes.didWriteAlone() { context.flush() }
      return
    }
    guard flushes.didWrite() else { return }
    let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
    context.eventLoop.execute {
      let handler = bound.value
      if handler.flushes.scheduledFlushRuns() { handler.context?.flush() }
    }
  }
}

/// The calls of one `RPCClient.unaryBatch`: collects their results on the event loop
/// and resumes the waiting task when the last one ends.
final class UnaryBatch {
  /// How many calls.
  let count: Int
  // Touched on the connection's event loop only; release builds skip the dynamic
  // exclusivity checks, as the handler's state does. `remaining`: calls not yet ended.
  #if DEBUG
    private(set) var remaining: Int
    private var ended: [Bool]
    private var payloads: [ByteBuffer]
    private var failures: [Int: any Error] = [:]
  #else
    @exclusivity(unchecked) private(set) var remaining: Int
    @exclusivity(unchecked) private var ended: [Bool]
    @exclusivity(unchecked) private var payloads: [ByteBuffer]
    @exclusivity(unchecked) private var failures: [Int: any Error] = [:]
  #endif
  private let continuation: UnsafeContinuation<BatchOutcome, Never>

  init(count: Int, continuation: UnsafeContinuation<BatchOutcome, Never>) {
    self.count = count
    self.remaining = count
    self.ended = Array(repeating: false, count: count)
    self.payloads = Array(repeating: ByteBuffer(), count: count)
    self.continuation = continuation
  }

  /// Whether call `index` has not ended.
  func isOpen(_ index: Int) -> Bool { !ended[index] }

  /// Call `index` answered with `payload` (ignored when it had already ended).
  func succeed(_ index: Int, _ payload: ByteBuffer) {
    guard end(index) else { return }
    payloads[index] = payload
    finishIfDone()
  }

  /// Call `index` failed (ignored when it had already ended).
  func fail(_ index: Int, _ error: any Error) {
    guard end(index) else { return }
    failures[index] = error
    finishIfDone()
  }

  private func end(_ index: Int) -> Bool {
    guard !ended[index] else { return false }
    ended[index] = true
    remaining -= 1
    return true
  }

  private func finishIfDone() {
    if remaining == 0 { continuation.resume(returning: BatchOutcome(payloads: payloads, failures: failures)) }
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
