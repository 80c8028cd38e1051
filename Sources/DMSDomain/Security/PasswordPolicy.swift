/// What an operator's password must be (docs/SECURITY.md). The spec sets no rule for
/// the DMS's own logins; this is the design: long rather than complicated (NIST
/// SP 800-63B), never the login, never one repeated character. Violations name the rule
/// "password policy" and say what to change, never the password.
public struct PasswordPolicy: Sendable, Hashable {
  /// The fewest characters accepted.
  public var minimumLength: Int
  /// The most characters accepted (a KDF's input is bounded).
  public var maximumLength: Int

  /// The rule's name in violations.
  public static let rule = "password policy"

  /// The default policy: 12 to 1,024 characters.
  public init(minimumLength: Int = 12, maximumLength: Int = 1024) {
    self.minimumLength = minimumLength
    self.maximumLength = maximumLength
  }

  /// Every rule `password` breaks for the operator `login`, reported on `field`.
  public func violations(of password: String, login: String, field: String = "password") -> [RuleViolation] {
    var v = Validator()
    let length = password.count
    v.require(
      length >= minimumLength, field, Self.rule,
      "must be at least \(minimumLength) characters (has \(length)); a few unrelated words make a good one")
    v.require(length <= maximumLength, field, Self.rule, "must be at most \(maximumLength) characters")
    let lowered = password.lowercased()
    let loginLowered = login.lowercased()
    v.require(
      loginLowered.isEmpty || !lowered.contains(loginLowered), field, Self.rule, "must not contain the login")
    v.require(
      length < 2 || Set(password).count > 1, field, Self.rule, "must not be one character repeated")
    return v.violations
  }

  /// Throws `ValidationFailure` when `password` breaks a rule.
  public func check(_ password: String, login: String, field: String = "password") throws(ValidationFailure) {
    let found = violations(of: password, login: login, field: field)
    if !found.isEmpty { throw ValidationFailure(found) }
  }
}
