import NIOCore

/// A Swift `TaskExecutor` that runs jobs on one NIO event loop.
///
/// A task that prefers the executor of its client's event loop
/// (`withTaskExecutorPreference(client.taskExecutor)`) starts its calls and resumes
/// from them on the connection's own thread: no thread hop on either side of a call.
/// Useful for services that call in hot loops; keep blocking work off such tasks.
public final class EventLoopTaskExecutor: TaskExecutor, Sendable {
  /// The event loop the jobs run on.
  public let eventLoop: any EventLoop

  /// An executor for `eventLoop`.
  public init(eventLoop: any EventLoop) {
    self.eventLoop = eventLoop
  }

  public func enqueue(_ job: consuming ExecutorJob) {
    let job = UnownedJob(job)
    eventLoop.execute {
      job.runSynchronously(on: self.asUnownedTaskExecutor())
    }
  }
}
