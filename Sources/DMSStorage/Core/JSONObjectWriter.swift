/// Writes one JSON object field by field, for the records written on every change
/// (`JSONEncoder` costs several times more). The bytes are what `JSONEncoder` with
/// `.sortedKeys` writes, when the fields are written in sorted order: a test compares
/// the two.
struct JSONObjectWriter {
  private(set) var bytes: [UInt8] = [UInt8(ascii: "{")]
  private var first = true

  init() {
    bytes.reserveCapacity(512)
  }

  private mutating func key(_ name: StaticString) {
    if !first { bytes.append(UInt8(ascii: ",")) }
    first = false
    bytes.append(UInt8(ascii: "\""))
    name.withUTF8Buffer { bytes.append(contentsOf: $0) }
    bytes.append(contentsOf: [UInt8(ascii: "\""), UInt8(ascii: ":")])
  }

  mutating func field(_ name: StaticString, _ value: String) {
    key(name)
    Self.appendString(value, to: &bytes)
  }

  mutating func field(_ name: StaticString, _ value: Bool) {
    key(name)
    bytes.append(contentsOf: value ? Array("true".utf8) : Array("false".utf8))
  }

  mutating func field(_ name: StaticString, _ value: Int) {
    key(name)
    bytes.append(contentsOf: String(value).utf8)
  }

  mutating func field(_ name: StaticString, object: JSONObjectWriter) {
    key(name)
    bytes.append(contentsOf: object.finished())
  }

  mutating func field(_ name: StaticString, strings: [String]) {
    key(name)
    bytes.append(UInt8(ascii: "["))
    for (index, value) in strings.enumerated() {
      if index > 0 { bytes.append(UInt8(ascii: ",")) }
      Self.appendString(value, to: &bytes)
    }
    bytes.append(UInt8(ascii: "]"))
  }

  /// The object, closed.
  func finished() -> [UInt8] {
    bytes + [UInt8(ascii: "}")]
  }

  private static let hex = Array("0123456789abcdef".utf8)

  /// A JSON string as `JSONEncoder` escapes it: quote, backslash, slash, the short
  /// escapes, other control characters as \u00XX; everything else as UTF-8.
  static func appendString(_ value: String, to bytes: inout [UInt8]) {
    bytes.append(UInt8(ascii: "\""))
    for byte in value.utf8 {
      switch byte {
      case UInt8(ascii: "\""): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
      case UInt8(ascii: "\\"): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
      case UInt8(ascii: "/"): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "/")])
      case 0x0A: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
      case 0x0D: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
      case 0x09: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
      case 0x08: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "b")])
      case 0x0C: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "f")])
      case 0..<0x20:
        bytes.append(contentsOf: Array("\\u00".utf8))
        bytes.append(hex[Int(byte >> 4)])
        bytes.append(hex[Int(byte & 0x0F)])
      default: bytes.append(byte)
      }
    }
    bytes.append(UInt8(ascii: "\""))
  }
}
