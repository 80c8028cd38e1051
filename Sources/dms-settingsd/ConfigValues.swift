import Configuration
import Foundation

/// Reads configuration values as text and parses them here, so a bad value (CFG-10)
/// stops start-up with a message naming the key, the value and the allowed values.
///
/// swift-configuration's getters with a default silently return the default for a
/// value of the wrong type; reading text first (and JSON numbers or booleans
/// through the typed getters) keeps every bad value visible.
struct ConfigValues {
  let reader: ConfigReader

  /// The value of `key` as text, whatever its type in the source; nil when absent.
  func text(_ key: String) -> String? {
    if let text = reader.string(forKey: ConfigKey(key)) { return text }
    if let value = try? reader.requiredInt(forKey: ConfigKey(key)) { return String(value) }
    if let value = try? reader.requiredBool(forKey: ConfigKey(key)) { return String(value) }
    if let values = try? reader.requiredStringArray(forKey: ConfigKey(key)) { return values.joined(separator: ",") }
    if let values = try? reader.requiredIntArray(forKey: ConfigKey(key)) {
      return values.map(String.init).joined(separator: ",")
    }
    return nil
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
