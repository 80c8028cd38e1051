import Crypto
import CryptoExtras
import Foundation

/// Checks ERP-17's private key: an RSA or EC private key in PEM.
enum PrivateKeyInspector {
  /// The key's public-key fingerprint, "SHA256:" and hex, or nil when `pem` is not
  /// an RSA (2048 bits or more) or EC (P-256, P-384, P-521) private key in PEM.
  static func fingerprint(pem: String) -> String? {
    let publicKeyDER: Data
    if let key = try? _RSA.Signing.PrivateKey(pemRepresentation: pem) {
      publicKeyDER = key.publicKey.derRepresentation
    } else if let key = try? P256.Signing.PrivateKey(pemRepresentation: pem) {
      publicKeyDER = key.publicKey.derRepresentation
    } else if let key = try? P384.Signing.PrivateKey(pemRepresentation: pem) {
      publicKeyDER = key.publicKey.derRepresentation
    } else if let key = try? P521.Signing.PrivateKey(pemRepresentation: pem) {
      publicKeyDER = key.publicKey.derRepresentation
    } else {
      return nil
    }
    let digest = SHA256.hash(data: publicKeyDER)
    return "SHA256:" + digest.map { String(format: "%02x", $0) }.joined()
  }
}
