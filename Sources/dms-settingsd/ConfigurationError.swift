/// A bad configuration value (CFG-10): start-up stops with this message.
struct ConfigurationError: Error, CustomStringConvertible {
  let description: String

  /// "key K has the value V; allowed: A".
  static func badValue(_ key: String, _ value: String, allowed: String) -> ConfigurationError {
    ConfigurationError(
      description:
        "configuration key \(key) has the value \"\(value)\"; allowed: \(allowed) (see docs/CONFIGURATION.md)")
  }
}
