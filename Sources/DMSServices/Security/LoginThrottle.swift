import Synchronization

/// Slows down password guessing: after a few failed sign-ins for one login, or from
/// one address, each further failure doubles the wait before the next attempt is even
/// considered. The login's counter counts whether or not the login exists, so the
/// answers say nothing about which logins exist. A success clears the login's
/// counter (not the address's: one right password must not unlock guessing at others).
///
/// Memory is bounded: at most `Policy.maxTracked` logins and addresses are tracked;
/// when full, those idle longest are forgotten first.
public final class LoginThrottle: Sendable {
  /// When attempts start to wait, and how long.
  public struct Policy: Sendable {
    /// Failures of one login allowed without a wait.
    public var freeFailuresPerLogin: Int
    /// Failures from one address allowed without a wait (an office behind one NAT
    /// address mistypes too).
    public var freeFailuresPerAddress: Int
    /// The first wait; each further failure doubles it.
    public var firstWait: Duration
    /// The longest wait.
    public var maximumWait: Duration
    /// A counter with no failure for this long starts again from zero.
    public var forgetAfter: Duration
    /// The most logins and addresses tracked at once.
    public var maxTracked: Int

    /// The defaults: 3 free failures per login, 20 per address, then 1 s doubling up to
    /// 15 minutes; forgotten after an hour without failures.
    public init(
      freeFailuresPerLogin: Int = 3,
      freeFailuresPerAddress: Int = 20,
      firstWait: Duration = .seconds(1),
      maximumWait: Duration = .seconds(900),
      forgetAfter: Duration = .seconds(3600),
      maxTracked: Int = 100_000
    ) {
      self.freeFailuresPerLogin = freeFailuresPerLogin
      self.freeFailuresPerAddress = freeFailuresPerAddress
      self.firstWait = firstWait
      self.maximumWait = maximumWait
      self.forgetAfter = forgetAfter
      self.maxTracked = maxTracked
    }
  }

  private struct Counter {
    var failures: Int
    var lastFailure: ContinuousClock.Instant
    var blockedUntil: ContinuousClock.Instant
  }

  private let policy: Policy
  private let counters = Mutex<[String: Counter]>([:])

  /// A throttle with `policy`.
  public init(policy: Policy) {
    self.policy = policy
  }

  private static func loginKey(_ login: String) -> String { "login:" + login.lowercased() }
  private static func addressKey(_ address: String) -> String { "address:" + address }

  /// How long the caller must wait before an attempt for `login` from `address` is
  /// considered; nil: now.
  func wait(login: String, address: String, now: ContinuousClock.Instant = .now) -> Duration? {
    counters.withLock { counters in
      let blocked = [Self.loginKey(login), Self.addressKey(address)].compactMap { key -> ContinuousClock.Instant? in
        guard let counter = counters[key], counter.blockedUntil > now else { return nil }
        return counter.blockedUntil
      }.max()
      return blocked.map { now.duration(to: $0) }
    }
  }

  /// Records a failed attempt; returns the wait it imposes on the next one.
  @discardableResult
  func failed(login: String, address: String, now: ContinuousClock.Instant = .now) -> Duration {
    counters.withLock { counters in
      // Two counters may be added: keep room for them.
      if counters.count + 2 > policy.maxTracked { forgetIdle(&counters, now: now) }
      let a = record(&counters, key: Self.loginKey(login), free: policy.freeFailuresPerLogin, now: now)
      let b = record(&counters, key: Self.addressKey(address), free: policy.freeFailuresPerAddress, now: now)
      return max(a, b)
    }
  }

  /// How many logins and addresses are tracked now.
  var trackedCount: Int { counters.withLock { $0.count } }

  /// Records a successful sign-in: the login's counter starts again.
  func succeeded(login: String) {
    _ = counters.withLock { $0.removeValue(forKey: Self.loginKey(login)) }
  }

  private func record(_ counters: inout [String: Counter], key: String, free: Int, now: ContinuousClock.Instant)
    -> Duration
  {
    var counter = counters[key] ?? Counter(failures: 0, lastFailure: now, blockedUntil: now)
    if counter.lastFailure.duration(to: now) > policy.forgetAfter { counter.failures = 0 }
    counter.failures += 1
    counter.lastFailure = now
    let wait = delay(afterFailures: counter.failures, free: free)
    counter.blockedUntil = now.advanced(by: wait)
    counters[key] = counter
    return wait
  }

  /// The wait after `failures` failures: none up to `free`, then `firstWait`
  /// doubling, at most `maximumWait`.
  func delay(afterFailures failures: Int, free: Int) -> Duration {
    guard failures > free else { return .zero }
    let doublings = min(failures - free - 1, 40)
    var wait = policy.firstWait
    for _ in 0..<doublings {
      wait = wait * 2
      if wait >= policy.maximumWait { return policy.maximumWait }
    }
    return min(wait, policy.maximumWait)
  }

  /// Forgets the counters idle longest (a tenth of the limit), keeping memory bounded.
  private func forgetIdle(_ counters: inout [String: Counter], now: ContinuousClock.Instant) {
    counters = counters.filter { $0.value.lastFailure.duration(to: now) <= policy.forgetAfter }
    guard counters.count + 2 > policy.maxTracked else { return }
    let oldest = counters.sorted { $0.value.lastFailure < $1.value.lastFailure }.prefix(
      max(2, policy.maxTracked / 10))
    for (key, _) in oldest { counters[key] = nil }
  }
}
