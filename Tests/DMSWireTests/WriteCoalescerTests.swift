import DMSWire
import Testing

@Suite("Write coalescing")
struct WriteCoalescerTests {
  @Test("writes during a read batch flush once, at its end")
  func readBatch() {
    var coalescer = WriteCoalescer()
    coalescer.beginReadBatch()
    let scheduled = [coalescer.didWrite(), coalescer.didWrite()]
    #expect(scheduled == [false, false], "nothing scheduled inside a read batch")
    let flushAtEnd = coalescer.endReadBatch()
    #expect(flushAtEnd)
    let flushAgain = coalescer.endReadBatch()
    #expect(!flushAgain, "nothing left to flush")
  }

  @Test("writes outside a read batch schedule one flush per tick")
  func outsideReadBatch() {
    var coalescer = WriteCoalescer()
    let first = coalescer.didWrite()
    let second = coalescer.didWrite()
    let flush = coalescer.scheduledFlushRuns()
    let next = coalescer.didWrite()
    #expect(first, "the first write schedules a flush")
    #expect(!second, "later writes ride on it")
    #expect(flush)
    #expect(next, "after the flush ran, the next write schedules again")
  }

  @Test("a read batch that ends first takes the scheduled flush's writes")
  func batchTakesScheduledWrites() {
    var coalescer = WriteCoalescer()
    let scheduled = coalescer.didWrite()
    coalescer.beginReadBatch()
    let flushAtEnd = coalescer.endReadBatch()
    let scheduledFlush = coalescer.scheduledFlushRuns()
    #expect(scheduled && flushAtEnd)
    #expect(!scheduledFlush, "already flushed")
  }

  @Test("a lone write flushes at once, unless a read batch or a scheduled flush will take it")
  func loneWrite() {
    var coalescer = WriteCoalescer()
    let now = coalescer.didWriteAlone()
    let scheduledAfter = coalescer.scheduledFlushRuns()
    #expect(now, "nothing else waits: flush now")
    #expect(!scheduledAfter, "nothing left for a scheduled flush")

    coalescer.beginReadBatch()
    let inBatch = coalescer.didWriteAlone()
    let atEnd = coalescer.endReadBatch()
    #expect(!inBatch && atEnd, "inside a read batch it waits for the batch's flush")

    let scheduled = coalescer.didWrite()
    let joined = coalescer.didWriteAlone()
    let flush = coalescer.scheduledFlushRuns()
    #expect(scheduled && !joined && flush, "with a flush scheduled it joins that flush")
  }
}
