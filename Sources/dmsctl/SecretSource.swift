import ArgumentParser
import Foundation

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// Where `dmsctl` reads a secret from. Never the command line, where `ps` and the
/// shell's history see it, unless the operator spells out `--insecure-NAME VALUE`:
/// - `--NAME`: asked on the terminal, without echo;
/// - `--NAME-file PATH`: the file's content (one trailing newline dropped); `-` is stdin.
struct SecretSource {
  /// The option's name, such as `db-password`.
  let name: String
  /// What the prompt asks for.
  let label: String
  var prompt: Bool
  var file: String?
  var insecureValue: String?

  /// The secret, or nil when none of the three forms was given.
  func value(stdinTaken: inout Bool) throws -> String? {
    let given = [prompt, file != nil, insecureValue != nil].filter { $0 }.count
    guard given <= 1 else {
      throw ValidationError("--\(name), --\(name)-file and --insecure-\(name) are alternatives: give one")
    }
    if let insecureValue { return insecureValue }
    if let file {
      if file == "-" {
        guard !stdinTaken else { throw ValidationError("--\(name)-file -: stdin is already read for another secret") }
        stdinTaken = true
        return Self.fileText(FileHandle.standardInput.readDataToEndOfFile())
      }
      // Read as a stream: a pipe such as bash's <(pass show x) (/dev/fd/63) has no
      // size, which FileManager.contents(atPath:) gives up on.
      guard let handle = FileHandle(forReadingAtPath: file), let data = try? handle.readToEnd() ?? Data() else {
        throw ValidationError("--\(name)-file: cannot read \(file)")
      }
      try? handle.close()
      return Self.fileText(data)
    }
    if prompt { return try Self.ask("\(label): ", option: name) }
    return nil
  }

  /// A secret file's text: without a byte-order mark (which Windows' Notepad writes
  /// first, never part of a secret) and one trailing line end.
  static func fileText(_ data: Data) -> String {
    var text = String(decoding: data, as: UTF8.self)
    if text.unicodeScalars.first == "\u{FEFF}" { text.unicodeScalars.removeFirst() }
    return droppingNewline(text)
  }

  /// `text` without one trailing LF or CRLF (a file saved on Windows). By scalars: to a
  /// `String`, CR LF is one character, which `hasSuffix("\n")` does not match and
  /// `dropLast(2)` takes with the character before it.
  static func droppingNewline(_ text: String) -> String {
    var scalars = Substring(text).unicodeScalars
    guard scalars.last == "\n" else { return text }
    scalars.removeLast()
    if scalars.last == "\r" { scalars.removeLast() }
    return String(scalars)
  }

  /// Reads a line from the terminal with echo off.
  static func ask(_ prompt: String, option: String) throws -> String {
    let tty = open("/dev/tty", O_RDWR | O_NOCTTY)
    guard tty >= 0 else {
      throw ValidationError("--\(option) asks on a terminal and there is none: use --\(option)-file FILE (- for stdin)")
    }
    defer { close(tty) }
    _ = prompt.withCString { write(tty, $0, strlen($0)) }
    var saved = termios()
    let canHideEcho = tcgetattr(tty, &saved) == 0
    if canHideEcho {
      var silent = saved
      silent.c_lflag &= ~tcflag_t(ECHO)
      _ = tcsetattr(tty, TCSAFLUSH, &silent)
    }
    defer {
      if canHideEcho { _ = tcsetattr(tty, TCSAFLUSH, &saved) }
      _ = write(tty, "\n", 1)
    }
    var bytes: [UInt8] = []
    var byte: UInt8 = 0
    while read(tty, &byte, 1) == 1, byte != UInt8(ascii: "\n") { bytes.append(byte) }
    return droppingNewline(String(decoding: bytes, as: UTF8.self))
  }
}
