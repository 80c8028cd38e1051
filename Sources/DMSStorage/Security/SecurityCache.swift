import DMSDomain
import Foundation
import Synchronization

/// Every operator and every live session, in memory, so that a call's session is
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
    var sessions: [SessionTokenHash: Session] = [:]
  }

  private let state = Mutex(State())

  /// Fills the cache at start-up.
  func load(operators: [StoredOperator], sessions: [SessionRecord]) {
    let now = ContinuousClock.now
    state.withLock { state in
      state.operators = Dictionary(uniqueKeysWithValues: operators.map { ($0.id, CachedOperator($0)) })
      state.sessions = Dictionary(
        sessions.map { ($0.tokenHash, Session(record: $0, lastUsed: now)) }, uniquingKeysWith: { a, _ in a })
    }
  }

  func principal(forTokenHash tokenHash: SessionTokenHash, at now: Date, idleTimeout: Duration) -> SessionPrincipal? {
    let clock = ContinuousClock.now
    return state.withLock { state -> SessionPrincipal? in
      guard let session = state.sessions[tokenHash] else { return nil }
      guard session.record.expiresAt > now, session.lastUsed.advanced(by: idleTimeout) > clock,
        let found = state.operators[session.record.operatorID]
      else {
        state.sessions[tokenHash] = nil
        return nil
      }
      state.sessions[tokenHash]?.lastUsed = clock
      return SessionPrincipal(session: session.record, operator: found.stored, companyKeys: found.companyKeys)
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
      state.sessions = state.sessions.filter { $0.value.record.operatorID != id }
    }
  }

  func sessionOpened(_ record: SessionRecord) {
    let now = ContinuousClock.now
    state.withLock { $0.sessions[record.tokenHash] = Session(record: record, lastUsed: now) }
  }

  func sessionEnded(_ tokenHash: SessionTokenHash) {
    state.withLock { _ = $0.sessions.removeValue(forKey: tokenHash) }
  }

  func sessionsEnded(operatorID: Int64, keeping: SessionTokenHash?) {
    state.withLock { state in
      state.sessions = state.sessions.filter { $0.value.record.operatorID != operatorID || $0.key == keeping }
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
