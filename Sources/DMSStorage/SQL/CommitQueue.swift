import Foundation
import Synchronization

/// The one connection a backend writes through, serially.
protocol CommitWriter: Sendable {
  /// Runs `drain` on the writer's connection, after any drain before it.
  func schedule(_ drain: @escaping @Sendable (any WriterSession) -> Void)
}

/// The writer's connection, with the transaction control group commit needs.
protocol WriterSession: SQLSession {
  /// Opens the batch's transaction (SQLite: BEGIN IMMEDIATE; PostgreSQL: BEGIN and, on
  /// the first writer connection, the lock under which the registry's, the shared
  /// section's and the operators' writers of every instance take turns).
  func begin() throws
  /// Takes what orders this batch's commit among every writer's, and tells the other
  /// instances that it changed something (PostgreSQL: a lock held until the COMMIT, so
  /// that the feed rows written next get positions in commit order across connections
  /// and instances, and `pg_notify`, delivered at the COMMIT, in one statement;
  /// SQLite's single writer needs neither). Called only by batches that change
  /// something, just before their feed rows are written.
  func orderCommit() throws
  /// Commits it durably; `effects` are what the batch changed (PostgreSQL records the
  /// security ones for the other instances in the same transaction).
  func commit(effects: [CommitEffect]) throws
  /// Whether a batch that failed with `error` may run again from the start (PostgreSQL:
  /// a deadlock between two writers, one of which the database rolled back).
  func mayRetry(after error: any Error) -> Bool
  /// Rolls back whatever is open (best effort: the connection may be gone).
  func rollback()
  /// Whether a transaction is still open (a backend may have ended it on an error).
  var isInsideTransaction: Bool { get }
  /// Whether each job of a batch runs in a savepoint of its own (SQLite, where one
  /// costs nothing). Otherwise (PostgreSQL, where each is a round trip) jobs run
  /// without: a job that fails having only read (a stale revision, a missing company)
  /// leaves nothing to undo, and when one fails after a write or with a database error
  /// the batch is rolled back and runs again without it.
  var savepointsPerJob: Bool { get }
  /// Starts watching the statements of the batch's job `index` (without savepoints);
  /// nil after its last job.
  func markJob(_ index: Int?)
  /// Whether the job since `markJob` ran only reads that succeeded: its failure leaves
  /// the transaction as it was.
  var jobLeftNoTrace: Bool { get }
  /// The `security_feed` row the last commit wrote, if any (PostgreSQL).
  var securityFeedPosition: Int64? { get }
  /// The companies' documents read in the open transaction, shared by its jobs (a batch
  /// without savepoints, which runs again whole when a job fails after a write); nil
  /// where each job keeps its own (SQLite: a job's savepoint may be rolled back).
  var batchSnapshots: SnapshotStore? { get }
  /// Whether the next transaction's jobs gather their document writes into one
  /// statement at its end (`SnapshotStore.flush`; PostgreSQL) rather than sending each.
  var gathersWrites: Bool { get set }
  /// Whether this transaction ends with `commitJournal` rather than step by step.
  var writesJournalAtOnce: Bool { get }
  /// Writes the gathered documents and the journals' rows among `produced`, orders the
  /// commit and commits (called holding the store's ordering lock); the effects, each
  /// change with its position (PostgreSQL: one statement and the COMMIT).
  func commitJournal(_ produced: [CommitEffect]) throws -> [CommitEffect]
}

extension WriterSession {
  /// Each job keeps its own snapshots, and sends its own writes (SQLite, and a writer
  /// whose connection could not be made).
  var batchSnapshots: SnapshotStore? { nil }
  var gathersWrites: Bool {
    get { false }
    set {}
  }
  /// Step by step (SQLite, and a writer whose connection could not be made).
  var writesJournalAtOnce: Bool { false }
  func commitJournal(_ produced: [CommitEffect]) throws -> [CommitEffect] {
    preconditionFailure("commitJournal without writesJournalAtOnce")
  }
}

/// Group commit: writes that arrive together run in one transaction, each in its own
/// savepoint, and each caller resumes only after the shared commit is durable.
///
/// Both backends write this way: SQLite through GRDB's serial writer (one queue),
/// PostgreSQL through several writer connections (a queue each, `DatabaseStore`'s
/// lanes). The queues of one store share an ordering lock: a batch that changed
/// something writes its feed rows, commits and applies its effects holding it, so
/// effects are applied in commit order whichever connection committed.
///
/// A caller queues its job; if no drain is under way it starts one on the serial
/// writer. A drain takes every queued job as one batch, commits it, answers each
/// caller, and takes the jobs that arrived meanwhile as the next batch, until none is
/// left. A job that throws rolls back its savepoint alone; if SQLite aborts the whole
/// transaction (disk full, I/O error) or the commit fails, every job of the batch fails
/// with that error and none of it is kept (so too on PostgreSQL when the connection is
/// lost). Errors reach the callers as the backend raised them; the store maps (and
/// logs) them once (`DatabaseStore.database`).
///
/// Each commit is durable before anyone hears of it: SQLite's writer runs with
/// `synchronous=FULL`, so COMMIT returns once the WAL is on disk (PostgreSQL's COMMIT
/// returns once its WAL is flushed); then the batch's
/// effects are applied (read cache, change feed) and its callers answered.
///
/// The drain runs on the writer's thread, which task cancellation does not reach:
/// a caller that goes away cannot interrupt the statements of a batch that carries
/// other callers' writes. Its write still commits (or fails) with the batch.
final class CommitQueue: Sendable {
  /// One queued transaction body and its caller.
  private struct Job: Sendable {
    /// The company whose rows the job writes, if one.
    let company: Int64?
    let work: @Sendable (any WriterSession) throws -> (any Sendable, [CommitEffect])
    let caller: CheckedContinuation<any Sendable, any Error>
  }

  private struct State {
    var pending: [Job] = []
    /// A drain is queued or running on the writer: it will take what is queued now.
    var draining = false
  }

  private let state = Mutex(State())
  private let writer: any CommitWriter
  private let ordering: NSLock
  private let maxBatch: Int
  /// Applies the effects of committed jobs (caches, change feed), in commit order,
  /// still on the writer (whose session it is given), before their callers resume.
  private let committed: @Sendable (any WriterSession, [CommitEffect]) -> Void
  /// Prepares a batch without savepoints of several jobs, given the companies they
  /// write (`StoreCompanyTransaction.prefetch` or `.lockInOrder`).
  private let prepare: @Sendable ([Int64], any WriterSession) throws -> Void

  init(
    writer: any CommitWriter, ordering: NSLock, maxBatch: Int = 256,
    prepare: @escaping @Sendable ([Int64], any WriterSession) throws -> Void = { _, _ in },
    committed: @escaping @Sendable (any WriterSession, [CommitEffect]) -> Void
  ) {
    self.writer = writer
    self.ordering = ordering
    self.maxBatch = maxBatch
    self.prepare = prepare
    self.committed = committed
  }

  /// Runs `work` in a transaction shared with whatever else is queued; `company` is the
  /// company whose rows it writes, if one.
  func run<Result: Sendable>(
    company: Int64? = nil,
    _ work: @escaping @Sendable (any WriterSession) throws -> (Result, [CommitEffect])
  ) async throws -> Result {
    let result = try await withCheckedThrowingContinuation { (caller: CheckedContinuation<any Sendable, any Error>) in
      let job = Job(
        company: company,
        work: { db in
          let (result, effects) = try work(db)
          return (result, effects)
        }, caller: caller)
      let startDrain = state.withLock { state in
        state.pending.append(job)
        defer { state.draining = true }
        return !state.draining
      }
      if startDrain { writer.schedule { session in self.drain(session) } }
    }
    // The job's `work` returned a `Result`.
    return result as! Result  // swift-format-ignore: NeverForceUnwrap
  }

  /// Commits batches until nothing is queued.
  private func drain(_ db: any WriterSession) {
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
  private func commit(_ jobs: [Job], _ db: any WriterSession) {
    var attempt = 1
    /// Jobs that failed in a way only a rollback undoes, and why: the batch runs
    /// again without them.
    var excluded: [Int: any Error] = [:]
    let gathering = db.gathersWrites
    defer { db.gathersWrites = gathering }
    while true {
      switch attemptCommit(jobs, excluded: excluded, db) {
      case .success(let outcomes):
        for (job, outcome) in zip(jobs, outcomes) {
          switch outcome {
          case .success(let (value, _)): job.caller.resume(returning: value)
          case .failure(let error): job.caller.resume(throwing: error)
          }
        }
        return
      case .failure(let failure):
        if let rerun = failure.error as? Rerun {
          excluded[rerun.index] = rerun.error
          continue
        }
        if failure.error is GatheredWritesRefused {
          // Again, each job sending its own writes: the refusal is then its job's.
          db.gathersWrites = false
          continue
        }
        if attempt < 3, db.mayRetry(after: failure.error) {
          attempt += 1
          continue
        }
        for (index, job) in jobs.enumerated() {
          // A job that failed on its own keeps its own reason.
          if index < failure.outcomes.count, case .failure(let own) = failure.outcomes[index] {
            job.caller.resume(throwing: own)
          } else {
            job.caller.resume(throwing: failure.error)
          }
        }
        return
      }
    }
  }

  private typealias Outcome = Result<(any Sendable, [CommitEffect]), any Error>

  /// A job failed after writing (or with a database error) in a batch without
  /// savepoints.
  private struct Rerun: Error {
    let index: Int
    let error: any Error
  }

  /// The database refused the statement that wrote the documents the batch's jobs
  /// gathered (`SnapshotStore.flush`): which job's it is, it cannot say.
  private struct GatheredWritesRefused: Error {}

  /// Why a batch failed as a whole, and what its jobs had done by then.
  private struct BatchFailure: Error {
    let error: any Error
    let outcomes: [Outcome]
  }

  /// Runs the jobs in one transaction and commits it; each job's outcome, or the
  /// failure that undid the whole batch.
  private func attemptCommit(
    _ jobs: [Job], excluded: [Int: any Error], _ db: any WriterSession
  ) -> Result<[Outcome], BatchFailure> {
    var outcomes: [Outcome] = []
    outcomes.reserveCapacity(jobs.count)
    do {
      try db.begin()
      do {
        if jobs.count == 1 {
          // Alone: the transaction is the savepoint.
          outcomes.append(.success(try jobs[0].work(db)))
        } else if !db.savepointsPerJob {
          let companies = jobs.indices.compactMap { excluded[$0] == nil ? jobs[$0].company : nil }
          if companies.count > 1 { try prepare(companies, db) }
          for (index, job) in jobs.enumerated() {
            if let known = excluded[index] {
              outcomes.append(.failure(known))
              continue
            }
            db.markJob(index)
            do {
              outcomes.append(.success(try job.work(db)))
            } catch {
              // A statement an earlier job sent failed (`SQLSession.send`).
              if error is SentStatementFailed { throw error }
              // A lost connection, or a deadlock: the whole batch failed (and a
              // deadlocked one runs again, this job in it).
              if !db.isInsideTransaction || db.mayRetry(after: error) { throw error }
              guard db.jobLeftNoTrace else { throw Rerun(index: index, error: error) }
              outcomes.append(.failure(error))
            }
          }
          db.markJob(nil)
        } else {
          // One savepoint per job.
          for job in jobs {
            try db.execute("SAVEPOINT job")
            do {
              let produced = try job.work(db)
              try db.execute("RELEASE SAVEPOINT job")
              outcomes.append(.success(produced))
            } catch {
              // SQLite rolls the whole transaction back on some errors (disk full,
              // I/O), PostgreSQL on a lost connection: then nothing of the batch can
              // be kept.
              if !db.isInsideTransaction { throw error }
              try db.execute("ROLLBACK TO SAVEPOINT job")
              try db.execute("RELEASE SAVEPOINT job")
              outcomes.append(.failure(error))
            }
          }
        }
        // What the jobs that succeeded changed, in their order.
        let produced = outcomes.flatMap { (try? $0.get())?.1 ?? [] }
        if !produced.isEmpty, db.writesJournalAtOnce {
          try ordering.withLock {
            let effects = try db.commitJournal(produced)
            committed(db, effects)
          }
          return .success(outcomes)
        }
        // The documents the batch's jobs wrote, in one statement (PostgreSQL).
        try db.batchSnapshots?.flush(db)
        if produced.isEmpty {
          try db.commit(effects: [])
        } else {
          // The audit's rows first, outside the ordering: only the feed's rows and the
          // COMMIT wait for the other writers.
          let journal = try Journal.writeAudit(produced, db)
          try ordering.withLock {
            try db.orderCommit()
            let effects = try Journal.writeChanges(journal, db)
            try db.commit(effects: effects)
            committed(db, effects)
          }
        }
      } catch {
        db.rollback()
        throw error
      }
    } catch let failed as SentStatementFailed {
      // The database refused a statement a job sent without waiting: the batch runs
      // again without that job (unless alone, or a deadlock, which runs it whole).
      if let index = failed.job, jobs.count > 1, excluded[index] == nil, !db.mayRetry(after: failed.error) {
        return .failure(BatchFailure(error: Rerun(index: index, error: failed.error), outcomes: outcomes))
      }
      if failed.job == nil, failed.refused, jobs.count > 1, db.gathersWrites, !db.mayRetry(after: failed.error) {
        return .failure(BatchFailure(error: GatheredWritesRefused(), outcomes: outcomes))
      }
      return .failure(BatchFailure(error: failed.error, outcomes: outcomes))
    } catch {
      return .failure(BatchFailure(error: error, outcomes: outcomes))
    }
    return .success(outcomes)
  }
}

/// What a committed transaction changes outside the database: the read cache and the
/// change feed.
enum CommitEffect: Sendable {
  /// The change-feed row, if this is one.
  var change: SettingsChange? {
    if case .change(let change) = self { change } else { nil }
  }

  case change(SettingsChange)
  /// A change-feed row to write at the commit; `Journal.writeChanges` makes it a
  /// `.change`.
  case pendingChange(Journal.PendingChange)
  /// An audit row to write at the commit (`Journal.writeAudit`).
  case audit(Journal.AuditRow)
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
