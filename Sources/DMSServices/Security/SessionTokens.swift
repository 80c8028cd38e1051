import Crypto
import DMSRPC
import DMSStorage
import Foundation

/// Session tokens: 256 random bits, given to the caller once as base64url without
/// padding (43 characters) and kept by the server only as their SHA-256.
enum SessionTokens {
  /// A new token and its hash.
  static func make() -> (token: String, hash: SessionTokenHash) {
    var generator = SystemRandomNumberGenerator()
    let bytes = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
    return (encode(bytes), hash(bytes))
  }

  /// The hash of a token's 32 bytes.
  static func hash(_ bytes: some DataProtocol) -> SessionTokenHash {
    SessionTokenHash(bytes: Data(SHA256.hash(data: bytes)))
  }

  /// base64url without padding.
  static func encode(_ bytes: [UInt8]) -> String {
    Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-")
      .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
  }

  /// The 32 bytes of a token in base64url without padding; nil when `text` is not one
  /// in its canonical form (what `encode` makes). Run once per distinct call meta of a
  /// connection, not per call.
  static func decode(_ text: Substring) -> [UInt8]? {
    guard text.utf8.count == 43, !text.contains("+"), !text.contains("/") else { return nil }
    let standard = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/") + "="
    guard let data = Data(base64Encoded: standard), data.count == 32 else { return nil }
    let bytes = [UInt8](data)
    return encode(bytes) == text ? bytes : nil
  }

  /// The credential of `authorization: Bearer <token>` metadata: none when absent,
  /// malformed with the reason, or the token's hash.
  static func credential(authorization: String?) -> CallCredential {
    guard let authorization else { return .none }
    let parts = authorization.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
    guard parts.count == 2, parts[0].lowercased() == "bearer" else {
      return .malformed("the authorization metadata must be \"Bearer <token>\"")
    }
    guard let bytes = decode(parts[1]) else {
      return .malformed("the session token is malformed: sign in again (Auth/Login)")
    }
    return .session(hash(bytes).bytes)
  }
}
