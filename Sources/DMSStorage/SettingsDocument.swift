import DMSDomain
import Foundation

/// A settings value stored as one document per company (or in the shared section),
/// under its area name.
public protocol SettingsDocument: Codable, Sendable {
  /// The area's storage name, such as `erp.company`. Never changes once released.
  static var area: String { get }
}

extension Company: SettingsDocument {
  public static let area = "erp.company"
}

extension CompanyCenters: SettingsDocument {
  public static let area = "erp.centers"
}

extension SharedSettings: SettingsDocument {
  public static let area = "erp.shared"
}

extension APIAuthorization: SettingsDocument {
  public static let area = "apiauth"
}

/// A stored document: its value, revision, and which of its secrets are set.
public struct Stored<Value: Sendable>: Sendable {
  /// The value.
  public var value: Value
  /// Increases by one with every write; the first write makes revision 1.
  public var revision: Int64
  /// The names of the secret fields that hold a value.
  public var secretsSet: Set<String>
  /// When it was last written.
  public var updatedAt: Date

  /// A stored value.
  public init(value: Value, revision: Int64, secretsSet: Set<String>, updatedAt: Date) {
    self.value = value
    self.revision = revision
    self.secretsSet = secretsSet
    self.updatedAt = updatedAt
  }
}

/// A registered company: its code and the storage's key for it.
public struct CompanyKey: Sendable, Hashable {
  /// The storage's id: never reused, bound into every secret's encryption.
  public let id: Int64
  /// The code (ERP-3) as entered.
  public let code: String

  /// A key; made by the store.
  public init(id: Int64, code: String) {
    self.id = id
    self.code = code
  }
}
