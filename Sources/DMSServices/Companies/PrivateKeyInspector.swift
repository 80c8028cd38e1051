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

  /// The key as stored: its one private key block, without what surrounded it in the
  /// file (a certificate, EC parameters, openssl's "Bag Attributes"); nil when there is
  /// not exactly one (whether it is a key taken is `fingerprint`'s and `SigningKey`'s).
  static func stored(pem: String) -> String? {
    guard case .one(let block) = PEMText.privateKey(in: pem) else { return nil }
    return block
  }

  /// The key's public-key fingerprint, "SHA256:" and hex, or nil when `pem` is not
  /// an RSA (2048 bits or more) or EC (P-256, P-384, P-521) private key in PEM.
  static func fingerprint(pem: String) -> String? {
    guard let key = SigningKey(pem: pem) else { return nil }
    let digest = SHA256.hash(data: key.publicKeyDER)
    return "SHA256:" + digest.map { String(format: "%02x", $0) }.joined()
  }
}
