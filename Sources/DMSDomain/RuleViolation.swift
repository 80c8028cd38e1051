/// One field breaking one rule of the specification.
public struct RuleViolation: Hashable, Sendable, CustomStringConvertible {
  /// The field's path, as in the RPC message (`company.short_name`).
  public var field: String
  /// The spec rule, such as `ERP-3`; empty where only a general limit applies.
  public var rule: String
  /// What is wrong, for a person. Never contains a secret's value.
  public var message: String

  /// A violation of `rule` by `field`.
  public init(field: String, rule: String, message: String) {
    self.field = field
    self.rule = rule
    self.message = message
  }

  public var description: String {
    rule.isEmpty ? "\(field): \(message)" : "\(field) [\(rule)]: \(message)"
  }
}

/// Validation failed: every broken rule, so the caller can fix them all at once.
public struct ValidationFailure: Error, Hashable, Sendable, CustomStringConvertible {
  /// The broken rules, in field order.
  public var violations: [RuleViolation]

  /// A failure listing `violations` (not empty).
  public init(_ violations: [RuleViolation]) {
    self.violations = violations
  }

  public var description: String {
    "invalid settings: " + violations.map(\.description).joined(separator: "; ")
  }
}

/// Collects violations while a value is checked.
public struct Validator: Sendable {
  /// What was found so far.
  public private(set) var violations: [RuleViolation] = []

  /// An empty validator.
  public init() {}

  /// Records a violation.
  public mutating func add(_ field: String, _ rule: String, _ message: String) {
    violations.append(RuleViolation(field: field, rule: rule, message: message))
  }

  /// Records violations found elsewhere.
  public mutating func append(_ found: [RuleViolation]) {
    violations.append(contentsOf: found)
  }

  /// Records a violation unless `condition` holds.
  public mutating func require(_ condition: Bool, _ field: String, _ rule: String, _ message: @autoclosure () -> String)
  {
    if !condition { add(field, rule, message()) }
  }

  /// Checks a required text: not blank, at most `maxLength` characters.
  public mutating func requireText(_ value: String, _ field: String, _ rule: String, maxLength: Int = TextLimits.name) {
    if value.allSatisfy(\.isWhitespace) {
      add(field, rule, "is required")
    } else {
      limit(value, field, maxLength: maxLength)
    }
  }

  /// Checks an optional text's length.
  public mutating func limit(_ value: String, _ field: String, maxLength: Int = TextLimits.name) {
    if value.count > maxLength { add(field, "", "must be at most \(maxLength) characters (has \(value.count))") }
  }

  /// Throws `ValidationFailure` if anything was recorded.
  public func check() throws(ValidationFailure) {
    if !violations.isEmpty { throw ValidationFailure(violations) }
  }
}

/// Length limits of free-text fields: generous, but bounded.
public enum TextLimits {
  /// Names, logins, servers: 256 characters.
  public static let name = 256
  /// Secrets such as passwords and tokens: 4,096 characters.
  public static let secret = 4096
  /// PEM keys: 64 KiB.
  public static let pem = 64 << 10
}
