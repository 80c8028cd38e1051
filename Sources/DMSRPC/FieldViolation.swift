/// One rule broken by one field of a request.
public struct FieldViolation: Hashable, Sendable, CustomStringConvertible {
  /// The field's path in the request, such as `company.short_name`.
  public var field: String
  /// The spec rule, such as `ERP-3`, or empty where none applies.
  public var rule: String
  /// What is wrong, for a person; never a secret's value.
  public var description: String

  /// A violation of `rule` by `field`.
  public init(field: String, rule: String = "", description: String) {
    self.field = field
    self.rule = rule
    self.description = description
  }
}
