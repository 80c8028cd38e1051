import Crypto
import Foundation
import NIOSSL
import SwiftASN1
import X509

/// INT-4a: a KSeF certificate in PEM as the administrator saves it: one X.509
/// certificate, what it says of itself, and whether a private key is its own.
public struct KSeFCertificateFile: Sendable {
  /// The SHA-1 thumbprint of the DER, 40 hex digits in upper case: what Windows shows
  /// and the original's thumbprint field holds.
  public let thumbprint: String
  /// The subject and issuer, RFC 4514.
  public let subject: String
  public let issuer: String
  /// The validity.
  public let validFrom: Date
  public let validUntil: Date
  /// The certificate's own block, re-encoded (`PEMText`): what is stored and shown,
  /// without the text, attributes or line ends of the file it came from.
  public let pem: String
  /// Whether the text held a private key beside the certificate (a file from `openssl
  /// pkcs12 -nodes`): not part of `pem`.
  public let holdsPrivateKey: Bool
  private let publicKeyInfo: Data

  /// Why a PEM is not a usable certificate.
  public enum Refusal: Error, Sendable, Equatable, CustomStringConvertible {
    /// No CERTIFICATE block, or one that is not X.509.
    case notACertificate
    /// More than one certificate (a chain): the one to sign in with is ambiguous.
    case several(Int)
    /// An X.509 certificate whose key is of a kind or size not taken (RSA below 2048 bits).
    case unusableKey

    public var description: String {
      switch self {
      case .notACertificate: "must be one X.509 certificate in PEM (-----BEGIN CERTIFICATE-----)"
      case .several(let count):
        "holds \(count) certificates: give only the KSeF certificate itself, without its chain"
      case .unusableKey:
        "is a certificate whose key cannot be used: RSA of 2048 bits or more, or EC P-256, P-384 or P-521"
      }
    }
  }

  /// The certificate of `pem`.
  public init(pem: String) throws(Refusal) {
    let documents = PEMText.blocks(pem)
    holdsPrivateKey = documents.contains { PEMText.isPrivateKey($0.discriminator) }
    let certificates = documents.filter { $0.discriminator == "CERTIFICATE" }
    guard certificates.count <= 1 else { throw .several(certificates.count) }
    guard let document = certificates.first else { throw .notACertificate }
    guard let certificate = try? Certificate(derEncoded: document.derBytes) else {
      // BoringSSL reads any X.509; swift-certificates only the keys it can use.
      throw (try? NIOSSLCertificate(bytes: document.derBytes, format: .der)) == nil ? .notACertificate : .unusableKey
    }
    self.pem = document.pemString + "\n"
    thumbprint = Insecure.SHA1.hash(data: document.derBytes).map { String(format: "%02X", $0) }.joined()
    subject = certificate.subject.description
    issuer = certificate.issuer.description
    validFrom = certificate.notValidBefore
    validUntil = certificate.notValidAfter
    var serializer = DER.Serializer()
    guard (try? serializer.serialize(certificate.publicKey)) != nil else { throw .notACertificate }
    publicKeyInfo = Data(serializer.serializedBytes)  // the SubjectPublicKeyInfo, DER
  }

  /// Whether `key` is the private half of the certificate's key.
  public func isOwn(_ key: SigningKey) -> Bool {
    key.publicKeyDER == publicKeyInfo
  }
}
