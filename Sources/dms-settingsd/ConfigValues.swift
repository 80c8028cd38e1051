import Configuration
import Foundation

/// Reads configuration values as text and parses them here, so a bad value (CFG-10)
/// stops start-up with a message naming the key, the value and the allowed values.
/// `ConfigurationSources` gives every source's values as text (a JSON file's numbers,
/// booleans and lists too).
struct ConfigValues {
  let reader: ConfigReader

  /// The value of `key` as text; nil when absent. Only keys of `ConfigurationKeys.all`.
  func text(_ key: String) -> String? {
    precondition(ConfigurationKeys.all.contains(key), "\(key) is not in ConfigurationKeys.all")
    return reader.string(forKey: ConfigKey(key))
  }

  func string(_ key: String, default value: String) -> String {
    text(key) ?? value
  }

  func optionalString(_ key: String) -> String? {
    text(key).flatMap { $0.isEmpty ? nil : $0 }
  }

  func bool(_ key: String, default value: Bool) throws -> Bool {
    guard let text = text(key) else { return value }
    switch text.lowercased() {
    case "true", "1", "yes": return true
    case "false", "0", "no": return false
    default: throw ConfigurationError.badValue(key, text, allowed: "false, true")
    }
  }

  func int(_ key: String, default value: Int, range: ClosedRange<Int>) throws -> Int {
    guard let text = text(key) else { return value }
    guard let number = Int(text), range.contains(number) else {
      throw ConfigurationError.badValue(
        key, text, allowed: "a whole number from \(range.lowerBound) to \(range.upperBound)")
    }
    return number
  }

  /// One of a closed list, compared ignoring case; returns the list's spelling.
  func choice<Value: RawRepresentable & CaseIterable>(_ key: String, default value: Value) throws -> Value
  where Value.RawValue == String {
    guard let text = text(key) else { return value }
    guard let match = Value.allCases.first(where: { $0.rawValue.lowercased() == text.lowercased() }) else {
      throw ConfigurationError.badValue(key, text, allowed: Value.allCases.map(\.rawValue).joined(separator: ", "))
    }
    return match
  }

  func list(_ key: String, default value: [String]) -> [String] {
    guard let text = text(key) else { return value }
    return text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
  }
}
