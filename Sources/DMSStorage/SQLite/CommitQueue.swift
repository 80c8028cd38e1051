import GRDB
import Synchronization

/// Group commit: writes that arrive together run in one transaction, each in its own
/// savepoint, and each caller resumes only after the shared commit is durable.
///
/// Every caller queues its job, then takes a turn on GRDB's serial writer; a turn
/// runs every job queued by then (the first turn of a burst runs the whole burst, the
/// later ones find nothing). A job that throws rolls back its savepoint alone; if
/// SQLite aborts the whole transaction (disk full, I/O error) or the commit fails,
/// every job of the batch fails with that error and none of it is kept.
final class CommitQueue: Sendable {
  /// One queued transaction body.
  final class Job: Sendable {
    let work: @Sendable (Database) throws -> (any Sendable, [CommitEffect])
    let outcome = Mutex<Result<any Sendable, any Error>?>(nil)

    init(work: @escaping @Sendable (Database) throws -> (any Sendable, [CommitEffect])) {
      self.work = work
    }
  }

  private let pending = Mutex<[Job]>([])
  private let pool: DatabasePool
  private let maxBatch: Int
  /// Applies the effects of committed jobs (caches, change feed), in commit order,
  /// still on the writer.
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
    let job = Job(work: { db in
      let (result, effects) = try work(db)
      return (result, effects)
    })
    pending.withLock { $0.append(job) }
    try await pool.writeWithoutTransaction { db in
      while self.drain(db) {}
    }
    guard let outcome = job.outcome.withLock({ $0 }) else {
      throw StoreError(.unavailable, "the write was not run")
    }
    // The job stored what its own `work` returned: a `Result`.
    return try outcome.get() as! Result  // swift-format-ignore: NeverForceUnwrap
  }

  /// Runs up to `maxBatch` queued jobs in one transaction; whether more are queued.
  private func drain(_ db: Database) -> Bool {
    let (jobs, more) = pending.withLock { pending -> ([Job], Bool) in
      if pending.count <= maxBatch {
        defer { pending.removeAll(keepingCapacity: true) }
        return (pending, false)
      }
      let jobs = Array(pending.prefix(maxBatch))
      pending.removeFirst(maxBatch)
      return (jobs, true)
    }
    guard !jobs.isEmpty else { return false }
    var outcomes: [Result<(any Sendable, [CommitEffect]), any Error>] = []
    outcomes.reserveCapacity(jobs.count)
    do {
      try db.inTransaction(.immediate) {
        if jobs.count == 1 {
          // Alone: the transaction is the savepoint.
          outcomes.append(.success(try jobs[0].work(db)))
          return .commit
        }
        for job in jobs {
          do {
            var produced: (any Sendable, [CommitEffect])?
            try db.inSavepoint {
              produced = try job.work(db)
              return .commit
            }
            if let produced { outcomes.append(.success(produced)) }
          } catch {
            // SQLite rolls the whole transaction back on some errors (disk full,
            // I/O): then nothing of the batch can be kept.
            if !db.isInsideTransaction { throw error }
            outcomes.append(.failure(error))
          }
        }
        return .commit
      }
    } catch {
      let failure = SQLiteFailure.map(error)
      for (index, job) in jobs.enumerated() {
        // A job that failed on its own keeps its own reason.
        if index < outcomes.count, case .failure(let own) = outcomes[index] {
          job.outcome.withLock { $0 = .failure(SQLiteFailure.map(own)) }
        } else {
          job.outcome.withLock { $0 = .failure(failure) }
        }
      }
      return more
    }
    var effects: [CommitEffect] = []
    for (job, outcome) in zip(jobs, outcomes) {
      switch outcome {
      case .success(let (result, produced)):
        effects.append(contentsOf: produced)
        job.outcome.withLock { $0 = .success(result) }
      case .failure(let error):
        job.outcome.withLock { $0 = .failure(SQLiteFailure.map(error)) }
      }
    }
    committed(effects)
    return more
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
}
