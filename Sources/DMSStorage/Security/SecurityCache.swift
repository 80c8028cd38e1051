import DMSDomain
import Foundation
import Synchronization

/// Every operator, every API system and every live session, in memory, so that a call's session is
/// checked without a database read. It follows the commits like `ReadCache`: the store
/// applies each committed transaction's effects here before the writer hears back, so
/// a disabled operator's next call is refused. (With several instances on PostgreSQL,
/// the other instances' commits will arrive through the change feed's notifications.)
final class SecurityCache: Sendable {
  private struct Session {
    var record: SessionRecord
    var lastUsed: ContinuousClock.Instant
  }

  /// An operator with its companies' keys, made once per change rather than per call.
  private struct CachedOperator {
    var stored: StoredOperator
    var companyKeys: Set<String>

    init(_ stored: StoredOperator) {
      self.stored = stored
      companyKeys = Set(stored.value.companies.map(Company.codeKey))
    }
  }

  private struct State {
    var operators: [Int64: CachedOperator] = [:]
    var systems: [Int64: StoredApiSystem] = [:]
    var sessions: [SessionTokenHash: Session] = [:]
  }

  private let state = Mutex(State())

  /// Fills the cache at start-up.
  func load(operators: [StoredOperator], systems: [StoredApiSystem], sessions: [SessionRecord]) {
    let now = ContinuousClock.now
    state.withLock { state in
      state.operators = Dictionary(uniqueKeysWithValues: operators.map { ($0.id, CachedOperator($0)) })
      state.systems = Dictionary(uniqueKeysWithValues: systems.map { ($0.id, $0) })
      state.sessions = Dictionary(
        sessions.map { ($0.tokenHash, Session(record: $0, lastUsed: now)) }, uniquingKeysWith: { a, _ in a })
    }
  }

  func principal(forTokenHash tokenHash: SessionTokenHash, at now: Date, idleTimeout: Duration) -> SessionPrincipal? {
    let clock = ContinuousClock.now
    return state.withLock { state -> SessionPrincipal? in
      guard let session = state.sessions[tokenHash] else { return nil }
      let holder: SessionPrincipal.Holder?
      switch session.record.holder {
      case .operator(let id):
        holder = state.operators[id].map { .operator($0.stored, companyKeys: $0.companyKeys) }
      case .system(let id):
        holder = state.systems[id].map { .system($0) }
      }
      guard session.record.expiresAt > now, session.lastUsed.advanced(by: idleTimeout) > clock, let holder else {
        state.sessions[tokenHash] = nil
        return nil
      }
      state.sessions[tokenHash]?.lastUsed = clock
      return SessionPrincipal(session: session.record, holder: holder)
    }
  }

  func idleSessions(idleTimeout: Duration) -> [SessionTokenHash] {
    let now = ContinuousClock.now
    return state.withLock { state in
      state.sessions.filter { $0.value.lastUsed.advanced(by: idleTimeout) <= now }.map(\.key)
    }
  }

  // MARK: Following the commits

  func operatorWritten(_ stored: StoredOperator) {
    let cached = CachedOperator(stored)
    state.withLock { $0.operators[stored.id] = cached }
  }

  func operatorDeleted(id: Int64) {
    state.withLock { state in
      state.operators[id] = nil
      state.sessions = state.sessions.filter { $0.value.record.holder != .operator(id) }
    }
  }

  func apiSystemWritten(_ stored: StoredApiSystem) {
    state.withLock { $0.systems[stored.id] = stored }
  }

  func apiSystemDeleted(id: Int64) {
    state.withLock { state in
      state.systems[id] = nil
      state.sessions = state.sessions.filter { $0.value.record.holder != .system(id) }
    }
  }

  func sessionOpened(_ record: SessionRecord) {
    let now = ContinuousClock.now
    state.withLock { $0.sessions[record.tokenHash] = Session(record: record, lastUsed: now) }
  }

  func sessionEnded(_ tokenHash: SessionTokenHash) {
    state.withLock { _ = $0.sessions.removeValue(forKey: tokenHash) }
  }

  func sessionsEnded(holder: SessionHolder, keeping: SessionTokenHash?) {
    state.withLock { state in
      state.sessions = state.sessions.filter { $0.value.record.holder != holder || $0.key == keeping }
    }
  }

  func sessionsExpired(before date: Date) {
    state.withLock { state in state.sessions = state.sessions.filter { $0.value.record.expiresAt >= date } }
  }

  /// A company was deleted: it leaves every operator's companies (its rows went with it).
  func companyDeleted(codeKey: String) {
    state.withLock { state in
      for (id, cached) in state.operators where cached.companyKeys.contains(codeKey) {
        var stored = cached.stored
        stored.value.companies.removeAll { Company.codeKey($0) == codeKey }
        state.operators[id] = CachedOperator(stored)
      }
    }
  }
}
