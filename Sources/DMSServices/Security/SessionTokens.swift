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
    let token = Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-")
      .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    return (token, hash(bytes))
  }

  /// The hash of a token's 32 bytes.
  static func hash(_ bytes: some DataProtocol) -> SessionTokenHash {
    SessionTokenHash(bytes: Data(SHA256.hash(data: bytes)))
  }

  /// The 32 bytes of a token in base64url without padding; nil when `text` is not one.
  static func decode(_ text: Substring) -> [UInt8]? {
    guard text.utf8.count == 43 else { return nil }
    var bytes: [UInt8] = []
    bytes.reserveCapacity(32)
    var accumulator: UInt32 = 0
    var bits = 0
    for character in text.utf8 {
      let value: UInt8
      switch character {
      case UInt8(ascii: "A")...UInt8(ascii: "Z"): value = character - UInt8(ascii: "A")
      case UInt8(ascii: "a")...UInt8(ascii: "z"): value = character - UInt8(ascii: "a") + 26
      case UInt8(ascii: "0")...UInt8(ascii: "9"): value = character - UInt8(ascii: "0") + 52
      case UInt8(ascii: "-"): value = 62
      case UInt8(ascii: "_"): value = 63
      default: return nil
      }
      accumulator = (accumulator << 6) | UInt32(value)
      bits += 6
      if bits >= 8 {
        bits -= 8
        bytes.append(UInt8(truncatingIfNeeded: accumulator >> UInt32(bits)))
      }
    }
    // 43 characters carry 258 bits: the last 2 must be zero (the canonical form).
    guard bytes.count == 32, accumulator & ((1 << UInt32(bits)) - 1) == 0 else { return nil }
    return bytes
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
