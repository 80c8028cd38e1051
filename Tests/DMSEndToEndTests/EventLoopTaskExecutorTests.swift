import DMSMessages
import DMSRPC
import DMSStubs
import NIOCore
import NIOPosix
import Synchronization
import Testing

@testable import DMSClient

/// The client's task executor: the jobs a connection's read resumes wait for the
/// read's end (`hold()` … `endHold(loneCallEnded:)`), then run at once (a lone call
/// on the loop's only connection) or together from one task of the loop's.
@Suite("Client task executor")
struct EventLoopTaskExecutorTests {
  /// Runs `body` on a fresh event loop with an executor of its own, and returns the
  /// log once the tasks `body` started have finished.
  private func onLoop(
    _ body: @escaping @Sendable (EventLoopTaskExecutor, Log) -> [Task<Void, Never>]
  ) async throws -> [String] {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let executor = EventLoopTaskExecutor(eventLoop: group.next())
    let log = Log()
    let tasks = try await executor.eventLoop.submit { body(executor, log) }.get()
    for task in tasks { await task.value }
    try await group.shutdownGracefully()
    return log.entries.withLock { $0 }
  }

  final class Log: Sendable {
    let entries = Mutex<[String]>([])
    func add(_ entry: String) { entries.withLock { $0.append(entry) } }
  }

  /// Three tasks preferring `executor`, each logging its index and whether it runs on
  /// the loop.
  private static func tasks(_ executor: EventLoopTaskExecutor, _ log: Log) -> [Task<Void, Never>] {
    (0..<3).map { index in
      Task(executorPreference: executor) { log.add("task \(index) on the loop: \(executor.eventLoop.inEventLoop)") }
    }
  }

  private static let tasksRan = (0..<3).map { "task \($0) on the loop: true" }

  @Test("a read that ends a lone call on the loop's only connection runs the tasks it resumed at its end, in order")
  func loneCallRunsAtOnce() async throws {
    let log = try await onLoop { executor, log in
      executor.connectionAdded()
      executor.hold()
      executor.hold()
      let tasks = Self.tasks(executor, log)
      log.add("inner hold ends")
      executor.endHold(loneCallEnded: true)
      log.add("outer hold ends")
      executor.endHold(loneCallEnded: true)
      log.add("after the hold")
      return tasks
    }
    #expect(log == ["inner hold ends", "outer hold ends"] + Self.tasksRan + ["after the hold"])
  }

  @Test(
    "with another connection on the loop, or a read that ended more than a lone call, the tasks run after the work in hand",
    arguments: [(connections: 2, loneCallEnded: true), (connections: 1, loneCallEnded: false)])
  func otherwiseTheyWait(connections: Int, loneCallEnded: Bool) async throws {
    let log = try await onLoop { executor, log in
      for _ in 0..<connections { executor.connectionAdded() }
      executor.hold()
      let tasks = Self.tasks(executor, log)
      executor.endHold(loneCallEnded: loneCallEnded)
      log.add("work in hand done")
      return tasks
    }
    #expect(log == ["work in hand done"] + Self.tasksRan)
  }

  @Test("outside a hold, tasks resumed on the loop run together after the work in hand, in order")
  func outsideAHold() async throws {
    let log = try await onLoop { executor, log in
      executor.connectionAdded()
      let tasks = Self.tasks(executor, log)
      // A hold that ends with nothing waiting changes nothing.
      executor.hold()
      executor.endHold(loneCallEnded: true)
      log.add("work in hand done")
      return tasks
    }
    #expect(log == ["work in hand done"] + Self.tasksRan)
  }

  @Test("a job enqueued from another thread during a hold does not wait for it")
  func otherThreadsDoNotWait() async throws {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let executor = EventLoopTaskExecutor(eventLoop: group.next())
    let log = Log()
    try await executor.eventLoop.submit {
      executor.connectionAdded()
      executor.hold()
    }.get()
    await Task(executorPreference: executor) { log.add("task on the loop: \(executor.eventLoop.inEventLoop)") }.value
    try await executor.eventLoop.submit {
      log.add("hold ends")
      executor.endHold(loneCallEnded: true)
    }.get()
    try await group.shutdownGracefully()
    #expect(log.entries.withLock { $0 } == ["task on the loop: true", "hold ends"])
  }

  @Test("the clients of one event loop share its executor; another loop has its own")
  func sharedPerLoop() async throws {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
    let first = group.any()
    var second = group.next()
    if second === first { second = group.next() }
    let executor = EventLoopTaskExecutor.shared(for: first)
    #expect(EventLoopTaskExecutor.shared(for: first) === executor)
    #expect(EventLoopTaskExecutor.shared(for: second) !== executor)
    let client = RPCClient(configuration: ClientConfiguration(port: 1), eventLoopGroup: first)
    #expect(client.taskExecutor === executor)
    await client.close()
    try await group.shutdownGracefully()
  }

  @Test("clients on one event loop share its executor, which counts their open connections")
  func sharedExecutorCountsConnections() async throws {
    try await withTestServer { server async throws in
      let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
      let loop = group.next()
      let configuration = ClientConfiguration(host: "127.0.0.1", port: server.port, connectAttempts: 1)
      let first = RPCClient(configuration: configuration, eventLoopGroup: loop)
      let second = RPCClient(configuration: configuration, eventLoopGroup: loop)
      #expect(first.taskExecutor === second.taskExecutor)
      let executor = first.taskExecutor
      func connections() async throws -> Int { try await loop.submit { executor.connectionCount }.get() }
      #expect(try await connections() == 0)
      _ = try await Dms_Rpc_V1_Health.Client(first).check()
      #expect(try await connections() == 1)
      _ = try await Dms_Rpc_V1_Health.Client(second).check()
      #expect(try await connections() == 2)
      // A connection that never opens is not counted once it has failed.
      let stopped = try await TestServer.start()
      try await stopped.stop()
      var nowhere = configuration
      nowhere.port = stopped.port
      let third = RPCClient(configuration: nowhere, eventLoopGroup: loop)
      await #expect(throws: RPCError.self) { try await Dms_Rpc_V1_Health.Client(third).check() }
      await third.close()
      await first.close()
      // The pipeline is torn down after the close completes: wait for it.
      let clock = ContinuousClock()
      let deadline = clock.now + .seconds(5)
      while try await connections() != 1, clock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
      #expect(try await connections() == 1)
      // A one-call-at-a-time caller on the remaining connection still gets its answers.
      try await withTaskExecutorPreference(executor) { () async throws -> Void in
        for _ in 0..<20 {
          let status = try await Dms_Rpc_V1_Health.Client(second).check().status
          #expect(status == .serving)
        }
      }
      await second.close()
      try await group.shutdownGracefully()
    }
  }
}
