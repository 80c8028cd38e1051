/// A JSON text (RFC 8259, strictly: no comments, no trailing commas, no repeated
/// keys) parsed with the line and column of every key and value, so that a person is
/// told where a configuration file or a request written by hand goes wrong.
///
/// Foundation's parser says "Unexpected end of file during JSON parse." without a
/// position and accepts trailing commas; this one says "line 4, column 3: a trailing
/// comma before '}'".
public struct JSONDocument: Sendable {
  /// Where a key or value starts: 1-based line and column (columns count characters).
  public struct Position: Sendable, Hashable, CustomStringConvertible {
    public var line: Int
    public var column: Int

    public var description: String { "line \(line), column \(column)" }
  }

  /// A value and where it starts.
  public struct Node: Sendable {
    public var value: Value
    public var position: Position
  }

  /// A member of an object, in the order written.
  public struct Member: Sendable {
    public var key: String
    public var keyPosition: Position
    public var node: Node
  }

  /// A JSON value; numbers keep their text.
  public indirect enum Value: Sendable {
    case object([Member])
    case array([Node])
    case string(String)
    case number(String)
    case bool(Bool)
    case null

    /// "an object", "a string", … for messages.
    public var kindName: String {
      switch self {
      case .object: "an object"
      case .array: "an array"
      case .string: "a string"
      case .number: "a number"
      case .bool: "a boolean"
      case .null: "null"
      }
    }
  }

  /// Malformed JSON: where, and what was expected.
  public struct SyntaxError: Error, Sendable, CustomStringConvertible {
    public var position: Position
    public var message: String

    public var description: String { "\(position): \(message)" }
  }

  /// The value the text holds.
  public let root: Node

  /// Parses `text`; throws `SyntaxError` at the first fault.
  public init(parsing text: some StringProtocol) throws {
    var parser = Parser(bytes: Array(text.utf8))
    root = try parser.document()
  }

  /// Parses UTF-8 bytes; throws `SyntaxError` at the first fault.
  public init(parsing bytes: [UInt8]) throws {
    var parser = Parser(bytes: bytes)
    root = try parser.document()
  }
}

extension JSONDocument.Node {
  /// The first member named `key` at any depth, depth first, for pointing at a field
  /// another decoder refused by name.
  public func firstMember(named key: String) -> JSONDocument.Member? {
    switch value {
    case .object(let members):
      for member in members {
        if member.key == key { return member }
        if let found = member.node.firstMember(named: key) { return found }
      }
    case .array(let nodes):
      for node in nodes {
        if let found = node.firstMember(named: key) { return found }
      }
    default:
      break
    }
    return nil
  }
}

private struct Parser {
  let bytes: [UInt8]
  var index = 0
  var line = 1
  var lineStart = 0
  var depth = 0
  static let maxDepth = 256

  init(bytes: [UInt8]) {
    self.bytes = bytes
    // A UTF-8 byte order mark is allowed before the text.
    if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { index = 3 }
    lineStart = index
  }

  var position: JSONDocument.Position {
    // Columns count characters: UTF-8 continuation bytes do not start one.
    let column = bytes[lineStart..<min(index, bytes.count)].reduce(1) { $1 & 0xC0 == 0x80 ? $0 : $0 + 1 }
    return JSONDocument.Position(line: line, column: column)
  }

  func fail(_ message: String, at position: JSONDocument.Position? = nil) -> JSONDocument.SyntaxError {
    JSONDocument.SyntaxError(position: position ?? self.position, message: message)
  }

  /// What stands at the current position, for messages.
  var found: String {
    guard index < bytes.count else { return "the end of the text" }
    let byte = bytes[index]
    if byte >= 0x21 && byte < 0x7F { return "'\(Character(Unicode.Scalar(byte)))'" }
    let hex = Array("0123456789ABCDEF")
    return "the byte 0x" + String([hex[Int(byte >> 4)], hex[Int(byte & 15)]])
  }

  mutating func skipWhitespace() {
    while index < bytes.count {
      switch bytes[index] {
      case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\r"):
        index += 1
      case UInt8(ascii: "\n"):
        index += 1
        line += 1
        lineStart = index
      default:
        return
      }
    }
  }

  mutating func document() throws -> JSONDocument.Node {
    skipWhitespace()
    guard index < bytes.count else { throw fail("the text is empty; expected a JSON value such as {}") }
    let root = try value()
    skipWhitespace()
    guard index == bytes.count else { throw fail("unexpected \(found) after the end of the JSON value") }
    return root
  }

  mutating func value() throws -> JSONDocument.Node {
    let start = position
    guard index < bytes.count else { throw fail("expected a value, found the end of the text") }
    switch bytes[index] {
    case UInt8(ascii: "{"): return JSONDocument.Node(value: try object(), position: start)
    case UInt8(ascii: "["): return JSONDocument.Node(value: try array(), position: start)
    case UInt8(ascii: "\""): return JSONDocument.Node(value: .string(try string()), position: start)
    case UInt8(ascii: "t"):
      try literal("true")
      return JSONDocument.Node(value: .bool(true), position: start)
    case UInt8(ascii: "f"):
      try literal("false")
      return JSONDocument.Node(value: .bool(false), position: start)
    case UInt8(ascii: "n"):
      try literal("null")
      return JSONDocument.Node(value: .null, position: start)
    case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
      return JSONDocument.Node(value: .number(try number()), position: start)
    case UInt8(ascii: "'"):
      throw fail("strings are written in double quotes (\"), not single quotes")
    default:
      throw fail("expected a value (an object, array, string, number, true, false or null), found \(found)")
    }
  }

  mutating func literal(_ word: String) throws {
    let start = position
    for byte in word.utf8 {
      guard index < bytes.count, bytes[index] == byte else {
        throw fail("expected \(word) (JSON's literals are true, false and null, in lower case)", at: start)
      }
      index += 1
    }
  }

  mutating func enter() throws {
    depth += 1
    guard depth <= Self.maxDepth else { throw fail("nested more than \(Self.maxDepth) levels deep") }
  }

  mutating func object() throws -> JSONDocument.Value {
    try enter()
    defer { depth -= 1 }
    index += 1  // {
    var members: [JSONDocument.Member] = []
    var seen: [String: JSONDocument.Position] = [:]
    skipWhitespace()
    if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
      index += 1
      return .object(members)
    }
    while true {
      skipWhitespace()
      let keyPosition = position
      guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else {
        if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
          throw fail("a trailing comma before '}'")
        }
        throw fail("expected a key in double quotes, found \(found)")
      }
      let key = try string()
      if let first = seen[key] {
        throw fail("the key \"\(key)\" is written twice (first at \(first))", at: keyPosition)
      }
      seen[key] = keyPosition
      skipWhitespace()
      guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else {
        throw fail("expected ':' after the key \"\(key)\", found \(found)")
      }
      index += 1
      skipWhitespace()
      let node = try value()
      members.append(JSONDocument.Member(key: key, keyPosition: keyPosition, node: node))
      skipWhitespace()
      guard index < bytes.count else { throw fail("the object is not closed: expected ',' or '}'") }
      switch bytes[index] {
      case UInt8(ascii: ","):
        index += 1
      case UInt8(ascii: "}"):
        index += 1
        return .object(members)
      default:
        throw fail("expected ',' or '}' after the value of \"\(key)\", found \(found)")
      }
    }
  }

  mutating func array() throws -> JSONDocument.Value {
    try enter()
    defer { depth -= 1 }
    index += 1  // [
    var nodes: [JSONDocument.Node] = []
    skipWhitespace()
    if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
      index += 1
      return .array(nodes)
    }
    while true {
      skipWhitespace()
      if index < bytes.count, bytes[index] == UInt8(ascii: "]") { throw fail("a trailing comma before ']'") }
      nodes.append(try value())
      skipWhitespace()
      guard index < bytes.count else { throw fail("the array is not closed: expected ',' or ']'") }
      switch bytes[index] {
      case UInt8(ascii: ","):
        index += 1
      case UInt8(ascii: "]"):
        index += 1
        return .array(nodes)
      default:
        throw fail("expected ',' or ']' in the array, found \(found)")
      }
    }
  }

  mutating func string() throws -> String {
    let start = position
    index += 1  // "
    var scalars = String.UnicodeScalarView()
    var run = index  // the start of unescaped bytes not yet copied
    func flush(_ parser: Parser, upTo end: Int, into scalars: inout String.UnicodeScalarView) {
      scalars.append(contentsOf: String(decoding: parser.bytes[run..<end], as: UTF8.self).unicodeScalars)
    }
    while true {
      guard index < bytes.count else { throw fail("the string is not closed (it starts at \(start))") }
      let byte = bytes[index]
      switch byte {
      case UInt8(ascii: "\""):
        flush(self, upTo: index, into: &scalars)
        index += 1
        return String(scalars)
      case UInt8(ascii: "\\"):
        flush(self, upTo: index, into: &scalars)
        scalars.append(try escape())
        run = index
      case 0..<0x20:
        throw fail(byte == 0x0A ? "a line break inside a string (write \\n)" : "a control character inside a string")
      default:
        index += 1
      }
    }
  }

  mutating func escape() throws -> Unicode.Scalar {
    let start = position
    index += 1  // backslash
    guard index < bytes.count else { throw fail("the string is not closed") }
    let byte = bytes[index]
    index += 1
    switch byte {
    case UInt8(ascii: "\""): return "\""
    case UInt8(ascii: "\\"): return "\\"
    case UInt8(ascii: "/"): return "/"
    case UInt8(ascii: "b"): return "\u{8}"
    case UInt8(ascii: "f"): return "\u{C}"
    case UInt8(ascii: "n"): return "\n"
    case UInt8(ascii: "r"): return "\r"
    case UInt8(ascii: "t"): return "\t"
    case UInt8(ascii: "u"):
      let high = try hex4(start)
      if (0xD800..<0xDC00).contains(high) {
        guard index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u")
        else { throw fail("a lone surrogate \\u escape", at: start) }
        index += 2
        let low = try hex4(start)
        guard (0xDC00..<0xE000).contains(low) else { throw fail("a lone surrogate \\u escape", at: start) }
        return Unicode.Scalar(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))!
      }
      guard let scalar = Unicode.Scalar(high) else { throw fail("a lone surrogate \\u escape", at: start) }
      return scalar
    default:
      throw fail("an unknown escape; JSON knows \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX", at: start)
    }
  }

  mutating func hex4(_ start: JSONDocument.Position) throws -> UInt32 {
    var value: UInt32 = 0
    for _ in 0..<4 {
      guard index < bytes.count, let digit = Self.hexValue(bytes[index]) else {
        throw fail("\\u needs four hexadecimal digits", at: start)
      }
      value = value << 4 | UInt32(digit)
      index += 1
    }
    return value
  }

  static func hexValue(_ byte: UInt8) -> UInt8? {
    switch byte {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
    default: nil
    }
  }

  mutating func number() throws -> String {
    let start = index
    let startPosition = position
    func digits(_ parser: inout Parser) -> Int {
      var count = 0
      while parser.index < parser.bytes.count,
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(parser.bytes[parser.index])
      {
        parser.index += 1
        count += 1
      }
      return count
    }
    if bytes[index] == UInt8(ascii: "-") { index += 1 }
    let integerStart = index
    let integerDigits = digits(&self)
    guard integerDigits > 0 else { throw fail("a number needs digits after '-'", at: startPosition) }
    if integerDigits > 1, bytes[integerStart] == UInt8(ascii: "0") {
      throw fail("a number does not start with 0 (write it without leading zeros)", at: startPosition)
    }
    if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
      index += 1
      guard digits(&self) > 0 else { throw fail("a number needs digits after '.'", at: startPosition) }
    }
    if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
      index += 1
      if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
      guard digits(&self) > 0 else { throw fail("a number needs digits in its exponent", at: startPosition) }
    }
    return String(decoding: bytes[start..<index], as: UTF8.self)
  }
}
