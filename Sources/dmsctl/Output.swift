import ArgumentParser
import DMSRPC
import Foundation
import SwiftProtobuf

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// Printing for people (tables) and for scripts (JSON, docs/CLI.md).
///
/// Every line is written to standard output when printed (`line`), not buffered by
/// stdio: a stream's events reach a pipe or a file as they arrive, and nothing printed
/// is lost to a Ctrl-C.
enum Output {
  /// The exit codes of docs/CLI.md.
  enum Exit {
    static let rpcError = ExitCode(1)
    static let usage = ExitCode(2)
    static let cannotConnect = ExitCode(3)
  }

  /// Writes `text` and a newline to standard output, at once (write(2), no buffer).
  /// When the reader has gone (`dmsctl methods | head -3`), dmsctl stops quietly with
  /// exit code 0: the rest of the output is not wanted. (NIO ignores SIGPIPE, so the
  /// write fails with EPIPE instead of killing the process, and Foundation's
  /// `FileHandle.write` would crash on that.)
  static func line(_ text: String = "") {
    if !write(text + "\n", to: STDOUT_FILENO) { exit(0) }
  }

  /// Writes all of `text` to `descriptor`; false when the other end is closed.
  @discardableResult
  static func write(_ text: String, to descriptor: Int32) -> Bool {
    var bytes = Array(text.utf8)[...]
    while !bytes.isEmpty {
      let written = bytes.withUnsafeBytes { systemWrite(descriptor, $0.baseAddress, $0.count) }
      if written < 0 {
        if errno == EINTR { continue }
        return false
      }
      bytes = bytes.dropFirst(written)
    }
    return true
  }

  /// Prints rows as an aligned table under `header`.
  static func table(_ header: [String], _ rows: [[String]]) {
    var widths = header.map(\.count)
    for row in rows {
      for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) }
    }
    func line(_ cells: [String]) -> String {
      var text = cells.enumerated().map { i, cell in
        i == cells.count - 1 ? cell : cell.padding(toLength: widths[i], withPad: " ", startingAt: 0)
      }.joined(separator: "  ")
      while text.last == " " { text.removeLast() }
      return text
    }
    Output.line(line(header))
    for row in rows { Output.line(line(row)) }
  }

  /// Prints one JSON value on one line.
  static func json(_ value: JSONOutput) {
    Output.line(value.text)
  }

  /// Prints a message as dmsctl's protobuf JSON (`ProtoJSON`), on one line.
  static func message(_ message: some SwiftProtobuf.Message) {
    Output.line(ProtoJSON.output(message).text)
  }

  /// Prints field/value pairs as a two-column table.
  static func fields(_ pairs: [(String, String)]) {
    table(["FIELD", "VALUE"], pairs.map { [$0.0, $0.1] })
  }

  /// Tells a person (on standard error) that a save changed nothing: the server kept
  /// the revision and sent no event.
  static func noteUnchanged(before: Int64, after: Int64, json: Bool) {
    guard !json, before > 0, before == after else { return }
    var stderr = StandardError()
    print("nothing changed: still at revision \(after)", to: &stderr)
  }

  /// "yes"/"no" for people.
  static func yesNo(_ value: Bool) -> String { value ? "yes" : "no" }

  /// How a secret reads in a table: never its value.
  static func secret(_ set: Bool) -> String { set ? "(set)" : "(not set)" }

  /// Reports a failed call on standard error and returns the exit code (1, or 3 when
  /// the server could not be reached). People read flag names (`--db-user`) where
  /// `flags` knows the request's field; `--json` keeps the request's field path.
  static func failure(
    _ error: any Error, json: Bool, flags: FlagNames = FlagNames(), connecting: Bool = false
  ) -> ExitCode {
    let rpcError = error as? RPCError ?? RPCError(code: .unknown, message: "\(error)")
    var stderr = StandardError()
    if json {
      var members: [(String, JSONOutput)] = [
        ("error", .string(connecting ? "connect" : "rpc")),
        ("code", .int(rpcError.code.rawValue)),
        ("code_name", .string(rpcError.code.name)),
        ("message", .string(rpcError.message)),
        (
          "violations",
          .array(
            rpcError.violations.map {
              .object([
                ("field", .string($0.field)), ("rule", .string($0.rule)), ("description", .string($0.description)),
              ])
            })
        ),
      ]
      if let requestID = rpcError.trailers[MetadataKey.requestID] { members.append(("request_id", .string(requestID))) }
      print(JSONOutput.object(members).text, to: &stderr)
    } else if connecting {
      print("dmsctl: cannot connect: \(rpcError.message) (\(rpcError.code.name))", to: &stderr)
    } else {
      print("error: \(rpcError.code.name) (\(rpcError.code.rawValue)): \(rpcError.message)", to: &stderr)
      for violation in rpcError.violations {
        let rule = violation.rule.isEmpty ? "" : " [\(violation.rule)]"
        print("  \(flags.name(violation.field))\(rule): \(violation.description)", to: &stderr)
      }
      if let requestID = rpcError.trailers[MetadataKey.requestID] {
        print("  request-id: \(requestID)", to: &stderr)
      }
      switch rpcError.code {
      case .unauthenticated where rpcError.trailers["two-step"] == "required":
        print("  give the authenticator app's current code: dmsctl login <login> --code <code>", to: &stderr)
      case .unauthenticated where !rpcError.message.hasPrefix("wrong "):
        print("  sign in first: dmsctl login <login> (or set DMS_TOKEN)", to: &stderr)
      case .resourceExhausted:
        if let wait = rpcError.trailers["retry-after-ms"] { print("  retry after: \(wait) ms", to: &stderr) }
      default:
        break
      }
    }
    return connecting ? Exit.cannotConnect : Exit.rpcError
  }

  /// Reports a usage error: the message, then the command's own usage line.
  static func usage(_ message: String, usage: String, json: Bool) -> ExitCode {
    var stderr = StandardError()
    if json {
      print(JSONOutput.object([("error", .string("usage")), ("message", .string(message))]).text, to: &stderr)
    } else {
      print("Error: \(message)", to: &stderr)
      if !usage.isEmpty { print("Usage: \(usage)\n  See 'dmsctl help' for more.", to: &stderr) }
    }
    return Exit.usage
  }
}

/// The flags a command's request fields are set by, for messages to people: the
/// server names `company.connection.user`, the person typed `--db-user`.
struct FlagNames {
  /// Field path (or path prefix ending in `.` or `[`) → flag.
  var byField: [String: String] = [:]

  /// The flag for `field`, else the field as the server named it.
  func name(_ field: String) -> String {
    if let flag = byField[field] { return flag }
    if let bracket = field.firstIndex(of: "["), let flag = byField[String(field[..<bracket])] {
      return "\(flag) (item \((Int(field[field.index(after: bracket)...].prefix { $0.isNumber }) ?? 0) + 1))"
    }
    return field
  }
}

/// Standard error, unbuffered; a closed one is ignored.
struct StandardError: TextOutputStream {
  mutating func write(_ string: String) {
    Output.write(string, to: STDERR_FILENO)
  }
}

/// write(2), under a name `Output.write` does not hide.
private func systemWrite(_ descriptor: Int32, _ buffer: UnsafeRawPointer?, _ count: Int) -> Int {
  write(descriptor, buffer, count)
}
