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
    if let bits = rsaBits(pem: pem), bits < minimumRSABits {
      return "is an RSA key of \(bits) bits; at least \(minimumRSABits) are required"
    }
    return "must be an RSA (\(minimumRSABits) bits or more) or EC (P-256, P-384, P-521) private key in PEM"
  }

  /// The size of an RSA private key in PEM that swift-crypto refuses as too small.
  private static func rsaBits(pem: String) -> Int? {
    guard let key = try? _RSA.Signing.PrivateKey(unsafePEMRepresentation: pem) else { return nil }
    return key.keySizeInBits
  }

  /// The key's public-key fingerprint, "SHA256:" and hex, or nil when `pem` is not
  /// an RSA (2048 bits or more) or EC (P-256, P-384, P-521) private key in PEM.
  static func fingerprint(pem: String) -> String? {
    guard let key = SigningKey(pem: pem) else { return nil }
    let digest = SHA256.hash(data: key.publicKeyDER)
    return "SHA256:" + digest.map { String(format: "%02x", $0) }.joined()
  }
}
