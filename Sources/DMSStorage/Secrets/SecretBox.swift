import Crypto
import Foundation

/// Encrypts secret fields with AES-GCM under the master key.
///
/// The associated data binds each ciphertext to its company, area and field: a
/// ciphertext copied to another company or field does not decrypt.
public struct SecretBox: Sendable {
  private let key: SymmetricKey

  /// A box using `key` (256 bits).
  public init(key: SymmetricKey) {
    self.key = key
  }

  /// The associated data of one secret field.
  static func binding(companyID: Int64, area: String, field: String) -> Data {
    Data("dms-settings/v1 company=\(companyID) area=\(area) field=\(field)".utf8)
  }

  /// Seals `plaintext`: nonce, ciphertext and tag together.
  public func seal(_ plaintext: String, companyID: Int64, area: String, field: String) throws -> Data {
    let box = try AES.GCM.seal(
      Data(plaintext.utf8), using: key, authenticating: Self.binding(companyID: companyID, area: area, field: field))
    guard let combined = box.combined else { throw StoreError(.unavailable, "cannot encode a sealed secret") }
    return combined
  }

  /// Opens a sealed secret of this company, area and field.
  ///
  /// - Throws: `StoreError.secretUnreadable` when the key or the binding differ.
  public func open(_ sealed: Data, companyID: Int64, area: String, field: String) throws -> String {
    do {
      let box = try AES.GCM.SealedBox(combined: sealed)
      let plaintext = try AES.GCM.open(
        box, using: key, authenticating: Self.binding(companyID: companyID, area: area, field: field))
      return String(decoding: plaintext, as: UTF8.self)
    } catch {
      throw StoreError(
        .secretUnreadable,
        "secret \(area)/\(field) does not decrypt: wrong master key, or the value was copied from elsewhere")
    }
  }
}
