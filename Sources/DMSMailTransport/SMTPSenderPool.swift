import NIOPosix
import Synchronization

/// The mail worker's SMTP connections: one per account (key), kept open while there is
/// work and closed after `idleTimeout`; every libcurl call on the pool's own threads,
/// never on an event loop.
public final class SMTPSenderPool: Sendable {
  /// A session and whether a send holds it.
  private struct Entry {
    var session: SessionBox
    var busy: Bool
    var lastUsed: ContinuousClock.Instant
  }

  /// An `SMTPSession` moved between threads: only the send that marked its entry busy
  /// (or the closing of an idle one, taken out of the table first) touches it, so never
  /// two threads at once.
  private final class SessionBox: @unchecked Sendable {
    let session: SMTPSession
    init(_ session: SMTPSession) { self.session = session }
  }

  private let threads: NIOThreadPool
  private let sessions = Mutex<[String: Entry]>([:])
  private let idleTimeout: Duration

  /// A pool of `threadCount` sending threads.
  public init(threadCount: Int = 4, idleTimeout: Duration = .seconds(15)) {
    threads = NIOThreadPool(numberOfThreads: threadCount)
    threads.start()
    self.idleTimeout = idleTimeout
  }

  /// Sends `message` over `key`'s connection to `endpoint` (opened, or opened again when
  /// the endpoint changed); the server's reply.
  public func send(_ message: MIMEMessage, endpoint: SMTPEndpoint, key: String) async throws(SMTPFailure) -> String {
    let (box, pooled, replaced) = take(key: key, endpoint: endpoint)
    if let replaced { await run { replaced.session.close() } }
    let result: Result<String, SMTPFailure> = await run {
      do throws(SMTPFailure) { return .success(try box.session.send(message)) } catch { return .failure(error) }
    }
    if pooled { give(box, key: key) } else { await run { box.session.close() } }
    return try result.get()
  }

  /// Sends `message` over a connection of its own, closed afterwards (the test message).
  public func sendOnce(_ message: MIMEMessage, endpoint: SMTPEndpoint) async throws(SMTPFailure) -> String {
    let box = SessionBox(SMTPSession(endpoint: endpoint))
    let result: Result<String, SMTPFailure> = await run {
      defer { box.session.close() }
      do throws(SMTPFailure) { return .success(try box.session.send(message)) } catch { return .failure(error) }
    }
    return try result.get()
  }

  /// Connections libcurl opened for `key`'s pooled session so far (0 when none).
  public func connectionsOpened(key: String) -> Int {
    sessions.withLock { $0[key]?.session.session.connectionsOpened ?? 0 }
  }

  /// Closes the connections idle for longer than the idle timeout.
  public func closeIdle() async {
    let now = ContinuousClock.now
    let idle: [SessionBox] = sessions.withLock { table in
      let keys = table.filter { !$0.value.busy && now - $0.value.lastUsed > idleTimeout }.map(\.key)
      return keys.compactMap { table.removeValue(forKey: $0)?.session }
    }
    for box in idle { await run { box.session.close() } }
  }

  /// Closes every connection and stops the threads.
  public func shutdown() async {
    let all = sessions.withLock { table in
      defer { table.removeAll() }
      return table.values.filter { !$0.busy }.map(\.session)
    }
    for box in all { await run { box.session.close() } }
    try? await threads.shutdownGracefully()
  }

  /// `key`'s session for `endpoint`, marked busy; or, when it is busy, one of its own
  /// (`pooled` false). `replaced`: the session of an endpoint that changed, to close
  /// (off the caller's thread: closing may wait for the server).
  private func take(key: String, endpoint: SMTPEndpoint) -> (SessionBox, pooled: Bool, replaced: SessionBox?) {
    sessions.withLock { table in
      var replaced: SessionBox?
      if let entry = table[key] {
        if entry.busy { return (SessionBox(SMTPSession(endpoint: endpoint)), false, nil) }
        if entry.session.session.endpoint == endpoint {
          table[key]?.busy = true
          return (entry.session, true, nil)
        }
        replaced = entry.session
      }
      let box = SessionBox(SMTPSession(endpoint: endpoint))
      table[key] = Entry(session: box, busy: true, lastUsed: .now)
      return (box, true, replaced)
    }
  }

  private func give(_ box: SessionBox, key: String) {
    sessions.withLock { table in
      guard table[key]?.session === box else { return }
      table[key]?.busy = false
      table[key]?.lastUsed = .now
    }
  }

  /// Runs `body` on one of the pool's threads (blocking work: libcurl).
  public func run<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    do {
      return try await threads.runIfActive(body)
    } catch {
      // The pool is shut down: run here (only after shutdown, when nothing else is).
      return body()
    }
  }
}
