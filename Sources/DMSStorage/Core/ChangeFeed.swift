import Synchronization

/// A committed change, as recorded in the change feed.
public struct SettingsChange: Sendable, Hashable {
  /// What happened.
  public enum Kind: String, Sendable, Hashable { case created, updated, deleted }

  /// The change's place in the feed: increases with every committed change.
  public var position: Int64
  /// What happened.
  public var kind: Kind
  /// The company's code; nil for the shared section.
  public var company: String?
  /// The area, such as `erp.company`.
  public var area: String
  /// The document's revision after the change (0 when deleted).
  public var revision: Int64

  /// A change.
  public init(position: Int64, kind: Kind, company: String?, area: String, revision: Int64) {
    self.position = position
    self.kind = kind
    self.company = company
    self.area = area
    self.revision = revision
  }
}

/// The feed of committed changes, which Watch and the caches follow.
///
/// Every change is written as a row in the same transaction as the change itself;
/// after the commit the store hands the rows here, in commit order. A subscriber may
/// start from a position it saw before (after a reconnect): it first gets the rows
/// after that position from the database, then the live ones, with nothing missed and
/// nothing twice.
public final class ChangeFeed: Sendable {
  /// Reads the feed's rows after a position, up to and including another, at most `limit`.
  typealias Backlog = @Sendable (_ after: Int64, _ through: Int64, _ limit: Int) async throws -> [SettingsChange]

  private struct State {
    var last: Int64
    var subscribers: [UInt64: AsyncThrowingStream<SettingsChange, any Error>.Continuation] = [:]
    var next: UInt64 = 0
    var finished = false
  }

  private let state: Mutex<State>
  private let backlog: Backlog
  private let bufferLimit: Int

  /// A feed whose last committed row is `last`.
  init(last: Int64, bufferLimit: Int = 4096, backlog: @escaping Backlog) {
    state = Mutex(State(last: last))
    self.backlog = backlog
    self.bufferLimit = bufferLimit
  }

  /// The position of the last committed change (0: none yet).
  public var lastPosition: Int64 { state.withLock { $0.last } }

  /// Hands committed changes to the subscribers; called by the store after each
  /// commit, in commit order.
  func publish(_ changes: [SettingsChange]) {
    guard let newest = changes.last else { return }
    state.withLock { state in
      state.last = max(state.last, newest.position)
      for (id, continuation) in state.subscribers {
        for change in changes {
          if case .dropped = continuation.yield(change) {
            continuation.finish(
              throwing: StoreError(
                .fellBehind,
                "the watcher fell more than \(bufferLimit) changes behind; watch again from the last position it saw"))
            state.subscribers[id] = nil
            break
          }
        }
      }
    }
  }

  /// The changes after `position` (nil: from now on), then every change as it
  /// commits, until `finishAll` or the subscription is dropped.
  ///
  /// - Throws: `StoreError.outOfRange` when `position` is ahead of the feed.
  public func subscribe(after position: Int64?) throws -> ChangeSubscription {
    let (stream, continuation) = AsyncThrowingStream.makeStream(
      of: SettingsChange.self, bufferingPolicy: .bufferingOldest(bufferLimit))
    let (id, last, finished) = state.withLock { state in
      let id = state.next
      state.next += 1
      if !state.finished { state.subscribers[id] = continuation }
      return (id, state.last, state.finished)
    }
    if finished { continuation.finish() }
    continuation.onTermination = { [weak self] _ in
      _ = self?.state.withLock { $0.subscribers.removeValue(forKey: id) }
    }
    if let position, position > last {
      continuation.finish()
      throw StoreError(
        .outOfRange,
        "position \(position) is ahead of the change feed (its last is \(last)): the data was restored or belongs to another server; read the settings again and watch from now"
      )
    }
    return ChangeSubscription(live: stream, after: position ?? last, through: last, backlog: backlog)
  }

  /// Ends every subscription (on shutdown) with UNAVAILABLE, so that a watcher knows
  /// to reconnect (to another instance, or after the restart) and resume.
  public func finishAll() {
    let subscribers = state.withLock { state in
      defer { state.subscribers.removeAll() }
      state.finished = true
      return Array(state.subscribers.values)
    }
    let ending = StoreError(
      .unavailable, "the server is shutting down; reconnect and resume after the last position received")
    for continuation in subscribers { continuation.finish(throwing: ending) }
  }
}

/// A subscription to the change feed: the rows after a position, then the live ones.
public struct ChangeSubscription: AsyncSequence, Sendable {
  public typealias Element = SettingsChange

  let live: AsyncThrowingStream<SettingsChange, any Error>
  /// The position the subscription starts after.
  public let after: Int64
  let through: Int64
  let backlog: ChangeFeed.Backlog

  public func makeAsyncIterator() -> Iterator {
    Iterator(live: live.makeAsyncIterator(), cursor: after, through: through, backlog: backlog)
  }

  /// Reads the backlog in pages, then the live stream.
  public struct Iterator: AsyncIteratorProtocol {
    var live: AsyncThrowingStream<SettingsChange, any Error>.AsyncIterator
    var cursor: Int64
    let through: Int64
    let backlog: ChangeFeed.Backlog
    var page: [SettingsChange] = []
    var pageIndex = 0

    public mutating func next() async throws -> SettingsChange? {
      while cursor < through {
        if pageIndex < page.count {
          let change = page[pageIndex]
          pageIndex += 1
          cursor = change.position
          return change
        }
        page = try await backlog(cursor, through, 512)
        pageIndex = 0
        if page.isEmpty { cursor = through }
      }
      while let change = try await live.next() {
        if change.position > cursor {
          cursor = change.position
          return change
        }
      }
      return nil
    }
  }
}
