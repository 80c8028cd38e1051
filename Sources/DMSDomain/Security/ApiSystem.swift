/// A system that works with the DMS through its API (APISYS-1): only its name is
/// defined by people; the DMS gives it a unique identifier and, on request, a secret
/// with which it signs in for inter-service calls (docs/SECURITY.md). Its names are the
/// choices of an operator's cooperating system (APISYS-4).
public struct ApiSystem: Sendable, Hashable {
  /// The identifier the DMS generated (APISYS-1): never changes, never reused.
  public var identifier: String
  /// The name shown and chosen on the employee card: at least 2 characters (APISYS-3),
  /// unique ignoring case.
  public var name: String

  public init(identifier: String, name: String) {
    self.identifier = identifier
    self.name = name
  }

  /// The predefined system (APISYS-2), added once by the migration that introduced API
  /// systems.
  public static let predefinedName = "HRM"

  /// The shortest name (APISYS-3).
  public static let minNameLength = 2
  /// The longest name.
  public static let maxNameLength = 128

  /// The key names are unique under: lower case.
  public static func nameKey(_ name: String) -> String { name.lowercased() }

  /// A new system's name, trimmed, or the rules it breaks (field `name`).
  public static func validatedName(_ name: String) throws(ValidationFailure) -> String {
    let trimmed = String(name.trimmingWhitespace())
    var v = Validator()
    v.require(
      trimmed.count >= minNameLength, "name", "APISYS-3",
      trimmed.isEmpty ? "is required" : "must be at least \(minNameLength) characters")
    v.require(
      trimmed.count <= maxNameLength, "name", "APISYS-3", "must be at most \(maxNameLength) characters")
    v.require(
      !trimmed.unicodeScalars.contains(where: {
        $0.properties.generalCategory == .control || $0.properties.generalCategory == .format
      }), "name", "APISYS-3", "must not contain control characters")
    try v.check()
    return trimmed
  }
}
