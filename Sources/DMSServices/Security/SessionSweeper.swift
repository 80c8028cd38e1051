import DMSStorage
import Foundation
import Logging

/// Removes ended sessions from the store and from memory: those past their absolute
/// expiry, and those idle longer than the idle timeout. A session is refused as soon as
/// it is over whether or not it was swept; sweeping keeps the table and the cache from
/// growing with sessions nobody ends (a client that just goes away). The server runs
/// `sweep()` every minute.
public struct SessionSweeper: Sendable {
  private let store: any SettingsStore
  private let idleTimeout: Duration
  private let logger: Logger

  /// A sweeper of `store`'s sessions.
  public init(store: any SettingsStore, configuration: SecurityConfiguration, logger: Logger) {
    self.store = store
    self.idleTimeout = configuration.idleTimeout
    self.logger = logger
  }

  /// One sweep; returns how many sessions it removed. A failure is logged and
  /// retried at the next sweep.
  @discardableResult
  public func sweep(now: Date = Date()) async -> Int {
    let idle = store.operators.idleSessions(idleTimeout: idleTimeout)
    do {
      let expired = try await store.operators.transaction(by: .system("session sweep")) { tx in
        try tx.removeSessions(idle)
        return try tx.removeExpiredSessions(before: now)
      }
      let removed = idle.count + expired
      if removed > 0 {
        logger.debug("ended sessions removed", metadata: ["idle": "\(idle.count)", "expired": "\(expired)"])
      }
      return removed
    } catch {
      logger.warning("ended sessions could not be removed: \(error)")
      return 0
    }
  }
}
