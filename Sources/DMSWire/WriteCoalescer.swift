/// Decides when a connection flushes: once per read batch, and once per event-loop
/// tick for writes made outside one (a handler finishing, a timer).
///
/// A value type kept by a channel handler, used on its event loop:
///
/// ```swift
/// // channelRead:          coalescer.beginReadBatch()
/// // channelReadComplete:  if coalescer.endReadBatch() { context.flush() }
/// // after each write:     if coalescer.didWrite() { schedule on the loop: if coalescer.scheduledFlushRuns() { flush } }
/// // or, for a lone write: if coalescer.didWriteAlone() { flush }
/// ```
public struct WriteCoalescer: Sendable {
  private var inReadBatch = false
  private var pending = false
  private var scheduled = false

  /// A coalescer with nothing pending.
  public init() {}

  /// A read batch starts: writes made during it are flushed at its end.
  public mutating func beginReadBatch() {
    inReadBatch = true
  }

  /// The read batch ended; returns whether to flush now.
  public mutating func endReadBatch() -> Bool {
    inReadBatch = false
    return takePending()
  }

  /// Records a write; returns whether the caller must schedule a flush for the end
  /// of this event-loop tick (then call `scheduledFlushRuns()` from it).
  public mutating func didWrite() -> Bool {
    pending = true
    guard !inReadBatch, !scheduled else { return false }
    scheduled = true
    return true
  }

  /// Records a write that should not wait for the end of the tick, because nothing
  /// else is expected to join it (a client's only open call). Returns whether to flush
  /// now: outside a read batch, with no flush already scheduled for this tick;
  /// otherwise the write joins the coming flush.
  public mutating func didWriteAlone() -> Bool {
    guard !inReadBatch, !scheduled else {
      pending = true
      return false
    }
    pending = false
    return true
  }

  /// The scheduled flush runs; returns whether there is anything to flush.
  public mutating func scheduledFlushRuns() -> Bool {
    scheduled = false
    return takePending()
  }

  /// Returns whether writes are waiting for a flush, and forgets them (the caller
  /// flushes now, for example before closing).
  public mutating func takePending() -> Bool {
    defer { pending = false }
    return pending
  }
}
