import Logging
import Synchronization

/// Storage failures logged once per kind and window, with a count of those left out.
///
/// A database that is down fails every call that reaches it: under load a thousand a
/// second and more (a PostgreSQL restart under W6 wrote 1,600 error lines in one
/// second), which would bury the lines an operator needs. The first failure of a kind
/// is logged at once; the same kind again within `window` is only counted; the first
/// after the window is logged with how many were left out (metadata `repeats`).
final class RepeatedErrors: Sendable {
  private struct Seen {
    var logged: ContinuousClock.Instant
    var repeats: Int
  }

  private let seen = Mutex<[String: Seen]>([:])
  let window: Duration
  /// The most kinds kept at once; beyond them (a flood of different failures) each is
  /// logged.
  static let kinds = 64

  init(window: Duration = .seconds(10)) {
    self.window = window
  }

  /// Whether a failure of `kind` is to be logged now: nil to leave it out (it is
  /// counted), else how many of its kind were left out since the last one logged.
  func admit(_ kind: String, now: ContinuousClock.Instant = .now) -> Int? {
    seen.withLock { seen in
      if let known = seen[kind] {
        if now - known.logged < window {
          seen[kind]?.repeats += 1
          return nil
        }
        seen[kind] = Seen(logged: now, repeats: 0)
        return known.repeats
      }
      if seen.count >= Self.kinds {
        let window = window
        seen = seen.filter { now - $0.value.logged < window }
        if seen.count >= Self.kinds { return 0 }
      }
      seen[kind] = Seen(logged: now, repeats: 0)
      return 0
    }
  }

  /// Logs `message` as an error unless the same message was logged within the window.
  func error(_ message: String, metadata: Logger.Metadata, _ logger: Logger) {
    guard let repeats = admit(message) else { return }
    guard repeats > 0 else { return logger.error("\(message)", metadata: metadata) }
    var metadata = metadata
    metadata["repeats"] = "\(repeats)"
    logger.error("\(message) (and \(repeats) more like it since the last logged, left out)", metadata: metadata)
  }
}
