import ArgumentParser
import Foundation
import NIOSSL

/// Certificate and key files as administrators have them, read for a request: the
/// server checks what they hold and keeps only the blocks themselves.
enum PEMFile {
  /// The text of `path` (a pipe such as bash's `<(…)` too). A certificate saved as DER
  /// (Windows' "DER encoded binary X.509 (.CER)") is sent as PEM when `derCertificate`;
  /// other binary files (a .pfx) are refused here, saying how to convert them. `option`:
  /// the flag, for the message.
  static func text(_ path: String, option: String, derCertificate: Bool = false) throws -> String {
    // Read as a stream: FileManager.contents(atPath:) gives up on a pipe, which has no size.
    guard let handle = FileHandle(forReadingAtPath: path), let data = try? handle.readToEnd() ?? Data() else {
      throw ValidationError("\(option): cannot read \(path)")
    }
    try? handle.close()
    if let text = String(validating: data, as: UTF8.self), !text.contains("\0") { return text }
    if derCertificate, (try? NIOSSLCertificate(bytes: Array(data), format: .der)) != nil {
      return pem(der: Array(data), discriminator: "CERTIFICATE")
    }
    throw ValidationError(
      "\(option): \(path) is not PEM text. From a .pfx or .p12: openssl pkcs12 -in FILE -nodes -out FILE.pem; "
        + "from DER: openssl x509 (or pkey) -inform DER -in FILE -out FILE.pem")
  }

  /// A certificate file's certificate blocks, and the private key that came with them in
  /// the file, if any (`openssl pkcs12 -nodes` writes both): the key is a secret and is
  /// sent as one, never with the certificate, which every administrator sees.
  static func certificate(_ path: String, option: String) throws -> (certificate: String, key: String?) {
    let text = try text(path, option: option, derCertificate: true)
    var certificates: [Substring] = []
    var keys: [Substring] = []
    var block: [Substring]?
    for line in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline) {
      let trimmed = line.trimmingCharacters(in: .whitespaces)
      if trimmed.hasPrefix("-----BEGIN ") { block = [] }
      block?.append(line)
      guard trimmed.hasPrefix("-----END "), let lines = block else { continue }
      let joined = lines.joined(separator: "\n") + "\n"
      if trimmed.hasSuffix("PRIVATE KEY-----") {
        keys.append(Substring(joined))
      } else if trimmed == "-----END CERTIFICATE-----" {
        certificates.append(Substring(joined))
      }
      block = nil
    }
    guard !certificates.isEmpty else {
      guard keys.isEmpty else {
        throw ValidationError("\(option): \(path) holds a private key and no certificate: is it the key file?")
      }
      // No block found: sent as it is, for the server to say what is wrong with it.
      return (text, nil)
    }
    return (certificates.joined(), keys.isEmpty ? nil : keys.joined())
  }

  /// DER as a PEM block.
  static func pem(der: [UInt8], discriminator: String) -> String {
    let base64 = Data(der).base64EncodedString(options: [.lineLength64Characters, .endLineWithLineFeed])
    return "-----BEGIN \(discriminator)-----\n\(base64)\n-----END \(discriminator)-----\n"
  }
}
