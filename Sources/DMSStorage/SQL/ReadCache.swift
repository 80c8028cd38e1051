import Foundation
import Synchronization

/// Decoded settings documents and the code → company registry, kept in memory so a
/// read costs no database round trip and does not slow down as companies are added.
///
/// It follows the commits: the store applies each committed transaction's effects here
/// (with its change-feed rows) before the writers hear back, so a caller reads its own
/// writes. Readers fill it from the database only if no commit happened meanwhile (the
/// generation did not move), so a slow reader never puts back a value older than one a
/// commit stored. With several instances on PostgreSQL, the other instances' commits
/// arrive through the change feed (`DatabaseStore`'s catch-up), which forgets what they
/// changed.
final class ReadCache: Sendable {
  /// A cached document (or the fact that there is none).
  struct Entry: Sendable {
    /// nil: the document does not exist.
    let value: (any Sendable)?
    let revision: Int64
    let secretsSet: Set<String>
    let updatedAt: Date
  }

  /// The shared section's documents live under this pseudo company id.
  static let shared: Int64 = 0

  private struct State {
    var generation: UInt64 = 0
    var companies: [String: CompanyKey] = [:]
    var documents: [Int64: [String: Entry]] = [:]
  }

  private let state = Mutex(State())

  /// The generation to pass back to the `fill` calls of a read.
  var generation: UInt64 { state.withLock { $0.generation } }

  // MARK: Registry

  func company(codeKey: String) -> CompanyKey? {
    state.withLock { $0.companies[codeKey] }
  }

  func fillCompany(codeKey: String, _ key: CompanyKey, generation: UInt64) {
    state.withLock { state in
      if state.generation == generation { state.companies[codeKey] = key }
    }
  }

  /// A company was created (after commit).
  func companyCreated(codeKey: String, _ key: CompanyKey) {
    state.withLock { state in
      state.generation &+= 1
      state.companies[codeKey] = key
    }
  }

  /// A company was deleted (after commit): forget it and all its documents.
  func companyDeleted(_ key: CompanyKey, codeKey: String) {
    state.withLock { state in
      state.generation &+= 1
      state.companies[codeKey] = nil
      state.documents[key.id] = nil
    }
  }

  /// Forgets everything (another instance's changes could not be read): every read
  /// asks the database again.
  func clear() {
    state.withLock { state in
      state.generation &+= 1
      state.companies = [:]
      state.documents = [:]
    }
  }

  // MARK: Documents

  func document(companyID: Int64, area: String) -> Entry? {
    state.withLock { $0.documents[companyID]?[area] }
  }

  func fillDocument(companyID: Int64, area: String, _ entry: Entry, generation: UInt64) {
    state.withLock { state in
      if state.generation == generation { state.documents[companyID, default: [:]][area] = entry }
    }
  }

  /// A document was removed (after commit): the next read asks the database.
  func documentRemoved(companyID: Int64, area: String) {
    state.withLock { state in
      state.generation &+= 1
      state.documents[companyID]?[area] = nil
    }
  }

  /// A document was written (after commit). A newer revision already
  /// cached (a later write that updated the cache first) is kept.
  func documentWritten(companyID: Int64, area: String, _ entry: Entry) {
    state.withLock { state in
      state.generation &+= 1
      if let current = state.documents[companyID]?[area], current.value != nil, current.revision > entry.revision {
        return
      }
      state.documents[companyID, default: [:]][area] = entry
    }
  }
}
