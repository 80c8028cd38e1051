import ArgumentParser
import DMSRPC
import Foundation
import SwiftProtobuf

/// Printing for people (tables) and for scripts (JSON).
enum Output {
  /// Prints rows as an aligned table under `header`.
  static func table(_ header: [String], _ rows: [[String]]) {
    var widths = header.map(\.count)
    for row in rows {
      for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) }
    }
    func line(_ cells: [String]) -> String {
      cells.enumerated().map { i, cell in
        i == cells.count - 1 ? cell : cell.padding(toLength: widths[i], withPad: " ", startingAt: 0)
      }.joined(separator: "  ")
    }
    print(line(header))
    for row in rows { print(line(row)) }
  }

  /// Prints a JSON value (dictionaries, arrays, strings, numbers, booleans).
  static func json(_ value: Any) {
    let data =
      (try? JSONSerialization.data(
        withJSONObject: value, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])) ?? Data()
    print(String(decoding: data, as: UTF8.self))
  }

  /// Reports a failed call and returns the exit code to use (1).
  static func failure(_ error: any Error, json: Bool) -> ExitCode {
    let rpcError = error as? RPCError ?? RPCError(code: .unknown, message: "\(error)")
    if json {
      Output.json([
        "code": Int(rpcError.code.rawValue),
        "code_name": rpcError.code.name,
        "message": rpcError.message,
        "violations": rpcError.violations.map {
          ["field": $0.field, "rule": $0.rule, "description": $0.description]
        },
        "trailers": rpcError.trailers,
      ])
    } else {
      var stderr = StandardError()
      print("error: \(rpcError.code.name) (\(rpcError.code.rawValue)): \(rpcError.message)", to: &stderr)
      for violation in rpcError.violations {
        let rule = violation.rule.isEmpty ? "" : " [\(violation.rule)]"
        print("  \(violation.field)\(rule): \(violation.description)", to: &stderr)
      }
      if let requestID = rpcError.trailers[MetadataKey.requestID] {
        print("  request-id: \(requestID)", to: &stderr)
      }
    }
    return ExitCode(1)
  }
}

struct StandardError: TextOutputStream {
  mutating func write(_ string: String) {
    FileHandle.standardError.write(Data(string.utf8))
  }
}

extension Output {
  /// Protobuf JSON with the field names of the .proto.
  static var protoJSON: JSONEncodingOptions {
    var options = JSONEncodingOptions()
    options.preserveProtoFieldNames = true
    return options
  }

  /// Prints a message as protobuf JSON (field names as in the .proto).
  static func message(_ message: some SwiftProtobuf.Message) throws {
    print(try message.jsonString(options: protoJSON))
  }

  /// Prints field/value pairs as a two-column table.
  static func fields(_ pairs: [(String, String)]) {
    table(["FIELD", "VALUE"], pairs.map { [$0.0, $0.1] })
  }

  /// "yes"/"no" for people.
  static func yesNo(_ value: Bool) -> String { value ? "yes" : "no" }

  /// How a secret reads in a table: never its value.
  static func secret(_ set: Bool) -> String { set ? "(set)" : "(not set)" }
}
