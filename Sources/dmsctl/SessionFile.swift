import ArgumentParser
import Foundation

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// Where `dmsctl login` keeps the session token of each server: one file per
/// host:port in `$XDG_CONFIG_HOME/dmsctl/` (default `~/.config/dmsctl/`), mode 0600 in
/// a folder of mode 0700. `DMS_TOKEN` in the environment goes before the file.
struct SessionFile {
  let path: String

  /// The file of the server at `host`:`port`.
  init(host: String, port: Int) {
    let environment = ProcessInfo.processInfo.environment
    let base =
      environment["XDG_CONFIG_HOME"].flatMap { $0.isEmpty ? nil : $0 }
      ?? ((environment["HOME"] ?? NSHomeDirectory()) as NSString).appendingPathComponent(".config")
    let safeHost = String(host.map { $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" ? $0 : "_" })
    path = ((base as NSString).appendingPathComponent("dmsctl") as NSString).appendingPathComponent(
      "session-\(safeHost)-\(port)")
  }

  /// The token calls carry: `DMS_TOKEN`, else the saved one, else nil. A saved file that
  /// others may read is refused, as ssh refuses such a key: the token in it may have been
  /// copied (`allowingOthers`: `dmsctl logout`, which ends it).
  func token(allowingOthers: Bool = false) throws -> String? {
    if let token = ProcessInfo.processInfo.environment["DMS_TOKEN"], !token.isEmpty { return token }
    var info = stat()
    guard stat(path, &info) == 0 else { return nil }
    let mode = info.st_mode & 0o777
    if !allowingOthers, mode & 0o077 != 0 {
      var stderr = StandardError()
      print(
        "dmsctl: the session file \(path) may be read by others (mode \(String(mode, radix: 8))): anyone on this "
          + "machine could use the session in it. End it with dmsctl logout, then sign in again.", to: &stderr)
      throw Output.Exit.usage
    }
    guard let data = FileManager.default.contents(atPath: path) else { return nil }
    let token = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    return token.isEmpty ? nil : token
  }

  /// Saves `token`, readable by the user alone from the moment it exists.
  func save(_ token: String) throws {
    let folder = (path as NSString).deletingLastPathComponent
    do {
      try FileManager.default.createDirectory(
        atPath: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
    } catch {
      throw ValidationError("cannot create \(folder) for the session: \(error.localizedDescription)")
    }
    let temporary = path + ".tmp"
    unlink(temporary)
    let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL, 0o600)
    guard descriptor >= 0 else { throw ValidationError("cannot write the session to \(temporary)") }
    let bytes = Array((token + "\n").utf8)
    let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
    close(descriptor)
    guard written == bytes.count, rename(temporary, path) == 0 else {
      unlink(temporary)
      throw ValidationError("cannot write the session to \(path)")
    }
  }

  /// Forgets the saved token; whether there was one.
  @discardableResult
  func remove() -> Bool {
    unlink(path) == 0
  }
}
