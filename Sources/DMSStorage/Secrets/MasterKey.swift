import Crypto
import Foundation

/// The master key that encrypts secrets at rest; it is kept outside the database.
public enum MasterKey {
  /// Where the key came from, for the start-up log (never the key itself).
  public enum Source: Sendable, Equatable {
    case environment
    case existingFile(String)
    case createdFile(String)
  }

  /// The key from `base64` (an environment variable) when given, else from the file
  /// at `path`, created with 32 random bytes and mode 0600 on first start.
  ///
  /// - Throws: a message naming the problem (never the key's bytes).
  public static func load(base64: String?, path: String) throws -> (SymmetricKey, Source) {
    if let base64, !base64.isEmpty {
      guard let data = Data(base64Encoded: base64), data.count == 32 else {
        throw MasterKeyError("the master key from the environment must be 32 bytes in base64")
      }
      return (SymmetricKey(data: data), .environment)
    }
    let fileManager = FileManager.default
    if fileManager.fileExists(atPath: path) {
      let attributes = try fileManager.attributesOfItem(atPath: path)
      if let permissions = attributes[.posixPermissions] as? NSNumber, permissions.intValue & 0o077 != 0 {
        throw MasterKeyError(
          "the master key file \(path) is readable by others (mode \(String(permissions.intValue, radix: 8))); chmod 600 it"
        )
      }
      let text = try String(contentsOfFile: path, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
      guard let data = Data(base64Encoded: text), data.count == 32 else {
        throw MasterKeyError("the master key file \(path) does not hold 32 bytes in base64")
      }
      return (SymmetricKey(data: data), .existingFile(path))
    }
    let key = SymmetricKey(size: .bits256)
    let text = key.withUnsafeBytes { Data($0).base64EncodedString() } + "\n"
    let directory = (path as NSString).deletingLastPathComponent
    if !directory.isEmpty {
      try fileManager.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }
    guard fileManager.createFile(atPath: path, contents: Data(text.utf8), attributes: [.posixPermissions: 0o600]) else {
      throw MasterKeyError("cannot create the master key file \(path)")
    }
    return (key, .createdFile(path))
  }
}

/// The master key cannot be loaded.
public struct MasterKeyError: Error, CustomStringConvertible {
  public let description: String
  init(_ description: String) { self.description = description }
}
