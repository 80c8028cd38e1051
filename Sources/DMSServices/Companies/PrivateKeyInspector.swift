import Crypto
import CryptoExtras
import DMSIntegrations
import Foundation

/// Checks ERP-17's private key: an RSA or EC private key in PEM.
enum PrivateKeyInspector {
  /// The smallest RSA key accepted (ERP-17).
  static let minimumRSABits = 2048

  /// Why `pem` is refused, for ERP-17's message: an RSA key's size and the minimum
  /// ("an RSA key of 1024 bits; at least 2048 are required"), or the accepted kinds.
  static func refusal(pem: String) -> String {
    let kinds = "an RSA (\(minimumRSABits) bits or more) or EC (P-256, P-384, P-521) private key in PEM"
    switch PEMText.privateKey(in: pem) {
    case .encrypted:
      return "is encrypted: save it without its passphrase (openssl pkey -in KEY.pem -out PLAIN.pem), as \(kinds)"
    case .several(let count): return "holds \(count) private keys: give only the one, \(kinds)"
    case .none: return "must be \(kinds)"
    case .one(let block):
      if let key = try? _RSA.Signing.PrivateKey(unsafePEMRepresentation: block), key.keySizeInBits < minimumRSABits {
        return "is an RSA key of \(key.keySizeInBits) bits; at least \(minimumRSABits) are required"
      }
      return "must be \(kinds)"
    }
  }

  /// A private key as saved: the key, its one private key block as stored (without what
  /// surrounded it in the file: a certificate, EC parameters, openssl's "Bag
  /// Attributes"), and its public key's fingerprint.
  struct Inspected {
    let key: SigningKey
    let stored: String

    /// "SHA256:" and hex, of the public key (DER).
    var fingerprint: String {
      "SHA256:" + SHA256.hash(data: key.publicKeyDER).map { String(format: "%02x", $0) }.joined()
    }
  }

  /// The key of `pem`, or nil when it is not one RSA (2048 bits or more) or EC (P-256,
  /// P-384, P-521) private key in PEM (`refusal` says why).
  static func inspect(pem: String) -> Inspected? {
    guard case .one(let block) = PEMText.privateKey(in: pem), let key = SigningKey(pem: block) else { return nil }
    return Inspected(key: key, stored: block)
  }
}
