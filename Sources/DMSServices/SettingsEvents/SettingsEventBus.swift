import Synchronization

/// A committed change, for Watch.
public struct SettingsChange: Sendable, Hashable {
  /// What happened.
  public enum Kind: Sendable, Hashable { case created, updated, deleted }

  /// What happened.
  public var kind: Kind
  /// The company's code; nil for the shared section.
  public var company: String?
  /// The area, such as `erp.company`.
  public var area: String
  /// The revision after the change (0 when deleted).
  public var revision: Int64

  /// A change.
  public init(kind: Kind, company: String?, area: String, revision: Int64) {
    self.kind = kind
    self.company = company
    self.area = area
    self.revision = revision
  }
}

/// Fans committed changes out to the open Watch calls.
public final class SettingsEventBus: Sendable {
  private struct State {
    var subscribers: [UInt64: AsyncStream<SettingsChange>.Continuation] = [:]
    var next: UInt64 = 0
  }

  private let state = Mutex(State())

  /// An empty bus.
  public init() {}

  /// Tells every subscriber about `change`.
  public func publish(_ change: SettingsChange) {
    state.withLock { state in
      for continuation in state.subscribers.values { continuation.yield(change) }
    }
  }

  /// A stream of the changes from now on, ended by `finishAll` or when dropped.
  /// A slow reader loses the oldest changes past 1,024 pending.
  public func subscribe() -> AsyncStream<SettingsChange> {
    let (stream, continuation) = AsyncStream.makeStream(
      of: SettingsChange.self, bufferingPolicy: .bufferingNewest(1024))
    let id = state.withLock { state in
      let id = state.next
      state.next += 1
      state.subscribers[id] = continuation
      return id
    }
    continuation.onTermination = { [weak self] _ in
      _ = self?.state.withLock { $0.subscribers.removeValue(forKey: id) }
    }
    return stream
  }

  /// Ends every subscription (on shutdown).
  public func finishAll() {
    let subscribers = state.withLock { state in
      defer { state.subscribers.removeAll() }
      return Array(state.subscribers.values)
    }
    for continuation in subscribers { continuation.finish() }
  }
}
