/// A queued message's state (MAIL-2): queued → sending → sent (kept when CFG-3 is false,
/// deleted otherwise) or back to queued for another attempt, or failed.
public enum MailDeliveryState: String, Sendable, CaseIterable {
  /// Waiting for its next attempt.
  case queued
  /// Claimed by a worker, under a lease: a lease that runs out (the worker died) puts it
  /// back in line, so a message is sent at least once.
  case sending
  /// Sent and kept (DeleteMailsAfterSending false, CFG-3).
  case sent
  /// Given up: a permanent refusal (5xx) or the last attempt failed. An administrator
  /// may retry or delete it.
  case failed
}

/// When a failed attempt is tried again: exponential backoff with jitter, up to a
/// number of attempts (configuration `mail.max-attempts`, `mail.first-retry-seconds`,
/// `mail.max-retry-seconds`).
public struct MailRetryPolicy: Sendable, Hashable {
  /// Attempts in all, the first included; then the message fails.
  public var maxAttempts: Int
  /// The wait after the first failed attempt, in seconds; it doubles after each one.
  public var firstDelay: Double
  /// The longest wait, in seconds.
  public var maxDelay: Double

  public init(maxAttempts: Int = 8, firstDelay: Double = 30, maxDelay: Double = 3600) {
    self.maxAttempts = maxAttempts
    self.firstDelay = firstDelay
    self.maxDelay = maxDelay
  }

  /// The seconds to wait after `attempts` attempts failed (1 or more), nil when none is
  /// left. `jitter` in 0..<1 spreads the wait over its upper half, so that messages that
  /// failed together do not come back together.
  public func delay(afterAttempts attempts: Int, jitter: Double) -> Double? {
    guard attempts < maxAttempts else { return nil }
    let exponent = min(max(attempts - 1, 0), 40)
    let full = min(firstDelay * Double(1 << min(exponent, 30)), maxDelay)
    return full * (0.5 + 0.5 * min(max(jitter, 0), 1))
  }
}
