import Foundation

/// A settings value stored as one document per company (or in the shared section),
/// under its area name.
///
/// The domain type is not the stored shape: each area keeps versioned record types
/// (`CompanyRecordV1`, …) in its room, and maps them to and from the domain value
/// here. A stored document records the format it was written in; reading an older
/// format upgrades it, so a domain type can gain a field without making stored
/// documents unreadable. `Tests/DMSStorageTests/Fixtures` holds documents written by
/// earlier releases, and a test reads them.
public protocol SettingsDocument: Sendable {
  /// The area's storage name, such as `erp.company`. Never changes once released.
  static var area: String { get }
  /// The format `encodeStored` writes; raised when the record changes shape.
  static var storedFormat: Int { get }
  /// The stored bytes of `value`, in `storedFormat`.
  static func encodeStored(_ value: Self) throws -> Data
  /// The value from bytes written in `format` (this one or an earlier one).
  ///
  /// - Throws: `StoreError.unreadable` naming the area and format.
  static func decodeStored(_ data: Data, format: Int) throws -> Self
}

/// JSON of a record type: how the areas store their documents.
public enum StoredJSON {
  /// Sorted keys, so equal documents are equal bytes.
  public static func encode<Record: Encodable>(_ record: Record) throws -> Data {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    return try encoder.encode(record)
  }

  /// Decodes a record of `area`; a failure names the area and format, never the data.
  public static func decode<Record: Decodable>(_ type: Record.Type, _ data: Data, area: String, format: Int) throws
    -> Record
  {
    do {
      return try JSONDecoder().decode(type, from: data)
    } catch {
      throw StoreError.unreadable(area: area, format: format, reason: "\(error)")
    }
  }

  /// A raw value of an enumeration as stored, or a `StoreError.unreadable`.
  public static func value<Value: RawRepresentable>(
    _ type: Value.Type, _ raw: Value.RawValue, field: String, area: String, format: Int
  ) throws -> Value {
    guard let value = Value(rawValue: raw) else {
      throw StoreError.unreadable(area: area, format: format, reason: "\(field) holds an unknown value \(raw)")
    }
    return value
  }
}

/// A document encoded for storage ahead of its transaction, so that the encoding does
/// not hold up the database's single writer.
public struct StagedDocument<Document: SettingsDocument>: Sendable {
  /// The value.
  public let value: Document
  /// Its stored bytes, in `Document.storedFormat`.
  let body: Data

  /// Encodes `value`.
  public init(_ value: Document) throws {
    self.value = value
    self.body = try Document.encodeStored(value)
  }
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
