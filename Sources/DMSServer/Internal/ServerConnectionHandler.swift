import DMSMessages
import DMSProtocol
import DMSRPC
import DMSWire
import Logging
import NIOCore
import NIOExtras
import SwiftProtobuf

/// One server-side connection: the NIO adapter of `ServerConnectionStateMachine`.
///
/// The state machine holds the protocol's rules; this handler feeds it the channel's
/// events and performs what it returns: it decodes frames and call meta, dispatches
/// calls to their methods, writes answers (coalesced: one buffer and one flush per
/// batch), and runs the timers. Everything here runs on the connection's event loop.
/// A method's immediate hook (a cached read, a health check) answers here, within the
/// read; every other handler runs in a task off the loop, and its result comes back
/// through `NIOLoopBound`.
final class ServerConnectionHandler: ChannelDuplexHandler {
  typealias InboundIn = ByteBuffer
  typealias OutboundIn = ByteBuffer
  typealias OutboundOut = ByteBuffer

  /// The connection's mutable state, in one value: the protocol's state machine and
  /// the I/O around it.
  private struct State {
    var machine: ServerConnectionStateMachine
    var context: ChannelHandlerContext?
    var logger: Logger
    var peer = "?"
    /// Bytes read and not yet made into frames.
    var inbound: ByteBuffer?
    /// Frames written since the last flush, in one buffer: one allocation and one
    /// pipeline write per batch of answers, not one per frame.
    var outbound: ByteBuffer?
    var flushes = WriteCoalescer()
    /// The CallMeta of the previous CALL, the method it named, the context origin made
    /// for it and the request id it carries (looked up once per decode).
    var metaCache = CallMetaCache<(method: RPCMethod, origin: ServerContext.Origin, requestID: String?)>()
    var requestIDCounter: UInt32 = 0
    /// Inbound bytes are being processed (a re-entrant read waits for the loop).
    var processing = false
    var prefaceTimer: Scheduled<Void>?
    var idleTimer: Scheduled<Void>?
    var stallTimer: Scheduled<Void>?
    var graceTimer: Scheduled<Void>?
  }

  private let shared: ConnectionShared
  private let decoder: FrameDecoder
  /// Request ids the server makes: a random prefix per connection, then a counter.
  private let requestIDPrefix = Array((String(UInt32.random(in: 0...UInt32.max), radix: 16) + "-").utf8)
  /// Whether each call is logged (at debug level).
  private let logsCalls: Bool

  // Only the connection's event loop touches the state, and no access to it is held
  // across a call out of the handler (the context is copied out before each call into
  // NIO, which may call back), so release builds skip Swift's dynamic exclusivity
  // checks on it; debug builds, which the tests run, keep them.
  #if DEBUG
    private var state: State
  #else
    @exclusivity(unchecked) private var state: State
  #endif

  init(shared: ConnectionShared) {
    self.shared = shared
    self.decoder = FrameDecoder(
      maxFrameSize: shared.configuration.limits.maxFrameSize,
      maxMetaSize: shared.configuration.limits.maxMetaSize
    )
    self.logsCalls = shared.logger.logLevel <= .debug
    let limits = shared.configuration.limits
    self.state = State(
      machine: ServerConnectionStateMachine(
        limits: .init(maxConcurrentCalls: limits.maxConcurrentCalls, maxBufferedBytes: limits.maxBufferedBytes),
        now: .now()),
      logger: shared.logger)
  }

  private var limits: ServerConfiguration.Limits { shared.configuration.limits }
  private var timeouts: ServerConfiguration.Timeouts { shared.configuration.timeouts }

  // MARK: Channel events

  func handlerAdded(context: ChannelHandlerContext) {
    state.context = context
    if context.channel.isActive { start(context: context) }
  }

  func channelActive(context: ChannelHandlerContext) {
    start(context: context)
    context.fireChannelActive()
  }

  private func start(context: ChannelHandlerContext) {
    guard state.prefaceTimer == nil, state.machine.phase == .awaitingPreface else { return }
    let peer = context.channel.remoteAddress?.description ?? "?"
    state.peer = peer
    state.logger[metadataKey: "peer"] = "\(peer)"
    state.prefaceTimer = schedule(after: timeouts.preface) { handler in
      guard handler.state.machine.prefaceTimedOut() else { return }
      handler.state.logger.info("closing a connection that sent no preface in time")
      handler.closeChannel()
    }
  }

  func handlerRemoved(context: ChannelHandlerContext) {
    state.context = nil
  }

  func channelInactive(context: ChannelHandlerContext) {
    for call in state.machine.channelClosed() { call.stop() }
    for timer in [state.prefaceTimer, state.idleTimer, state.stallTimer, state.graceTimer] { timer?.cancel() }
    state.inbound = nil
    context.fireChannelInactive()
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    guard state.machine.phase != .closed else { return }
    var bytes = unwrapInboundIn(data)
    if state.inbound == nil || state.inbound!.readableBytes == 0 {
      state.inbound = bytes
    } else {
      state.inbound!.writeBuffer(&bytes)
    }
    state.flushes.beginReadBatch()
    processInbound()
  }

  func channelReadComplete(context: ChannelHandlerContext) {
    if state.flushes.endReadBatch() { flushNow() }
    context.fireChannelReadComplete()
  }

  func read(context: ChannelHandlerContext) {
    if state.machine.readRequested() { context.read() }
  }

  func channelWritabilityChanged(context: ChannelHandlerContext) {
    if state.machine.writabilityChanged(context.channel.isWritable) { context.read() }
    context.fireChannelWritabilityChanged()
  }

  func errorCaught(context: ChannelHandlerContext, error: any Error) {
    state.logger.debug("connection error: \(error)")
    if state.machine.close() { closeChannel() }
  }

  func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
    if event is ChannelShouldQuiesceEvent {
      shutDown()
    } else {
      context.fireUserInboundEventTriggered(event)
    }
  }

  // MARK: Inbound

  private func processInbound() {
    guard !state.processing else { return }
    state.processing = true
    defer { state.processing = false }

    while state.machine.phase != .closed, state.inbound != nil, state.inbound!.readableBytes > 0 {
      if state.machine.phase == .awaitingPreface {
        guard readPreface() else { break }
        continue
      }
      let frame: Frame?
      do {
        frame = try decoder.next(from: &state.inbound!)
      } catch {
        perform(state.machine.decodingFailed(error))
        return
      }
      guard let frame else { break }
      perform(state.machine.frameReceived(frame))
    }
    let partial = state.inbound.map { $0.readableBytes > 0 } ?? false
    if !partial { state.inbound = nil }
    let now = NIODeadline.now()
    state.machine.readBatchEnded(now: now)
    if state.machine.watchForStall(partial: partial, now: now, stallTimerRunning: state.stallTimer != nil) {
      startStallTimer()
    }
  }

  /// Handles the connection's first bytes; returns whether frames may follow.
  private func readPreface() -> Bool {
    let action = state.machine.prefaceReceived(Preface.detect(state.inbound!), now: .now())
    switch action {
    case .wait:
      return false
    case .accept:
      state.inbound!.moveReaderIndex(forwardBy: Preface.size)
      state.prefaceTimer?.cancel()
      state.prefaceTimer = nil
      guard let context = state.context else { return false }
      var buffer = context.channel.allocator.buffer(capacity: 64 + shared.settingsMeta.count)
      buffer.writeBytes(Preface.bytes())
      FrameHeader.write(
        type: .settings, callID: 0, metaLength: shared.settingsMeta.count, payloadLength: 0, into: &buffer)
      buffer.writeBytes(shared.settingsMeta)
      write(buffer)
      scheduleIdleCheck(after: timeouts.idle)
      return true
    case .unsupportedVersion(let version):
      guard let context = state.context else { return false }
      write(context.channel.allocator.buffer(bytes: Preface.bytes()))
      goAwayAndClose(
        .unimplemented,
        "protocol version \(version) is not supported; this server speaks version \(Preface.version)")
      return false
    case .refuseHTTP:
      state.logger.info("closing an HTTP request on the DMS RPC port")
      writeHTTPRefusal()
      closeChannel()
      return false
    case .close:
      state.logger.info("closing a connection that sent no DMS RPC preface")
      closeChannel()
      return false
    }
  }

  /// Performs what the state machine decided about a frame (or a call's end).
  private func perform(_ action: ServerConnectionStateMachine.FrameAction) {
    switch action {
    case .none:
      break
    case .startCall(let frame):
      dispatch(frame)
    case .refuseCall(let frame, let error):
      refuse(frame, error)
    case .cancelCall(let callID, let requestID, let handle, let error):
      handle?.stop()
      writeEnd(callID: callID, requestID: requestID, error: error)
      afterCallsEnded()
    case .cancelParkedCall(let callID, let error):
      writeEnd(callID: callID, status: error.wireStatus, payload: [])
    case .pingAck(let payload):
      writeFrame(type: .ping, flags: .ack, callID: 0, meta: [], payload: payload)
    case .settingsAck:
      writeFrame(type: .settings, flags: .ack, callID: 0, meta: [], payload: ByteBuffer())
    case .goAwayAndClose(let code, let reason):
      goAwayAndClose(code, reason)
    case .close:
      closeChannel()
    }
  }

  // MARK: Calls

  /// The decoded meta of a CALL, or nil after GOAWAY for meta that does not decode.
  private func callMeta(of frame: Frame) -> CallMetaFields? {
    do {
      return try state.metaCache.decode(frame.meta)
    } catch {
      perform(state.machine.undecodableCallMeta(callID: frame.callID))
      return nil
    }
  }

  /// Ends a CALL the rules refused, its request id (from its meta) in the trailers.
  private func refuse(_ frame: Frame, _ error: RPCError) {
    guard let meta = callMeta(of: frame) else { return }
    writeEnd(callID: frame.callID, requestID: meta.metadata[MetadataKey.requestID] ?? makeRequestID(), error: error)
  }

  /// Starts an admitted CALL: its method answers at once (immediate hook, unknown
  /// method, undecodable request) or runs in a task.
  private func dispatch(_ frame: Frame) {
    let callID = frame.callID
    guard let meta = callMeta(of: frame) else { return }
    let method: RPCMethod
    let origin: ServerContext.Origin
    let clientRequestID: String?
    if let cached = state.metaCache.resolved {
      (method, origin, clientRequestID) = cached
    } else if let found = shared.router.method(named: meta.method) {
      method = found
      origin = ServerContext.Origin(
        method: found.descriptor, metadata: meta.metadata, peer: state.peer,
        credential: shared.authorizer?.credential(from: meta.metadata) ?? .none)
      clientRequestID = meta.metadata[MetadataKey.requestID]
      state.metaCache.resolved = (found, origin, clientRequestID)
    } else {
      let requestID = meta.metadata[MetadataKey.requestID] ?? makeRequestID()
      state.logger.debug(
        "unknown method", metadata: ["method": "\(meta.method)", MetadataKey.requestID: "\(requestID)"])
      writeEnd(
        callID: callID, requestID: requestID,
        error: RPCError(code: .unimplemented, message: "unknown method \(meta.method)"))
      state.machine.callAnsweredAtOnce()
      return
    }
    let requestID = clientRequestID ?? makeRequestID()
    // Who may call what (docs/SECURITY.md): before the request is decoded.
    var caller: Caller?
    if let authorizer = shared.authorizer {
      do {
        caller = try authorizer.authorize(origin)
      } catch {
        state.logger.debug(
          "call refused",
          metadata: [
            "method": "\(method.descriptor)", "code": "\(error.code)", MetadataKey.requestID: "\(requestID)",
          ])
        writeEnd(callID: callID, requestID: requestID, error: error)
        state.machine.callAnsweredAtOnce()
        return
      }
    }
    if logsCalls {
      state.logger.debug(
        "call",
        metadata: ["method": "\(method.descriptor)", "call-id": "\(callID)", MetadataKey.requestID: "\(requestID)"])
    }
    let timeout = meta.timeoutMs > 0 ? Duration.milliseconds(Int64(meta.timeoutMs)) : nil
    let callContext = ServerContext(
      origin: origin, requestID: requestID, deadline: timeout.map { .now + $0 }, caller: caller)
    // One decode of the request; a method's immediate hook answers here, within the
    // read (no task, no timer); every other call runs in a task.
    let start: CallStart
    do {
      start = try frame.payload.withUnsafeReadableBytes { bytes in
        try method.begin(payload: bytes, context: callContext)
      }
    } catch {
      let rpcError = Self.callError(error, method: method.descriptor, requestID: requestID, logger: state.logger)
      writeEnd(callID: callID, requestID: requestID, error: rpcError)
      state.machine.callAnsweredAtOnce()
      return
    }
    switch start {
    case .answered(let answer):
      answer.withUnsafeBytes { writeResponse(callID: callID, requestID: requestID, payload: $0) }
      state.machine.callAnsweredAtOnce()
    case .run(let prepared):
      run(
        prepared, callID: callID, method: method.descriptor, context: callContext, timeout: timeout,
        requestID: requestID)
    }
  }

  /// Runs a call in a task off the event loop: a handler may take time or block (a
  /// KDF, a database), and the loop serves every connection on it.
  private func run(
    _ prepared: PreparedCall,
    callID: UInt32,
    method: MethodDescriptor,
    context callContext: ServerContext,
    timeout: Duration?,
    requestID: String
  ) {
    guard let eventLoop = state.context?.eventLoop else { return }
    let serial = state.machine.callStarted(callID: callID, requestID: requestID)
    var timer: Scheduled<Void>?
    if let timeout {
      timer = schedule(after: timeout) { handler in
        handler.endCall(
          callID: callID, serial: serial,
          .failure(RPCError(code: .deadlineExceeded, message: "the call's deadline passed")), stop: true)
      }
    }
    let bound = NIOLoopBound(self, eventLoop: eventLoop)
    let sink = CallResponseSink(handler: bound, callID: callID, serial: serial)
    let logger = state.logger
    let task = Task {
      let result: Result<[UInt8], RPCError>
      do {
        result = .success(try await prepared.run(context: callContext, sink: sink))
      } catch {
        result = .failure(
          ServerConnectionHandler.callError(error, method: method, requestID: requestID, logger: logger))
      }
      eventLoop.execute { bound.value.endCall(callID: callID, serial: serial, result, stop: false) }
    }
    let handle = RunningCall(task: task, deadlineTimer: timer)
    if !state.machine.setHandle(handle, callID: callID, serial: serial) { handle.stop() }
  }

  /// Ends a call: its handler finished (`stop` false), or its deadline passed or a
  /// streamed message was too large (`stop`: cancel its task). Nothing when it had
  /// already ended.
  private func endCall(callID: UInt32, serial: UInt64, _ result: Result<[UInt8], RPCError>, stop: Bool) {
    guard let (requestID, handle) = state.machine.endCall(callID: callID, serial: serial) else { return }
    if stop {
      handle?.stop()
    } else {
      handle?.deadlineTimer?.cancel()
    }
    switch result {
    case .success(let payload):
      payload.withUnsafeBytes { writeResponse(callID: callID, requestID: requestID, payload: $0) }
    case .failure(let error):
      writeEnd(callID: callID, requestID: requestID, error: error)
    }
    afterCallsEnded()
  }

  /// After calls ended: close when draining is done, or start parked calls and read
  /// again.
  private func afterCallsEnded() {
    switch state.machine.afterCallsEnded(now: .now()) {
    case .none:
      break
    case .close:
      closeChannel()
    case .startParkedCalls:
      while let action = state.machine.nextParkedCall() { perform(action) }
      if state.machine.readsMayResume() { state.context?.read() }
    }
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
          "method": "\(method)", MetadataKey.requestID: "\(requestID)",
          "error": "\(String(reflecting: type(of: error)))",
        ]
      )
    }
    return rpcError
  }

  /// Sends one MESSAGE of a streaming call; nil if the call has ended.
  fileprivate func sendMessage(callID: UInt32, serial: UInt64, bytes: [UInt8]) -> EventLoopFuture<Void>? {
    guard state.machine.isOpen(callID: callID, serial: serial), let context = state.context else { return nil }
    guard bytes.count <= limits.maxFrameSize else {
      endCall(
        callID: callID, serial: serial, .failure(Self.oversizedResponse(bytes.count, limit: limits.maxFrameSize)),
        stop: true)
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

  /// A request id unique in this process's life with high probability, made
  /// without a system call: the connection's random prefix and a counter.
  private func makeRequestID() -> String {
    state.requestIDCounter &+= 1
    let counter = state.requestIDCounter
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

  /// Writes an error END, its Status carrying the request id.
  private func writeEnd(callID: UInt32, requestID: String, error: RPCError) {
    var status = error.wireStatus
    status.trailers[MetadataKey.requestID] = requestID
    writeEnd(callID: callID, status: status, payload: [])
  }

  private func writeEnd(callID: UInt32, status: Dms_Rpc_V1_Status, payload: [UInt8]) {
    let meta = status.serializedBytes(trimmedTo: limits.maxMetaSize)
    appendFrame(type: .end, flags: .endStream, callID: callID, metaLength: meta.count, payloadLength: payload.count) {
      $0.writeBytes(meta)
      $0.writeBytes(payload)
    }
  }

  /// The hot path: an OK END whose Status holds only the request id, encoded here
  /// without building a `Status` message and its map.
  private func writeOKEnd(callID: UInt32, requestID: String, payload: UnsafeRawBufferPointer) {
    let metaLength = MetaEncoder.okStatusSize(trailerKey: MetadataKey.requestID, value: requestID)
    guard metaLength <= limits.maxMetaSize else {
      // A client's request id too long to echo: the general path trims it.
      var status = Dms_Rpc_V1_Status()
      status.trailers[MetadataKey.requestID] = requestID
      writeEnd(callID: callID, status: status, payload: Array(payload))
      return
    }
    let size = FrameWriter.okEndSize(trailerKey: MetadataKey.requestID, value: requestID, payloadCount: payload.count)
    guard prepareOutbound(for: size) else { return }
    FrameWriter.writeOKEnd(
      callID: callID, trailerKey: MetadataKey.requestID, value: requestID, payload: payload, into: &state.outbound!)
    requestFlush()
  }

  /// Appends a frame to the batch buffer; `body` writes its meta and payload.
  private func appendFrame(
    type: FrameType, flags: FrameFlags, callID: UInt32, metaLength: Int, payloadLength: Int,
    _ body: (inout ByteBuffer) -> Void
  ) {
    guard prepareOutbound(for: FrameHeader.size + metaLength + payloadLength) else { return }
    FrameHeader.write(
      type: type, flags: flags, callID: callID, metaLength: metaLength, payloadLength: payloadLength,
      into: &state.outbound!)
    body(&state.outbound!)
    requestFlush()
  }

  /// Makes the batch buffer ready for a frame of `size` bytes; false once the handler
  /// is removed.
  private func prepareOutbound(for size: Int) -> Bool {
    // The common case, checked without copying the buffer or the context (each copy
    // a reference count): there is room in the batch's buffer.
    if state.context != nil, let writable = state.outbound?.writableBytes, writable >= size { return true }
    guard let context = state.context else { return false }
    if let pending = state.outbound, pending.writableBytes < size, size > Self.outboundChunk {
      // A large frame goes in a buffer of its own, not into a growing copy.
      state.outbound = nil
      hand(pending)
    }
    if state.outbound == nil {
      state.outbound = context.channel.allocator.buffer(capacity: max(size, Self.outboundChunk))
    }
    return true
  }

  /// The first capacity of the batch buffer.
  private static let outboundChunk = 4096

  /// Hands the batch buffer to the channel (not yet flushed).
  private func writeOutbound() {
    guard let pending = state.outbound, state.context != nil else { return }
    state.outbound = nil
    hand(pending)
  }

  /// Hands `buffer` to the channel (not yet flushed). While the channel is not
  /// writable (the client is not reading) its bytes count against
  /// `limits.maxBufferedBytes`.
  private func hand(_ buffer: ByteBuffer, promise: EventLoopPromise<Void>? = nil) {
    guard let context = state.context else {
      promise?.fail(ChannelError.ioOnClosedChannel)
      return
    }
    context.write(wrapOutboundOut(buffer), promise: promise)
    let batched = state.outbound?.readableBytes ?? 0
    let action = state.machine.bytesHanded(buffer.readableBytes, batched: batched)
    if case .goAwayAndClose = action {
      state.logger.warning(
        "closing a connection that holds too much for a client that does not read",
        metadata: ["limit": "\(limits.maxBufferedBytes)"])
    }
    perform(action)
  }

  private func flushNow() {
    writeOutbound()
    state.context?.flush()
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
    guard state.context != nil else { return }
    writeOutbound()
    hand(buffer)
    requestFlush()
  }

  /// Flushes once per read batch, or once per event-loop tick for writes that come
  /// from handlers finishing outside one.
  private func requestFlush() {
    guard state.flushes.didWrite(), let context = state.context else { return }
    let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
    context.eventLoop.execute {
      let handler = bound.value
      if handler.state.flushes.scheduledFlushRuns() { handler.flushNow() }
    }
  }

  // MARK: Lifecycle

  private func goAwayAndClose(_ code: StatusCode, _ reason: String) {
    state.logger.info("GOAWAY", metadata: ["code": "\(code.name)", "reason": "\(reason)"])
    writeGoAway(code: code, reason: reason)
    closeChannel()
  }

  private func writeGoAway(code: StatusCode, reason: String) {
    var goAway = Dms_Rpc_V1_GoAway()
    goAway.lastCallID = state.machine.highestCallID
    goAway.code = code.rawValue
    goAway.reason = reason
    writeFrame(type: .goAway, flags: [], callID: 0, meta: (try? goAway.serializedBytes()) ?? [], payload: ByteBuffer())
  }

  /// Stops taking calls: GOAWAY now, close when the open calls end or the grace
  /// period runs out.
  private func shutDown() {
    switch state.machine.shutdown() {
    case .none:
      break
    case .close:
      closeChannel()
    case .drain(let refused, let closeNow):
      writeGoAway(code: .unavailable, reason: "server is shutting down")
      // Parked calls were not run: they end UNAVAILABLE, to be retried elsewhere.
      for frame in refused {
        let requestID = (try? state.metaCache.decode(frame.meta))?.metadata[MetadataKey.requestID] ?? makeRequestID()
        writeEnd(
          callID: frame.callID, requestID: requestID, error: ServerConnectionStateMachine.shuttingDown)
      }
      if closeNow {
        closeChannel()
        return
      }
      if state.flushes.takePending() { flushNow() }
      state.graceTimer = schedule(after: timeouts.shutdownGrace) { handler in
        guard handler.state.machine.graceExpired() else { return }
        handler.state.logger.info("closing a connection whose calls outran the shutdown grace period")
        handler.closeChannel()
      }
    }
  }

  /// Flushes what is written and closes the channel (the state machine has decided).
  private func closeChannel() {
    _ = state.machine.close()
    guard let context = state.context else { return }
    _ = state.flushes.takePending()
    flushNow()
    context.close(promise: nil)
  }

  private func scheduleIdleCheck(after delay: Duration) {
    state.idleTimer = schedule(after: delay) { handler in
      switch handler.state.machine.idleCheck(now: .now(), timeout: TimeAmount(handler.timeouts.idle)) {
      case .stop:
        break
      case .checkAgain(let after):
        handler.scheduleIdleCheck(after: Duration(after))
      case .goAwayAndClose(let code, let reason):
        handler.goAwayAndClose(code, reason)
      }
    }
  }

  /// Closes the connection when a frame stays half-received too long.
  private func startStallTimer() {
    state.stallTimer = schedule(after: timeouts.frameStall) { handler in
      handler.state.stallTimer = nil
      switch handler.state.machine.stallCheck(now: .now(), timeout: TimeAmount(handler.timeouts.frameStall)) {
      case .none:
        break
      case .close:
        handler.state.logger.info("closing a connection whose frame stalled half way")
        handler.closeChannel()
      case .watchAgain:
        let partial = handler.state.inbound.map { $0.readableBytes > 0 } ?? false
        if handler.state.machine.watchForStall(partial: partial, now: .now(), stallTimerRunning: false) {
          handler.startStallTimer()
        }
      }
    }
  }

  private func schedule(after delay: Duration, _ body: @escaping (ServerConnectionHandler) -> Void) -> Scheduled<Void>?
  {
    guard let eventLoop = state.context?.eventLoop else { return nil }
    let bound = NIOLoopBound(self, eventLoop: eventLoop)
    let boundBody = NIOLoopBound(body, eventLoop: eventLoop)
    return eventLoop.scheduleTask(in: TimeAmount(delay)) { boundBody.value(bound.value) }
  }

  private func writeHTTPRefusal() {
    guard let context = state.context else { return }
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
