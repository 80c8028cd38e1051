import Crypto
import CryptoExtras
import Foundation

/// INT-7a: the JWT a system signs with its private key (INT-7) to sign in to e-Delivery
/// (RFC 7523 client assertion): header `{"alg", "typ": "JWT"}`, claims `iss` = `sub` =
/// `<address>.SYSTEM.<system name>`, `aud` (the realm), `jti` (a UUID), `iat`, `nbf`,
/// `exp` (a few minutes on).
public struct EDeliveryClientAssertion: Sendable, Hashable {
  /// The compact JWS.
  public var token: String
  /// RS256 (RSA), ES256, ES384 or ES512 (EC P-256, P-384, P-521).
  public var algorithm: String
  /// `iss` and `sub`.
  public var clientID: String
  public var audience: String
  public var id: String
  public var issuedAt: Date
  public var expiresAt: Date

  /// `<address>.SYSTEM.<system name>` (INT-5, INT-6).
  public static func clientID(address: String, systemName: String) -> String {
    "\(address).SYSTEM.\(systemName)"
  }

  /// Signs the assertion for `address` and `systemName` with `privateKeyPEM`, valid from
  /// `now` for `lifetime` seconds. Nil when the PEM is not an RSA or EC private key.
  public static func make(
    address: String, systemName: String, audience: String, privateKeyPEM: String, now: Date = Date(),
    lifetime: TimeInterval = 300, id: UUID = UUID()
  ) throws(UnusableKey) -> EDeliveryClientAssertion {
    guard let key = SigningKey(pem: privateKeyPEM) else { throw UnusableKey() }
    let seconds = Int64(now.timeIntervalSince1970)
    let client = clientID(address: address, systemName: systemName)
    let header: [String: Any] = ["alg": key.algorithm, "typ": "JWT"]
    let claims: [String: Any] = [
      "iss": client, "sub": client, "aud": audience, "jti": id.uuidString.lowercased(), "iat": seconds,
      "nbf": seconds, "exp": seconds + Int64(lifetime),
    ]
    let signingInput = base64URL(json(header)) + "." + base64URL(json(claims))
    guard let signature = try? key.sign(Data(signingInput.utf8)) else { throw UnusableKey() }
    return EDeliveryClientAssertion(
      token: signingInput + "." + base64URL(signature), algorithm: key.algorithm, clientID: client,
      audience: audience, id: id.uuidString.lowercased(), issuedAt: Date(timeIntervalSince1970: Double(seconds)),
      expiresAt: Date(timeIntervalSince1970: Double(seconds + Int64(lifetime))))
  }

  /// Whether the assertion's signature verifies with the public key of
  /// `privateKeyPEM`, its header names the key's algorithm, and its claims are its own
  /// (the self-test before anything is sent).
  public func verifies(privateKeyPEM: String) -> Bool {
    let parts = token.split(separator: ".", omittingEmptySubsequences: false)
    guard parts.count == 3, let key = SigningKey(pem: privateKeyPEM),
      let headerData = Self.unbase64URL(parts[0]), let claimsData = Self.unbase64URL(parts[1]),
      let signature = Self.unbase64URL(parts[2]),
      let header = (try? JSONSerialization.jsonObject(with: headerData)) as? [String: Any],
      let claims = (try? JSONSerialization.jsonObject(with: claimsData)) as? [String: Any]
    else { return false }
    return header["alg"] as? String == key.algorithm && claims["iss"] as? String == clientID
      && claims["sub"] as? String == clientID && claims["aud"] as? String == audience
      && key.verify(signature, for: Data("\(parts[0]).\(parts[1])".utf8))
  }

  /// The private key is not an RSA or EC one in PEM.
  public struct UnusableKey: Error, Sendable {}

  static func json(_ object: [String: Any]) -> Data {
    (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
  }

  static func base64URL(_ data: Data) -> String {
    data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
      .replacingOccurrences(of: "=", with: "")
  }

  static func unbase64URL(_ text: Substring) -> Data? {
    var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
    while base64.count % 4 != 0 { base64 += "=" }
    return Data(base64Encoded: base64)
  }
}

/// An RSA (2048 bits or more) or EC (P-256, P-384, P-521) private key from PEM, with its
/// JOSE algorithm: e-Delivery's key (ERP-17, INT-7).
public enum SigningKey: Sendable {
  case rsa(_RSA.Signing.PrivateKey)
  case p256(P256.Signing.PrivateKey)
  case p384(P384.Signing.PrivateKey)
  case p521(P521.Signing.PrivateKey)

  /// The key of `pem`'s one private key block (`PEMText.privateKey`: text and other
  /// blocks around it left out).
  public init?(pem: String) {
    guard case .one(let pem) = PEMText.privateKey(in: pem) else { return nil }
    if let key = try? _RSA.Signing.PrivateKey(pemRepresentation: pem) {
      self = .rsa(key)
    } else if let key = try? P256.Signing.PrivateKey(pemRepresentation: pem) {
      self = .p256(key)
    } else if let key = try? P384.Signing.PrivateKey(pemRepresentation: pem) {
      self = .p384(key)
    } else if let key = try? P521.Signing.PrivateKey(pemRepresentation: pem) {
      self = .p521(key)
    } else {
      return nil
    }
  }

  /// The public half, DER (SubjectPublicKeyInfo): what its fingerprint is taken of.
  public var publicKeyDER: Data {
    switch self {
    case .rsa(let key): key.publicKey.derRepresentation
    case .p256(let key): key.publicKey.derRepresentation
    case .p384(let key): key.publicKey.derRepresentation
    case .p521(let key): key.publicKey.derRepresentation
    }
  }

  public var algorithm: String {
    switch self {
    case .rsa: "RS256"
    case .p256: "ES256"
    case .p384: "ES384"
    case .p521: "ES512"
    }
  }

  /// RS256: RSASSA-PKCS1-v1_5 with SHA-256 (RFC 7518 §3.3); ESnnn: ECDSA, r ‖ s.
  func sign(_ data: Data) throws -> Data {
    switch self {
    case .rsa(let key): try key.signature(for: data, padding: .insecurePKCS1v1_5).rawRepresentation
    case .p256(let key): try key.signature(for: data).rawRepresentation
    case .p384(let key): try key.signature(for: data).rawRepresentation
    case .p521(let key): try key.signature(for: data).rawRepresentation
    }
  }

  func verify(_ signature: Data, for data: Data) -> Bool {
    switch self {
    case .rsa(let key):
      key.publicKey.isValidSignature(
        _RSA.Signing.RSASignature(rawRepresentation: signature), for: data, padding: .insecurePKCS1v1_5)
    case .p256(let key):
      (try? P256.Signing.ECDSASignature(rawRepresentation: signature)).map {
        key.publicKey.isValidSignature($0, for: data)
      } ?? false
    case .p384(let key):
      (try? P384.Signing.ECDSASignature(rawRepresentation: signature)).map {
        key.publicKey.isValidSignature($0, for: data)
      } ?? false
    case .p521(let key):
      (try? P521.Signing.ECDSASignature(rawRepresentation: signature)).map {
        key.publicKey.isValidSignature($0, for: data)
      } ?? false
    }
  }
}
