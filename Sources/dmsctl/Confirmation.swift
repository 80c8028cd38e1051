import ArgumentParser
import Foundation

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// A yes/no question on the terminal before something that cannot be undone.
enum Confirmation {
  /// Asks `question` on /dev/tty; anything but "y"/"yes" stops with a usage error.
  /// Without a terminal (a script), stops with `refusal`, which names the flag to give.
  static func ask(_ question: String, refusal: String) throws {
    guard isatty(STDIN_FILENO) == 1 else { throw ValidationError(refusal) }
    let tty = open("/dev/tty", O_RDWR | O_NOCTTY)
    guard tty >= 0 else { throw ValidationError(refusal) }
    defer { close(tty) }
    let prompt = "\(question) [y/N] "
    _ = prompt.withCString { write(tty, $0, strlen($0)) }
    var bytes: [UInt8] = []
    var byte: UInt8 = 0
    while read(tty, &byte, 1) == 1, byte != UInt8(ascii: "\n") { bytes.append(byte) }
    let answer = String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespaces).lowercased()
    guard answer == "y" || answer == "yes" else { throw ValidationError("not confirmed; nothing was deleted") }
  }
}
