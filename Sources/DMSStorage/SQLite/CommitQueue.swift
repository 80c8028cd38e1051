import Foundation
import GRDB
import Synchronization

/// Group commit: writes that arrive together run in one transaction, each in its own
/// savepoint, and each caller resumes only after the shared commit is durable.
///
/// A caller queues its job; if no drain is under way it starts one on GRDB's serial
/// writer. A drain takes every queued job as one batch, commits it, answers each
/// caller, and takes the jobs that arrived meanwhile as the next batch, until none is
/// left. A job that throws rolls back its savepoint alone; if SQLite aborts the whole
/// transaction (disk full, I/O error) or the commit fails, every job of the batch fails
/// with that error and none of it is kept. Errors reach the callers as SQLite raised
/// them; the store maps (and logs) them once (`SQLiteSettingsStore.database`).
///
/// Each commit is durable before anyone hears of it: the writer runs with
/// `synchronous=FULL`, so COMMIT returns once the WAL is on disk; then the batch's
/// effects are applied (read cache, change feed) and its callers answered.
///
/// The drain runs through GRDB's callback API, which task cancellation does not reach:
/// a caller that goes away cannot interrupt the statements of a batch that carries
/// other callers' writes. Its write still commits (or fails) with the batch.
final class CommitQueue: Sendable {
  /// One queued transaction body and its caller.
  private struct Job: Sendable {
    let work: @Sendable (Database) throws -> (any Sendable, [CommitEffect])
    let caller: CheckedContinuation<any Sendable, any Error>
  }

  private struct State {
    var pending: [Job] = []
    /// A drain is queued or running on the writer: it will take what is queued now.
    var draining = false
  }

  private let state = Mutex(State())
  private let pool: DatabasePool
  private let maxBatch: Int
  /// Applies the effects of committed jobs (caches, change feed), in commit order,
  /// still on the writer, before their callers resume.
  private let committed: @Sendable ([CommitEffect]) -> Void

  init(pool: DatabasePool, maxBatch: Int = 256, committed: @escaping @Sendable ([CommitEffect]) -> Void) {
    self.pool = pool
    self.maxBatch = maxBatch
    self.committed = committed
  }

  /// Runs `work` in a transaction shared with whatever else is queued.
  func run<Result: Sendable>(
    _ work: @escaping @Sendable (Database) throws -> (Result, [CommitEffect])
  ) async throws -> Result {
    let result = try await withCheckedThrowingContinuation { (caller: CheckedContinuation<any Sendable, any Error>) in
      let job = Job(
        work: { db in
          let (result, effects) = try work(db)
          return (result, effects)
        }, caller: caller)
      let startDrain = state.withLock { state in
        state.pending.append(job)
        defer { state.draining = true }
        return !state.draining
      }
      if startDrain { pool.asyncWriteWithoutTransaction { db in self.drain(db) } }
    }
    // The job's `work` returned a `Result`.
    return result as! Result  // swift-format-ignore: NeverForceUnwrap
  }

  /// Commits batches until nothing is queued.
  private func drain(_ db: Database) {
    while true {
      let jobs = state.withLock { state -> [Job] in
        if state.pending.isEmpty {
          state.draining = false
          return []
        }
        if state.pending.count <= maxBatch {
          defer { state.pending.removeAll(keepingCapacity: true) }
          return state.pending
        }
        defer { state.pending.removeFirst(maxBatch) }
        return Array(state.pending.prefix(maxBatch))
      }
      guard !jobs.isEmpty else { return }
      commit(jobs, db)
    }
  }

  /// Runs one batch in one transaction and answers its callers.
  private func commit(_ jobs: [Job], _ db: Database) {
    var outcomes: [Result<(any Sendable, [CommitEffect]), any Error>] = []
    outcomes.reserveCapacity(jobs.count)
    do {
      try db.inTransaction(.immediate) {
        if jobs.count == 1 {
          // Alone: the transaction is the savepoint.
          outcomes.append(.success(try jobs[0].work(db)))
          return .commit
        }
        // Savepoints by hand, with prepared statements: one pair per job.
        let savepoint = try db.cachedStatement(sql: "SAVEPOINT job")
        let release = try db.cachedStatement(sql: "RELEASE SAVEPOINT job")
        let rollback = try db.cachedStatement(sql: "ROLLBACK TO SAVEPOINT job")
        for job in jobs {
          try savepoint.execute()
          do {
            let produced = try job.work(db)
            try release.execute()
            outcomes.append(.success(produced))
          } catch {
            // SQLite rolls the whole transaction back on some errors (disk full,
            // I/O): then nothing of the batch can be kept.
            if !db.isInsideTransaction { throw error }
            try rollback.execute()
            try release.execute()
            outcomes.append(.failure(error))
          }
        }
        return .commit
      }
    } catch {
      for (index, job) in jobs.enumerated() {
        // A job that failed on its own keeps its own reason.
        if index < outcomes.count, case .failure(let own) = outcomes[index] {
          job.caller.resume(throwing: own)
        } else {
          job.caller.resume(throwing: error)
        }
      }
      return
    }
    var effects: [CommitEffect] = []
    var results: [Result<any Sendable, any Error>] = []
    results.reserveCapacity(outcomes.count)
    for outcome in outcomes {
      switch outcome {
      case .success(let (result, produced)):
        effects.append(contentsOf: produced)
        results.append(.success(result))
      case .failure(let error):
        results.append(.failure(error))
      }
    }
    committed(effects)
    for (job, result) in zip(jobs, results) {
      switch result {
      case .success(let value): job.caller.resume(returning: value)
      case .failure(let error): job.caller.resume(throwing: error)
      }
    }
  }
}

/// What a committed transaction changes outside the database: the read cache and the
/// change feed.
enum CommitEffect: Sendable {
  case change(SettingsChange)
  case document(companyID: Int64, area: String, ReadCache.Entry)
  case documentRemoved(companyID: Int64, area: String)
  case companyCreated(codeKey: String, CompanyKey)
  case companyDeleted(CompanyKey, codeKey: String)
  case operatorWritten(StoredOperator)
  case operatorDeleted(id: Int64)
  case sessionOpened(SessionRecord)
  case sessionEnded(SessionTokenHash)
  case apiSystemWritten(StoredApiSystem)
  case apiSystemDeleted(id: Int64)
  case sessionsEnded(SessionHolder, keeping: SessionTokenHash?)
  case sessionsExpired(before: Date)
}
