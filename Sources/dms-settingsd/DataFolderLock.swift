import Foundation

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// One process at a time on a SQLite data folder. A second server there would serve what
/// its own caches hold while the first one writes (nothing tells one SQLite instance of
/// another's commits: several instances need PostgreSQL), and `bootstrap-admin` beside a
/// running server changes operators the server does not see. The lock is the kernel's
/// (`flock` on `dms-settingsd.lock` in the folder): it ends with the process, however it
/// ends, so a crash leaves nothing to clean up.
enum DataFolderLock {
  /// The folder is in use: by the process `pid` (when the lock file says).
  struct InUse: Error, CustomStringConvertible {
    let folder: String
    let pid: String?

    var description: String {
      "the data folder \(folder) is in use by another dms-settingsd\(pid.map { " (pid \($0))" } ?? ""): "
        + "one server per SQLite data folder (several instances share PostgreSQL: storage.postgres.url); "
        + "bootstrap-admin runs while the server is stopped"
    }
  }

  /// The folder cannot be used: not a folder, or not made or written in.
  struct Unusable: Error, CustomStringConvertible {
    let description: String
  }

  /// Takes the lock on `folder` (made when missing) for the rest of the process's life.
  static func take(_ folder: String) throws {
    var isFolder: ObjCBool = false
    if FileManager.default.fileExists(atPath: folder, isDirectory: &isFolder) {
      guard isFolder.boolValue else {
        throw Unusable(description: "storage.data-directory \(folder) is a file, not a folder")
      }
    } else {
      do {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
      } catch {
        // Tried again for the reason in the system's words (Foundation wraps it).
        if mkdir(folder, 0o700) != 0 {
          throw Unusable(description: "cannot make the data folder \(folder): \(String(cString: strerror(errno)))")
        }
      }
    }
    let path = (folder as NSString).appendingPathComponent("dms-settingsd.lock")
    let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
    guard fd >= 0 else {
      throw Unusable(description: "cannot write in the data folder \(folder): \(String(cString: strerror(errno)))")
    }
    guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
      var bytes = [UInt8](repeating: 0, count: 32)
      let count = read(fd, &bytes, bytes.count)
      close(fd)
      let pid = String(decoding: bytes.prefix(max(0, count)), as: UTF8.self).trimmingCharacters(
        in: .whitespacesAndNewlines)
      throw InUse(folder: folder, pid: pid.isEmpty ? nil : pid)
    }
    // Who holds it, for the next one's message. The descriptor stays open: closing it
    // would release the lock.
    let pid = Array("\(getpid())\n".utf8)
    _ = ftruncate(fd, 0)
    _ = pwrite(fd, pid, pid.count, 0)
  }
}
