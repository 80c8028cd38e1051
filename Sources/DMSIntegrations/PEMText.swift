import Foundation
import SwiftASN1

/// PEM as administrators bring it: from Windows with CRLF line ends and a byte-order
/// mark; from `openssl pkcs12 -nodes` with "Bag Attributes" before each block and the
/// certificate and its key in one file; from `openssl x509 -text` with the dump before
/// the block; from `openssl ecparam -genkey` with the curve's parameters before the key.
/// What is kept is the block itself, re-encoded (`PEMDocument.pemString`, and a newline
/// as a file ends): nothing around it is stored or shown.
public enum PEMText {
  /// The well-formed blocks of `text`, in order (none when one of them is malformed: a
  /// traditional encrypted key's `Proc-Type` header, for one).
  public static func blocks(_ text: String) -> [PEMDocument] {
    var text = text
    if text.hasPrefix("\u{FEFF}") { text.removeFirst() }
    if text.utf8.contains(UInt8(ascii: "\r")) {
      text = text.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\r", with: "\n")
    }
    return (try? PEMDocument.parseMultiple(pemString: text)) ?? []
  }

  /// Whether a block of this kind is a private key ("PRIVATE KEY", "RSA PRIVATE KEY",
  /// "EC PRIVATE KEY", "ENCRYPTED PRIVATE KEY").
  public static func isPrivateKey(_ discriminator: String) -> Bool {
    discriminator.hasSuffix("PRIVATE KEY")
  }

  /// What a text offered as a private key holds.
  public enum PrivateKey: Sendable, Equatable {
    /// One private key block, re-encoded, with a final newline (as in a PEM file).
    case one(String)
    /// No private key block.
    case none
    /// More than one: which is meant is ambiguous.
    case several(Int)
    /// A key under a passphrase, which the server could not use unattended.
    case encrypted
  }

  /// The one private key block of `text` (other blocks, a certificate or EC parameters,
  /// and text around them are left out).
  public static func privateKey(in text: String) -> PrivateKey {
    let keys = blocks(text).filter { isPrivateKey($0.discriminator) }
    if keys.contains(where: { $0.discriminator == "ENCRYPTED PRIVATE KEY" })
      || (keys.isEmpty && text.contains("Proc-Type: 4,ENCRYPTED"))
    {
      return .encrypted
    }
    switch keys.count {
    case 0: return .none
    case 1: return .one(keys[0].pemString + "\n")
    default: return .several(keys.count)
    }
  }
}
