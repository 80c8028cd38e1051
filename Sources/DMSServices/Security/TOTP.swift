import Crypto
import Foundation

/// Time-based one-time passwords (RFC 6238 over RFC 4226's HOTP) as authenticator
/// apps use them: HMAC-SHA-1, 30-second steps, 6 digits (TOOLS-4). Written here: the
/// algorithm is a few lines over swift-crypto's HMAC, and no Swift TOTP package is in
/// the mirror.
enum TOTP {
  /// Seconds per step.
  static let period: Int64 = 30
  /// Digits of a code.
  static let digits = 6
  /// Steps of clock skew accepted either side of now.
  static let skew: Int64 = 1
  /// Bytes of a new secret: 160 bits, RFC 4226's recommendation.
  static let secretBytes = 20

  /// The step of `date`.
  static func step(at date: Date) -> Int64 { Int64((date.timeIntervalSince1970).rounded(.down)) / period }

  /// HOTP (RFC 4226 §5.3) of `counter`, `digits` long, with leading zeros.
  static func code(secret: [UInt8], counter: Int64, digits: Int = digits) -> String {
    var big = UInt64(bitPattern: counter).bigEndian
    let message = withUnsafeBytes(of: &big) { Data($0) }
    let mac = Array(HMAC<Insecure.SHA1>.authenticationCode(for: message, using: SymmetricKey(data: secret)))
    let offset = Int(mac[mac.count - 1] & 0x0f)
    let binary =
      (UInt32(mac[offset] & 0x7f) << 24) | (UInt32(mac[offset + 1]) << 16) | (UInt32(mac[offset + 2]) << 8)
      | UInt32(mac[offset + 3])
    var modulus: UInt32 = 1
    for _ in 0..<digits { modulus *= 10 }
    let value = String(binary % modulus)
    return String(repeating: "0", count: digits - value.count) + value
  }

  /// The step, within `skew` of `date`'s and later than `after`, whose code is `code`;
  /// nil when none is (a wrong code, or one already used: no code is accepted twice).
  static func matchingStep(_ code: String, secret: [UInt8], at date: Date, after lastStep: Int64) -> Int64? {
    guard let code = wellFormed(code) else { return nil }
    let now = step(at: date)
    var found: Int64?
    // Every candidate is computed and compared, so the time does not tell which matched.
    for candidate in (now - skew)...(now + skew) where candidate > lastStep {
      if PasswordHasher.constantTimeEqual(self.code(secret: secret, counter: candidate).utf8, code.utf8),
        found == nil
      {
        found = candidate
      }
    }
    return found
  }

  /// `code` without spaces when it is `digits` ASCII digits (as apps show it,
  /// "123 456"); nil otherwise.
  static func wellFormed(_ code: String) -> String? {
    let code = code.filter { $0 != " " }
    return code.count == digits && code.allSatisfy({ $0.isASCII && $0.isNumber }) ? code : nil
  }

  /// A new random secret.
  static func newSecret() -> [UInt8] {
    var generator = SystemRandomNumberGenerator()
    return (0..<secretBytes).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
  }

  /// The otpauth:// URI authenticator apps read (Google Authenticator's key URI format).
  static func uri(secret: [UInt8], issuer: String, account: String) -> String {
    let allowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-._~"))
    func escape(_ text: String) -> String { text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text }
    return "otpauth://totp/\(escape(issuer)):\(escape(account))?secret=\(Base32.encode(secret))"
      + "&issuer=\(escape(issuer))&algorithm=SHA1&digits=\(digits)&period=\(period)"
  }
}

/// RFC 4648 base32 (upper case, no padding): how TOTP secrets are written.
enum Base32 {
  private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567".utf8)

  static func encode(_ bytes: [UInt8]) -> String {
    var output: [UInt8] = []
    var buffer: UInt32 = 0
    var bits = 0
    for byte in bytes {
      buffer = (buffer << 8) | UInt32(byte)
      bits += 8
      while bits >= 5 {
        output.append(alphabet[Int((buffer >> UInt32(bits - 5)) & 31)])
        bits -= 5
      }
    }
    if bits > 0 { output.append(alphabet[Int((buffer << UInt32(5 - bits)) & 31)]) }
    return String(decoding: output, as: UTF8.self)
  }

  /// The bytes of `text` (case and padding ignored); nil when it is not base32.
  static func decode(_ text: String) -> [UInt8]? {
    var output: [UInt8] = []
    var buffer: UInt32 = 0
    var bits = 0
    for character in text.uppercased().utf8 where character != UInt8(ascii: "=") {
      guard let value = alphabet.firstIndex(of: character) else { return nil }
      buffer = (buffer << 5) | UInt32(value)
      bits += 5
      if bits >= 8 {
        output.append(UInt8((buffer >> UInt32(bits - 8)) & 0xff))
        bits -= 8
      }
    }
    return output
  }
}
