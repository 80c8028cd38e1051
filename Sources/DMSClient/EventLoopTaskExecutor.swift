import NIOCore
import Synchronization

/// A Swift `TaskExecutor` that runs jobs on one NIO event loop.
///
/// A task that prefers the executor of its client's event loop
/// (`withTaskExecutorPreference(client.taskExecutor)`) starts its calls and resumes
/// from them on the connection's own thread: no thread hop on either side of a call.
/// Useful for services that call in hot loops; keep blocking work off such tasks.
///
/// The clients on one event loop share its executor (`shared(for:)`), so the tasks
/// their answers resume run together, once per turn of the loop.
public final class EventLoopTaskExecutor: TaskExecutor, @unchecked Sendable {
  /// The event loop the jobs run on.
  public let eventLoop: any EventLoop

  // Jobs enqueued on the event loop's own thread (the tasks a read's answers resume)
  // wait in `waiting` and run together from one task of the loop's: one trip through
  // its queue per turn of the loop, not one per job. While a connection handles a
  // read (`hold()`), they wait for the read's end, which runs them at once or
  // schedules that task. `connections`: the client connections on the loop that use
  // this executor. Only the loop's thread touches these; every access checks
  // `inEventLoop` first (or asserts it), which is what makes the class Sendable.
  private var waiting: [UnownedJob] = []
  private var runScheduled = false
  private var holds = 0
  private var connections = 0

  /// An executor for `eventLoop`. Clients use `shared(for:)`.
  public init(eventLoop: any EventLoop) {
    self.eventLoop = eventLoop
  }

  private final class WeakExecutor: Sendable {
    weak let executor: EventLoopTaskExecutor?
    init(_ executor: EventLoopTaskExecutor) { self.executor = executor }
  }

  /// The executors in use, by event loop. An entry holds its executor weakly; the
  /// executor holds its loop, so a loop's identity is not reused while its entry lives.
  private static let executors = Mutex<[ObjectIdentifier: WeakExecutor]>([:])

  /// The executor of `eventLoop` that the clients on it share (made on first use).
  public static func shared(for eventLoop: any EventLoop) -> EventLoopTaskExecutor {
    executors.withLock { executors in
      let key = ObjectIdentifier(eventLoop)
      if let executor = executors[key]?.executor { return executor }
      let executor = EventLoopTaskExecutor(eventLoop: eventLoop)
      executors = executors.filter { $0.value.executor != nil }
      executors[key] = WeakExecutor(executor)
      return executor
    }
  }

  public func enqueue(_ job: consuming ExecutorJob) {
    let job = UnownedJob(job)
    guard eventLoop.inEventLoop else {
      eventLoop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
      return
    }
    waiting.append(job)
    if holds == 0 { scheduleRun() }
  }

  /// A client connection using this executor opened (called on the event loop).
  func connectionAdded() {
    eventLoop.assertInEventLoop()
    connections += 1
  }

  /// A client connection using this executor went away (called on the event loop).
  func connectionRemoved() {
    eventLoop.assertInEventLoop()
    connections -= 1
  }

  /// The client connections on the loop that use this executor (read on the loop).
  var connectionCount: Int {
    eventLoop.assertInEventLoop()
    return connections
  }

  /// Jobs enqueued on the loop from now until the matching `endHold(loneCallEnded:)`
  /// wait for it. Called on the event loop as a connection starts to handle a read.
  func hold() {
    eventLoop.assertInEventLoop()
    holds += 1
  }

  /// Ends a `hold()`. When no hold is left, the jobs waiting run here and now if the
  /// read ended its connection's only open call and that connection is the only one
  /// on the loop (the caller holds no state a job may touch): a caller making one
  /// call at a time resumes without a trip through the loop's queue. Otherwise they
  /// run from the loop's queue once the work in hand is done, so that the calls the
  /// resumed tasks make leave together with those of the loop's other connections.
  /// Called on the event loop.
  func endHold(loneCallEnded: Bool) {
    eventLoop.assertInEventLoop()
    holds -= 1
    guard holds == 0, !waiting.isEmpty else { return }
    if loneCallEnded, connections <= 1, !runScheduled {
      runWaiting()
    } else {
      scheduleRun()
    }
  }

  private func scheduleRun() {
    guard !runScheduled else { return }
    runScheduled = true
    eventLoop.execute {
      self.runScheduled = false
      self.runWaiting()
    }
  }

  /// Runs the jobs waiting, in the order they came; the jobs they enqueue wait for
  /// the next run.
  private func runWaiting() {
    var jobs: [UnownedJob] = []
    swap(&jobs, &waiting)
    for job in jobs { job.runSynchronously(on: asUnownedTaskExecutor()) }
    // The array's storage is kept for the next run.
    jobs.removeAll(keepingCapacity: true)
    if waiting.isEmpty { waiting = jobs }
  }
}
