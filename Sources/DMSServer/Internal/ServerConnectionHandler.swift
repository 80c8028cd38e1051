import DMSMessages
import DMSRPC
import DMSWire
import Logging
import NIOCore
import NIOExtras
import SwiftProtobuf

/// One server-side connection: preface, framing, calls, limits and lifecycle.
///
/// Everything here runs on the connection's event loop. A method's immediate hook (a
/// cached read, a health check) answers here, within the read; every other handler
/// runs in a task off the loop, and its result comes back through `NIOLoopBound`.
final class ServerConnectionHandler: ChannelDuplexHandler {
  typealias InboundIn = ByteBuffer
  typealias OutboundIn = ByteBuffer
  typealias OutboundOut = ByteBuffer

  private enum Phase {
    case awaitingPreface
    case open
    /// GOAWAY sent (shutdown) or received: no new calls; close when calls end.
    case draining
    case closed
  }

  private struct OpenCall {
    let serial: UInt64
    let requestID: String
    var task: Task<Void, Never>?
    var deadlineTimer: Scheduled<Void>?
  }

  private let shared: ConnectionShared
  private let decoder: FrameDecoder
  /// Request ids the server makes: a random prefix per connection, then a counter.
  private let requestIDPrefix = Array((String(UInt32.random(in: 0...UInt32.max), radix: 16) + "-").utf8)
  /// Whether each call is logged (at debug level).
  private let logsCalls: Bool

  // The connection's state. Only the connection's event loop touches it, and no access
  // to it is held across a call out of the handler, so release builds skip Swift's
  // dynamic exclusivity checks on it (they cost about a tenth of the CPU of a call);
  // debug builds, which the tests run, keep them. The two lists must stay alike.
  //
  // - `outbound`: frames written since the last flush, in one buffer: one allocation
  //   and one pipeline write per batch of answers, not one per frame.
  // - `metaCache`: the CallMeta of the previous CALL, the method it named and the
  //   context origin made for it.
  // - `immediateCallEnded`: a call answered immediately since `lastCallEnded` was last
  //   brought up to date (once per read batch, not once per call: reading the clock
  //   costs).
  // - `parked`: CALL frames read while `maxConcurrentCalls` calls were open, in arrival
  //   order, copied out of the receive buffer (a parked frame does not pin a 64 KiB
  //   read). They start as calls end. Frames behind them (CANCEL, PING) are still
  //   handled.
  // - `writable`: the channel's writability (its write-buffer water marks). While it is
  //   false the connection is not read: a client that does not read its answers sends
  //   no more calls (TCP backpressure).
  // - `unsentBytes`: bytes handed to the channel since it last became unwritable; with
  //   the parked calls and the batch's buffer they must stay within
  //   `limits.maxBufferedBytes`, or the connection is closed RESOURCE_EXHAUSTED.
  #if DEBUG
    private var logger: Logger
    private var phase = Phase.awaitingPreface
    private var context: ChannelHandlerContext!
    private var inbound: ByteBuffer?
    private var calls: [UInt32: OpenCall] = [:]
    private var highestCallID: UInt32 = 0
    private var peer = "?"
    private var requestIDCounter: UInt32 = 0
    private var nextSerial: UInt64 = 0
    private var processing = false
    private var readPending = false
    private var flushes = WriteCoalescer()
    private var outbound: ByteBuffer?
    private var metaCache = CallMetaCache<(method: RPCMethod, origin: ServerContext.Origin)>()
    private var prefaceTimer: Scheduled<Void>?
    private var idleTimer: Scheduled<Void>?
    private var lastCallEnded = NIODeadline.now()
    private var immediateCallEnded = false
    private var stallTimer: Scheduled<Void>?
    private var partialSince: NIODeadline?
    private var graceTimer: Scheduled<Void>?
    private var parked: [Frame] = []
    private var parkedHead = 0
    private var parkedBytes = 0
    private var writable = true
    private var unsentBytes = 0
  #else
    @exclusivity(unchecked) private var logger: Logger
    @exclusivity(unchecked) private var phase = Phase.awaitingPreface
    @exclusivity(unchecked) private var context: ChannelHandlerContext!
    @exclusivity(unchecked) private var inbound: ByteBuffer?
    @exclusivity(unchecked) private var calls: [UInt32: OpenCall] = [:]
    @exclusivity(unchecked) private var highestCallID: UInt32 = 0
    @exclusivity(unchecked) private var peer = "?"
    @exclusivity(unchecked) private var requestIDCounter: UInt32 = 0
    @exclusivity(unchecked) private var nextSerial: UInt64 = 0
    @exclusivity(unchecked) private var processing = false
    @exclusivity(unchecked) private var readPending = false
    @exclusivity(unchecked) private var flushes = WriteCoalescer()
    @exclusivity(unchecked) private var outbound: ByteBuffer?
    @exclusivity(unchecked) private var metaCache = CallMetaCache<(method: RPCMethod, origin: ServerContext.Origin)>()
    @exclusivity(unchecked) private var prefaceTimer: Scheduled<Void>?
    @exclusivity(unchecked) private var idleTimer: Scheduled<Void>?
    @exclusivity(unchecked) private var lastCallEnded = NIODeadline.now()
    @exclusivity(unchecked) private var immediateCallEnded = false
    @exclusivity(unchecked) private var stallTimer: Scheduled<Void>?
    @exclusivity(unchecked) private var partialSince: NIODeadline?
    @exclusivity(unchecked) private var graceTimer: Scheduled<Void>?
    @exclusivity(unchecked) private var parked: [Frame] = []
    @exclusivity(unchecked) private var parkedHead = 0
    @exclusivity(unchecked) private var parkedBytes = 0
    @exclusivity(unchecked) private var writable = true
    @exclusivity(unchecked) private var unsentBytes = 0
  #endif

  init(shared: ConnectionShared) {
    self.shared = shared
    self.decoder = FrameDecoder(
      maxFrameSize: shared.configuration.limits.maxFrameSize,
      maxMetaSize: shared.configuration.limits.maxMetaSize
    )
    self.logger = shared.logger
    self.logsCalls = shared.logger.logLevel <= .debug
  }

  private var limits: ServerConfiguration.Limits { shared.configuration.limits }
  private var timeouts: ServerConfiguration.Timeouts { shared.configuration.timeouts }
  /// Parked bytes past which the connection is not read until a call ends.
  private static let parkWindow = 64 << 10

  private var atCallLimit: Bool { calls.count >= limits.maxConcurrentCalls }
  private var parkedCount: Int { parked.count - parkedHead }

  /// Whether reading from the socket waits for a call to end (TCP backpressure).
  private var isPaused: Bool {
    parkedCount > 0 && (parkedBytes >= Self.parkWindow || parkedCount >= limits.maxConcurrentCalls)
  }

  /// Whether reading from the socket waits: for a call to end, or for the client to
  /// read the answers already sent.
  private var readsWait: Bool { !writable || isPaused }

  // MARK: Channel events

  func handlerAdded(context: ChannelHandlerContext) {
    self.context = context
    if context.channel.isActive { start(context: context) }
  }

  func channelActive(context: ChannelHandlerContext) {
    start(context: context)
    context.fireChannelActive()
  }

  private func start(context: ChannelHandlerContext) {
    guard prefaceTimer == nil, phase == .awaitingPreface else { return }
    peer = context.channel.remoteAddress?.description ?? "?"
    logger[metadataKey: "peer"] = "\(peer)"
    prefaceTimer = schedule(after: timeouts.preface) { handler in
      guard handler.phase == .awaitingPreface else { return }
      handler.logger.info("closing a connection that sent no preface in time")
      handler.close()
    }
  }

  func handlerRemoved(context: ChannelHandlerContext) {
    self.context = nil
  }

  func channelInactive(context: ChannelHandlerContext) {
    phase = .closed
    for call in calls.values {
      call.task?.cancel()
      call.deadlineTimer?.cancel()
    }
    calls.removeAll()
    for timer in [prefaceTimer, idleTimer, stallTimer, graceTimer] { timer?.cancel() }
    inbound = nil
    context.fireChannelInactive()
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    guard phase != .closed else { return }
    var bytes = unwrapInboundIn(data)
    if inbound == nil || inbound!.readableBytes == 0 {
      inbound = bytes
    } else {
      inbound!.writeBuffer(&bytes)
    }
    flushes.beginReadBatch()
    processInbound()
  }

  func channelReadComplete(context: ChannelHandlerContext) {
    if flushes.endReadBatch() { flushNow() }
    context.fireChannelReadComplete()
  }

  func read(context: ChannelHandlerContext) {
    if readsWait && phase != .closed {
      readPending = true
    } else {
      context.read()
    }
  }

  func channelWritabilityChanged(context: ChannelHandlerContext) {
    writable = context.channel.isWritable
    if writable {
      unsentBytes = 0
      resumeReading()
    }
    context.fireChannelWritabilityChanged()
  }

  /// Reads again after a pause, once nothing makes reads wait.
  private func resumeReading() {
    guard readPending, !readsWait, phase != .closed, let context else { return }
    readPending = false
    context.read()
  }

  func errorCaught(context: ChannelHandlerContext, error: any Error) {
    logger.debug("connection error: \(error)")
    close()
  }

  func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
    if event is ChannelShouldQuiesceEvent {
      beginDraining(code: .unavailable, reason: "server is shutting down")
    } else {
      context.fireUserInboundEventTriggered(event)
    }
  }

  // MARK: Inbound processing

  private func processInbound() {
    guard !processing else { return }
    processing = true
    defer { processing = false }

    while phase != .closed, inbound != nil, inbound!.readableBytes > 0 {
      if phase == .awaitingPreface {
        guard readPreface() else { break }
        continue
      }
      let frame: Frame?
      do {
        frame = try decoder.next(from: &inbound!)
      } catch {
        let code: StatusCode = error.kind == .tooLarge ? .resourceExhausted : .invalidArgument
        goAwayAndClose(code: code, reason: error.message)
        return
      }
      guard let frame else { break }
      handle(frame)
    }
    if let buffer = inbound, buffer.readableBytes == 0 { inbound = nil }
    noteImmediateCallsEnded()
    watchForStall()
  }

  /// Handles the connection's first bytes; returns whether frames may follow.
  private func readPreface() -> Bool {
    switch Preface.detect(inbound!) {
    case .incomplete:
      return false
    case .preface(let version) where version == Preface.version:
      inbound!.moveReaderIndex(forwardBy: Preface.size)
      prefaceTimer?.cancel()
      prefaceTimer = nil
      phase = .open
      var buffer = context.channel.allocator.buffer(capacity: 64 + shared.settingsMeta.count)
      buffer.writeBytes(Preface.bytes())
      FrameHeader.write(
        type: .settings, callID: 0, metaLength: shared.settingsMeta.count, payloadLength: 0, into: &buffer)
      buffer.writeBytes(shared.settingsMeta)
      write(buffer)
      lastCallEnded = .now()
      scheduleIdleCheck(after: timeouts.idle)
      return true
    case .preface(let version):
      write(context.channel.allocator.buffer(bytes: Preface.bytes()))
      goAwayAndClose(
        code: .unimplemented,
        reason: "protocol version \(version) is not supported; this server speaks version \(Preface.version)"
      )
      return false
    case .http:
      logger.info("closing an HTTP request on the DMS RPC port")
      writeHTTPRefusal()
      return false
    case .tls, .garbage:
      logger.info("closing a connection that sent no DMS RPC preface")
      close()
      return false
    }
  }

  private func handle(_ frame: Frame) {
    switch frame.type {
    case .call:
      if atCallLimit || parkedCount > 0 {
        park(frame)
      } else {
        receiveCall(frame)
      }
    case .cancel:
      let cancelled = RPCError(code: .cancelled, message: "the call was cancelled by the client")
      if calls[frame.callID] != nil {
        finish(callID: frame.callID, error: cancelled)
      } else if let index = parked[parkedHead...].firstIndex(where: { $0.callID == frame.callID }) {
        let call = parked.remove(at: index)
        parkedBytes -= call.meta.readableBytes + call.payload.readableBytes
        writeEnd(callID: call.callID, status: cancelled.wireStatus, payload: [])
      }
    case .ping:
      if !frame.flags.contains(.ack) {
        writeFrame(type: .ping, flags: .ack, callID: 0, meta: [], payload: frame.payload)
      }
    case .settings:
      guard decodeMeta(Dms_Rpc_V1_Settings.self, of: frame) != nil else { return }
      if !frame.flags.contains(.ack) {
        writeFrame(type: .settings, flags: .ack, callID: 0, meta: [], payload: ByteBuffer())
      }
    case .goAway:
      guard decodeMeta(Dms_Rpc_V1_GoAway.self, of: frame) != nil else { return }
      phase = .draining
      closeIfDrained()
    case .message, .end:
      goAwayAndClose(
        code: .invalidArgument,
        reason: "a client sends no \(frame.type) frames in version 1 (call id \(frame.callID))"
      )
    }
  }

  private func decodeMeta<M: SwiftProtobuf.Message>(_ type: M.Type, of frame: Frame) -> M? {
    do {
      return try frame.meta.withUnsafeReadableBytes { try M.decode(from: $0) }
    } catch {
      goAwayAndClose(code: .invalidArgument, reason: "undecodable \(frame.type) meta on call id \(frame.callID)")
      return nil
    }
  }

  // MARK: Calls

  private func park(_ frame: Frame) {
    let reused = calls[frame.callID] != nil || parked[parkedHead...].contains { $0.callID == frame.callID }
    guard !reused else {
      goAwayAndClose(code: .invalidArgument, reason: "CALL reuses the id \(frame.callID) of an open call")
      return
    }
    // Copied: a slice would keep the whole receive buffer alive while it waits.
    var copy = frame
    copy.meta = context.channel.allocator.buffer(buffer: frame.meta)
    copy.payload = context.channel.allocator.buffer(buffer: frame.payload)
    parked.append(copy)
    parkedBytes += frame.meta.readableBytes + frame.payload.readableBytes
    checkBufferedBytes()
  }

  /// Starts parked calls while there are free slots.
  private func startParkedCalls() {
    while !atCallLimit, parkedHead < parked.count, phase != .closed {
      let frame = parked[parkedHead]
      parkedHead += 1
      parkedBytes -= frame.meta.readableBytes + frame.payload.readableBytes
      receiveCall(frame)
    }
    if parkedHead == parked.count {
      parked.removeAll(keepingCapacity: false)
      parkedHead = 0
    }
  }

  private func receiveCall(_ frame: Frame) {
    let callID = frame.callID
    guard calls[callID] == nil else {
      goAwayAndClose(code: .invalidArgument, reason: "CALL reuses the id \(callID) of an open call")
      return
    }
    let meta: CallMetaFields
    do {
      meta = try metaCache.decode(frame.meta)
    } catch {
      goAwayAndClose(code: .invalidArgument, reason: "undecodable CALL meta on call id \(callID)")
      return
    }
    let requestID = meta.requestID ?? makeRequestID()
    var trailers: [String: String] { [MetadataKey.requestID: requestID] }

    guard phase == .open else {
      writeEnd(
        callID: callID,
        status: RPCError(
          code: .unavailable, message: "server is shutting down; retry on another connection", trailers: trailers
        ).wireStatus,
        payload: [])
      return
    }
    highestCallID = max(highestCallID, callID)
    guard frame.flags.contains(.endStream) else {
      writeEnd(
        callID: callID,
        status: RPCError(
          code: .invalidArgument,
          message: "a CALL must carry END_STREAM: client streaming is not supported in version 1", trailers: trailers
        ).wireStatus,
        payload: [])
      return
    }
    let method: RPCMethod
    let origin: ServerContext.Origin
    if let cached = metaCache.resolved {
      (method, origin) = cached
    } else if let found = shared.router.method(named: meta.method) {
      method = found
      origin = ServerContext.Origin(method: found.descriptor, metadata: meta.metadata, peer: peer)
      metaCache.resolved = (found, origin)
    } else {
      logger.debug("unknown method", metadata: ["method": "\(meta.method)", "request-id": "\(requestID)"])
      writeEnd(
        callID: callID,
        status: RPCError(code: .unimplemented, message: "unknown method \(meta.method)", trailers: trailers).wireStatus,
        payload: [])
      return
    }
    if logsCalls {
      logger.debug(
        "call", metadata: ["method": "\(method.descriptor)", "call-id": "\(callID)", "request-id": "\(requestID)"])
    }
    let timeout = meta.timeoutMs > 0 ? Duration.milliseconds(Int64(meta.timeoutMs)) : nil
    let callContext = ServerContext(origin: origin, requestID: requestID, deadline: timeout.map { .now + $0 })
    // One decode of the request; a method's immediate hook answers here, within the
    // read (no task, no timer); every other call runs in a task.
    let start: CallStart
    do {
      start = try frame.payload.withUnsafeReadableBytes { bytes in
        try method.begin(payload: bytes, context: callContext)
      }
    } catch {
      let rpcError = Self.callError(error, method: method.descriptor, requestID: requestID, logger: logger)
      writeEnd(callID: callID, requestID: requestID, error: rpcError)
      immediateCallEnded = true
      return
    }
    switch start {
    case .answered(let answer):
      answer.withUnsafeBytes { writeResponse(callID: callID, requestID: requestID, payload: $0) }
      immediateCallEnded = true
    case .run(let prepared):
      startCall(
        callID: callID, method: method.descriptor, context: callContext, timeout: timeout, requestID: requestID,
        prepared: prepared)
    }
  }

  private func startCall(
    callID: UInt32,
    method: MethodDescriptor,
    context callContext: ServerContext,
    timeout: Duration?,
    requestID: String,
    prepared: PreparedCall
  ) {
    nextSerial &+= 1
    let serial = nextSerial
    var timer: Scheduled<Void>?
    if let timeout {
      timer = schedule(after: timeout) { handler in
        handler.expire(callID: callID, serial: serial)
      }
    }
    calls[callID] = OpenCall(serial: serial, requestID: requestID, task: nil, deadlineTimer: timer)

    let eventLoop = context.eventLoop
    let bound = NIOLoopBound(self, eventLoop: eventLoop)
    let sink = CallResponseSink(handler: bound, callID: callID, serial: serial)
    let logger = self.logger
    // Off the event loop: a handler may take time or block (a KDF, a database), and
    // the loop serves every connection on it. Methods that answer without waiting do
    // so above, through their immediate hook.
    let task = Task {
      let result: Result<[UInt8], RPCError>
      do {
        result = .success(try await prepared.run(context: callContext, sink: sink))
      } catch {
        let rpcError = ServerConnectionHandler.callError(error, method: method, requestID: requestID, logger: logger)
        result = .failure(rpcError)
      }
      if eventLoop.inEventLoop {
        bound.value.complete(callID: callID, serial: serial, result: result)
      } else {
        eventLoop.execute { bound.value.complete(callID: callID, serial: serial, result: result) }
      }
    }
    // The task may already have completed (and removed the call) inline.
    if calls[callID]?.serial == serial { calls[callID]!.task = task }
  }

  /// The error a handler's throw ends its call with; an INTERNAL one is logged (by
  /// its type only: the message may hold what must not be logged).
  private static func callError(
    _ error: any Error, method: MethodDescriptor, requestID: String, logger: Logger
  ) -> RPCError {
    let rpcError = RPCError(from: error)
    if rpcError.code == .internal {
      logger.error(
        "handler failed",
        metadata: [
          "method": "\(method)", "request-id": "\(requestID)", "error": "\(String(reflecting: type(of: error)))",
        ]
      )
    }
    return rpcError
  }

  private func complete(callID: UInt32, serial: UInt64, result: Result<[UInt8], RPCError>) {
    guard let call = calls[callID], call.serial == serial else { return }
    calls.removeValue(forKey: callID)
    call.deadlineTimer?.cancel()
    writeResult(callID: callID, requestID: call.requestID, result: result)
    afterFinish()
  }

  /// Writes the END of a call that ran to its end.
  private func writeResult(callID: UInt32, requestID: String, result: Result<[UInt8], RPCError>) {
    switch result {
    case .success(let payload):
      payload.withUnsafeBytes { writeResponse(callID: callID, requestID: requestID, payload: $0) }
    case .failure(let error):
      writeEnd(callID: callID, requestID: requestID, error: error)
    }
  }

  /// Writes a successful call's END, or RESOURCE_EXHAUSTED when the response is over
  /// the frame limit. An immediate answer comes here from its `WireBytes` (held inline
  /// when small: never copied to an array).
  private func writeResponse(callID: UInt32, requestID: String, payload: UnsafeRawBufferPointer) {
    let limit = limits.maxFrameSize - limits.maxMetaSize
    guard payload.count <= limit else {
      writeEnd(callID: callID, requestID: requestID, error: Self.oversizedResponse(payload.count, limit: limit))
      return
    }
    writeOKEnd(callID: callID, requestID: requestID, payload: payload)
  }

  private static func oversizedResponse(_ size: Int, limit: Int) -> RPCError {
    RPCError(code: .resourceExhausted, message: "the response of \(size) bytes is over the frame limit of \(limit)")
  }

  private func expire(callID: UInt32, serial: UInt64) {
    guard let call = calls[callID], call.serial == serial else { return }
    finish(callID: callID, error: RPCError(code: .deadlineExceeded, message: "the call's deadline passed"))
  }

  /// Sends one MESSAGE of a streaming call; nil if the call has ended.
  fileprivate func sendMessage(callID: UInt32, serial: UInt64, bytes: [UInt8]) -> EventLoopFuture<Void>? {
    guard phase != .closed, let call = calls[callID], call.serial == serial else { return nil }
    guard bytes.count <= limits.maxFrameSize else {
      finish(callID: callID, error: Self.oversizedResponse(bytes.count, limit: limits.maxFrameSize))
      return nil
    }
    var buffer = context.channel.allocator.buffer(capacity: FrameHeader.size + bytes.count)
    FrameHeader.write(type: .message, callID: callID, metaLength: 0, payloadLength: bytes.count, into: &buffer)
    buffer.writeBytes(bytes)
    let promise = context.eventLoop.makePromise(of: Void.self)
    writeOutbound()
    hand(buffer, promise: promise)
    requestFlush()
    return promise.futureResult
  }

  /// Ends an open call early (cancelled, deadline passed, response too large).
  private func finish(callID: UInt32, error: RPCError) {
    guard let call = calls.removeValue(forKey: callID) else { return }
    call.deadlineTimer?.cancel()
    call.task?.cancel()
    writeEnd(callID: callID, requestID: call.requestID, error: error)
    afterFinish()
  }

  private func noteImmediateCallsEnded() {
    guard immediateCallEnded else { return }
    immediateCallEnded = false
    if calls.isEmpty { lastCallEnded = .now() }
  }

  private func afterFinish() {
    immediateCallEnded = false
    if calls.isEmpty { lastCallEnded = .now() }
    if phase == .draining {
      closeIfDrained()
      return
    }
    if parkedCount > 0 {
      // A slot opened: parked calls start, and reading may resume.
      startParkedCalls()
      resumeReading()
    }
  }

  /// A request id unique in this process's life with high probability, made
  /// without a system call: the connection's random prefix and a counter.
  private func makeRequestID() -> String {
    requestIDCounter &+= 1
    let counter = requestIDCounter
    let digits = max(1, (32 - counter.leadingZeroBitCount + 3) / 4)
    return String(unsafeUninitializedCapacity: requestIDPrefix.count + digits) { out in
      var index = 0
      for byte in requestIDPrefix {
        out[index] = byte
        index += 1
      }
      for shift in stride(from: (digits - 1) * 4, through: 0, by: -4) {
        out[index] = Self.hexDigits[Int((counter >> UInt32(shift)) & 0xF)]
        index += 1
      }
      return index
    }
  }

  private static let hexDigits = Array("0123456789abcdef".utf8)

  // MARK: Writing

  /// Writes an error END, its Status carrying the request id.
  private func writeEnd(callID: UInt32, requestID: String, error: RPCError) {
    var status = error.wireStatus
    status.trailers[MetadataKey.requestID] = requestID
    writeEnd(callID: callID, status: status, payload: [])
  }

  private func writeEnd(callID: UInt32, status: Dms_Rpc_V1_Status, payload: [UInt8]) {
    let meta = Self.serialize(status, limit: limits.maxMetaSize)
    appendFrame(type: .end, flags: .endStream, callID: callID, metaLength: meta.count, payloadLength: payload.count) {
      $0.writeBytes(meta)
      $0.writeBytes(payload)
    }
  }

  /// The hot path: an OK END whose Status holds only the request id, encoded here
  /// without building a `Status` message and its map.
  private func writeOKEnd(callID: UInt32, requestID: String, payload: UnsafeRawBufferPointer) {
    let metaLength = MetaEncoder.okStatusSize(requestID: requestID)
    guard metaLength <= limits.maxMetaSize else {
      // A client's request id too long to echo: the general path trims it.
      var status = Dms_Rpc_V1_Status()
      status.trailers[MetadataKey.requestID] = requestID
      writeEnd(callID: callID, status: status, payload: Array(payload))
      return
    }
    guard prepareOutbound(for: FrameWriter.okEndSize(requestID: requestID, payloadCount: payload.count)) else { return }
    FrameWriter.writeOKEnd(callID: callID, requestID: requestID, payload: payload, into: &outbound!)
    requestFlush()
  }

  /// Appends a frame to `outbound`; `body` writes its meta and payload.
  private func appendFrame(
    type: FrameType, flags: FrameFlags, callID: UInt32, metaLength: Int, payloadLength: Int,
    _ body: (inout ByteBuffer) -> Void
  ) {
    guard prepareOutbound(for: FrameHeader.size + metaLength + payloadLength) else { return }
    FrameHeader.write(
      type: type, flags: flags, callID: callID, metaLength: metaLength, payloadLength: payloadLength,
      into: &outbound!)
    body(&outbound!)
    requestFlush()
  }

  /// Makes `outbound` ready for a frame of `size` bytes; false once the handler is
  /// removed.
  private func prepareOutbound(for size: Int) -> Bool {
    // The common case, checked without copying the buffer or the context (each copy
    // a reference count): there is room in the batch's buffer.
    if context != nil, let writable = outbound?.writableBytes, writable >= size { return true }
    guard let context else { return false }
    if let pending = outbound, pending.writableBytes < size, size > Self.outboundChunk {
      // A large frame goes in a buffer of its own, not into a growing copy.
      outbound = nil
      hand(pending)
    }
    if outbound == nil {
      outbound = context.channel.allocator.buffer(capacity: max(size, Self.outboundChunk))
    }
    return true
  }

  /// The first capacity of `outbound`.
  private static let outboundChunk = 4096

  /// Hands `outbound` to the channel (not yet flushed).
  private func writeOutbound() {
    guard let pending = outbound, context != nil else { return }
    outbound = nil
    hand(pending)
  }

  /// Hands `buffer` to the channel (not yet flushed). While the channel is not
  /// writable (the client is not reading), its bytes count against
  /// `limits.maxBufferedBytes`.
  private func hand(_ buffer: ByteBuffer, promise: EventLoopPromise<Void>? = nil) {
    guard let context else {
      promise?.fail(ChannelError.ioOnClosedChannel)
      return
    }
    context.write(wrapOutboundOut(buffer), promise: promise)
    if !writable {
      unsentBytes += buffer.readableBytes
      checkBufferedBytes()
    }
  }

  /// Closes the connection with GOAWAY RESOURCE_EXHAUSTED when what it holds for its
  /// client (answers the client has not read, parked calls) is over
  /// `limits.maxBufferedBytes`.
  private func checkBufferedBytes() {
    let held = unsentBytes + parkedBytes + (outbound?.readableBytes ?? 0)
    guard held > limits.maxBufferedBytes, phase != .closed else { return }
    logger.warning(
      "closing a connection that holds too much for its client",
      metadata: ["bytes": "\(held)", "limit": "\(limits.maxBufferedBytes)"])
    goAwayAndClose(
      code: .resourceExhausted,
      reason: "the connection holds \(held) bytes its client has not read, over the limit of \(limits.maxBufferedBytes)"
    )
  }

  private func flushNow() {
    writeOutbound()
    context?.flush()
  }

  /// The status's bytes, trimmed to `limit` (the meta limit both sides keep): a
  /// handler's long message or many violations must not make an unsendable frame.
  static func serialize(_ status: Dms_Rpc_V1_Status, limit: Int) -> [UInt8] {
    let bytes: [UInt8] = (try? status.serializedBytes()) ?? []
    guard bytes.count > limit else { return bytes }
    var trimmed = status
    trimmed.message = String(status.message.prefix(1024))
    trimmed.violations = []
    var shown = 0
    for violation in status.violations {
      trimmed.violations.append(violation)
      if ((try? trimmed.serializedBytes() as [UInt8])?.count ?? .max) > limit - 256 {
        trimmed.violations.removeLast()
        break
      }
      shown += 1
    }
    if shown < status.violations.count {
      trimmed.message += " (\(status.violations.count - shown) more violations not shown)"
    }
    return (try? trimmed.serializedBytes()) ?? []
  }

  private func writeFrame(type: FrameType, flags: FrameFlags, callID: UInt32, meta: [UInt8], payload: ByteBuffer) {
    appendFrame(type: type, flags: flags, callID: callID, metaLength: meta.count, payloadLength: payload.readableBytes)
    {
      $0.writeBytes(meta)
      $0.writeImmutableBuffer(payload)
    }
  }

  /// Writes bytes that are not one frame (the preface, a refusal), in order with
  /// the frames around them.
  private func write(_ buffer: ByteBuffer) {
    guard context != nil else { return }
    writeOutbound()
    hand(buffer)
    requestFlush()
  }

  /// Flushes once per read batch, or once per event-loop tick for writes that come
  /// from handlers finishing outside one.
  private func requestFlush() {
    guard flushes.didWrite(), let context else { return }
    let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
    context.eventLoop.execute {
      let handler = bound.value
      if handler.flushes.scheduledFlushRuns() { handler.flushNow() }
    }
  }

  // MARK: Lifecycle

  private func goAwayAndClose(code: StatusCode, reason: String) {
    guard phase != .closed else { return }
    logger.info("GOAWAY", metadata: ["code": "\(code.name)", "reason": "\(reason)"])
    writeGoAway(code: code, reason: reason)
    close()
  }

  private func writeGoAway(code: StatusCode, reason: String) {
    var goAway = Dms_Rpc_V1_GoAway()
    goAway.lastCallID = highestCallID
    goAway.code = code.rawValue
    goAway.reason = reason
    writeFrame(type: .goAway, flags: [], callID: 0, meta: (try? goAway.serializedBytes()) ?? [], payload: ByteBuffer())
  }

  /// Stops taking calls: GOAWAY now, close when the open calls end or the grace
  /// period runs out.
  private func beginDraining(code: StatusCode, reason: String) {
    switch phase {
    case .open:
      phase = .draining
      writeGoAway(code: code, reason: reason)
      // Parked calls were not run: they end UNAVAILABLE, to be retried elsewhere.
      for frame in parked[parkedHead...] { receiveCall(frame) }
      parked.removeAll()
      parkedHead = 0
      parkedBytes = 0
      if flushes.takePending() { flushNow() }
      graceTimer = schedule(after: timeouts.shutdownGrace) { handler in
        handler.logger.info("closing a connection whose calls outran the shutdown grace period")
        handler.close()
      }
      closeIfDrained()
    case .awaitingPreface:
      close()
    case .draining, .closed:
      break
    }
  }

  private func closeIfDrained() {
    if phase == .draining, calls.isEmpty { close() }
  }

  private func close() {
    guard phase != .closed, let context else { return }
    phase = .closed
    _ = flushes.takePending()
    flushNow()
    context.close(promise: nil)
  }

  private func scheduleIdleCheck(after delay: Duration) {
    idleTimer = schedule(after: delay) { handler in
      guard handler.phase == .open else { return }
      handler.noteImmediateCallsEnded()
      let idleFor = NIODeadline.now() - handler.lastCallEnded
      let limit = TimeAmount(handler.timeouts.idle)
      if handler.calls.isEmpty, idleFor >= limit {
        handler.goAwayAndClose(code: .unavailable, reason: "idle")
      } else {
        let remaining = handler.calls.isEmpty ? limit - idleFor : limit
        handler.scheduleIdleCheck(after: Duration(remaining))
      }
    }
  }

  /// Closes the connection when a frame stays half-received too long.
  private func watchForStall() {
    guard let buffer = inbound, buffer.readableBytes > 0, !isPaused, phase != .closed else {
      partialSince = nil
      return
    }
    if partialSince == nil { partialSince = .now() }
    guard stallTimer == nil else { return }
    stallTimer = schedule(after: timeouts.frameStall) { handler in
      handler.stallTimer = nil
      guard let since = handler.partialSince else { return }
      let waited = NIODeadline.now() - since
      if waited >= TimeAmount(handler.timeouts.frameStall) {
        handler.logger.info("closing a connection whose frame stalled half way")
        handler.close()
      } else {
        handler.watchForStall()
      }
    }
  }

  private func schedule(after delay: Duration, _ body: @escaping (ServerConnectionHandler) -> Void) -> Scheduled<Void> {
    let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
    let boundBody = NIOLoopBound(body, eventLoop: context.eventLoop)
    return context.eventLoop.scheduleTask(in: TimeAmount(delay)) { boundBody.value(bound.value) }
  }

  private func writeHTTPRefusal() {
    let address = context.channel.localAddress
    let hostPort = "\(address?.ipAddress ?? "HOST"):\(address?.port ?? ServerConfiguration.defaultPort)"
    let body = """
      This port speaks DMS RPC, a binary protocol, not HTTP.
      Reach it with the dmsctl command-line probe:

          dmsctl --server \(hostPort) info

      The protocol is described in docs/PROTOCOL.md.

      """
    let response =
      "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
      + "Content-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n" + body
    write(context.channel.allocator.buffer(string: response))
    close()
  }
}

/// Streams a call's MESSAGE frames through its connection, one write at a time.
private struct CallResponseSink: ResponseSink {
  let handler: NIOLoopBound<ServerConnectionHandler>
  let callID: UInt32
  let serial: UInt64

  func send(_ serializedMessage: [UInt8]) async throws {
    try Task.checkCancellation()
    let handler = self.handler
    let (callID, serial) = (self.callID, self.serial)
    try await handler.eventLoop.flatSubmit {
      handler.value.sendMessage(callID: callID, serial: serial, bytes: serializedMessage)
        ?? handler.eventLoop.makeFailedFuture(CancellationError())
    }.get()
  }
}
