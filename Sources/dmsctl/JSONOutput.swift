import DMSMessages
import DMSRPC
import Foundation
import SwiftProtobuf

/// A JSON value as dmsctl prints it: compact, one object per line, members in the
/// order given (for messages, the .proto's order).
indirect enum JSONOutput {
  case object([(String, JSONOutput)])
  case array([JSONOutput])
  case string(String)
  /// A number's JSON text.
  case number(String)
  case bool(Bool)
  case null

  static func int(_ value: some BinaryInteger) -> JSONOutput { .number(String(value)) }

  static func double(_ value: Double) -> JSONOutput {
    value.isFinite ? .number(String(format: "%.3f", value)) : .null
  }

  /// The compact text.
  var text: String {
    var out = ""
    write(to: &out)
    return out
  }

  func write(to out: inout String) {
    switch self {
    case .object(let members):
      out += "{"
      for (index, (key, value)) in members.enumerated() {
        if index > 0 { out += "," }
        Self.quote(key, into: &out)
        out += ":"
        value.write(to: &out)
      }
      out += "}"
    case .array(let values):
      out += "["
      for (index, value) in values.enumerated() {
        if index > 0 { out += "," }
        value.write(to: &out)
      }
      out += "]"
    case .string(let text): Self.quote(text, into: &out)
    case .number(let text): out += text
    case .bool(let flag): out += flag ? "true" : "false"
    case .null: out += "null"
    }
  }

  static func quote(_ text: String, into out: inout String) {
    out += "\""
    for scalar in text.unicodeScalars {
      switch scalar {
      case "\"": out += "\\\""
      case "\\": out += "\\\\"
      case "\n": out += "\\n"
      case "\r": out += "\\r"
      case "\t": out += "\\t"
      case _ where scalar.value < 0x20:
        out +=
          "\\u" + String(repeating: "0", count: 4 - String(scalar.value, radix: 16).count)
          + String(scalar.value, radix: 16)
      default: out.unicodeScalars.append(scalar)
      }
    }
    out += "\""
  }

  /// A parsed JSON document as output.
  init(_ node: JSONDocument.Node) {
    switch node.value {
    case .object(let members): self = .object(members.map { ($0.key, JSONOutput($0.node)) })
    case .array(let nodes): self = .array(nodes.map(JSONOutput.init))
    case .string(let text): self = .string(text)
    case .number(let text): self = .number(text)
    case .bool(let flag): self = .bool(flag)
    case .null: self = .null
    }
  }
}

/// Protobuf JSON as dmsctl prints it (docs/CLI.md):
/// - field names as in the .proto (`operator_password_set`);
/// - fields at their default value included (`"use_domain":false` is information), except
///   message fields, members of a oneof and `optional` fields, whose absence means
///   "not set";
/// - 64-bit integers as JSON numbers (protobuf JSON parsers accept both; the values
///   dmsctl prints, revisions and positions, stay far below 2^53);
/// - enums by name.
enum ProtoJSON {
  /// The descriptors of every message compiled in, by full name.
  private static let descriptors: (messages: [String: Google_Protobuf_DescriptorProto], enums: [String: String]) = {
    var messages: [String: Google_Protobuf_DescriptorProto] = [:]
    var enums: [String: String] = [:]
    guard let set = try? Google_Protobuf_FileDescriptorSet(serializedBytes: DescriptorSet.serialized) else {
      return (messages, enums)
    }
    func add(_ message: Google_Protobuf_DescriptorProto, prefix: String) {
      let name = "\(prefix).\(message.name)"
      messages[name] = message
      for nested in message.nestedType { add(nested, prefix: name) }
      for item in message.enumType { enums["\(name).\(item.name)"] = item.value.first?.name ?? "" }
    }
    for file in set.file {
      let prefix = file.package.isEmpty ? "" : ".\(file.package)"
      for message in file.messageType { add(message, prefix: prefix) }
      for item in file.enumType { enums["\(prefix).\(item.name)"] = item.value.first?.name ?? "" }
    }
    return (messages, enums)
  }()

  /// The JSON names of a message's fields, in the .proto's order (`dms.rpc.v1.HealthCheckRequest`).
  static func fieldNames(of type: String) -> [String] {
    descriptors.messages[".\(type)"]?.field.map(\.name) ?? []
  }

  static var encoding: JSONEncodingOptions {
    var options = JSONEncodingOptions()
    options.preserveProtoFieldNames = true
    options.alwaysPrintInt64sAsNumbers = true
    return options
  }

  /// `message` as dmsctl's protobuf JSON.
  static func output(_ message: some SwiftProtobuf.Message) -> JSONOutput {
    guard let text = try? message.jsonString(options: encoding), let document = try? JSONDocument(parsing: text)
    else { return .null }
    return withDefaults(document.root, type: ".\(type(of: message).protoMessageName)")
  }

  /// The members of `node` in the .proto's order, with defaults filled in.
  private static func withDefaults(_ node: JSONDocument.Node, type: String) -> JSONOutput {
    guard case .object(let members) = node.value, let descriptor = descriptors.messages[type] else {
      return JSONOutput(node)
    }
    var present: [String: JSONDocument.Node] = [:]
    for member in members { present[member.key] = member.node }
    var out: [(String, JSONOutput)] = []
    for field in descriptor.field {
      if let value = present.removeValue(forKey: field.name) {
        out.append((field.name, rendered(value, field: field)))
      } else if let value = defaultValue(field) {
        out.append((field.name, value))
      }
    }
    // Anything the descriptors do not know (a newer server), as received.
    for member in members where present[member.key] != nil { out.append((member.key, JSONOutput(member.node))) }
    return .object(out)
  }

  private static func rendered(_ node: JSONDocument.Node, field: Google_Protobuf_FieldDescriptorProto) -> JSONOutput {
    guard field.type == .message else { return JSONOutput(node) }
    if let entry = descriptors.messages[field.typeName], entry.options.mapEntry {
      // A map: its values may be messages.
      guard case .object(let members) = node.value, let valueField = entry.field.first(where: { $0.number == 2 })
      else { return JSONOutput(node) }
      return .object(members.map { ($0.key, rendered($0.node, field: valueField)) })
    }
    if case .array(let nodes) = node.value {
      return .array(nodes.map { withDefaults($0, type: field.typeName) })
    }
    return withDefaults(node, type: field.typeName)
  }

  private static func defaultValue(_ field: Google_Protobuf_FieldDescriptorProto) -> JSONOutput? {
    if field.proto3Optional || field.hasOneofIndex { return nil }
    if field.label == .repeated {
      if let entry = descriptors.messages[field.typeName], entry.options.mapEntry { return .object([]) }
      return .array([])
    }
    switch field.type {
    case .message, .group: return nil
    case .string, .bytes: return .string("")
    case .bool: return .bool(false)
    case .enum: return descriptors.enums[field.typeName].map(JSONOutput.string)
    default: return .number("0")
    }
  }
}
