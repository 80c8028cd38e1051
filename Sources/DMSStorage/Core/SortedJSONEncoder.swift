import Foundation

/// The stored records' JSON, written directly: the bytes Foundation's `JSONEncoder`
/// writes with `.sortedKeys` (its key order, its escapes, `/` as `\/`), for the types
/// records are made of (strings, booleans, integers, nested records, arrays, string-keyed
/// dictionaries, absent optionals).
///
/// `JSONEncoder` builds a tree of boxed values and sorts each object's keys as strings;
/// on W6's path (`Companies/Update`) that was about 15% of the server's CPU
/// (docs/PERFORMANCE.md, sixteenth sitting). Here a value's fields are written into byte
/// buffers as they are encoded and an object's fields sorted once, as bytes.
///
/// Any other type (a floating-point number, `Date`, `Data`, `URL`, `Decimal`, which
/// `JSONEncoder` formats by its strategies) throws `Unsupported`: `StoredJSON.encode`
/// then uses `JSONEncoder` for that record. A test compares the two on every record
/// type and on every ASCII character.
enum SortedJSONEncoder {
  /// The value holds a type this encoder does not write as `JSONEncoder` would.
  struct Unsupported: Error {}

  static func encode<Value: Encodable>(_ value: Value) throws -> Data {
    let root = Node()
    try encode(value, into: root, path: [])
    var bytes: [UInt8] = []
    bytes.reserveCapacity(512)
    root.write(into: &bytes)
    return Data(bytes)
  }

  /// Encodes `value` into `node`: scalars written at once, records through `Writer`.
  fileprivate static func encode<Value: Encodable>(_ value: Value, into node: Node, path: [any CodingKey]) throws {
    switch value {
    case let text as String: node.scalar(text)
    case let flag as Bool: node.raw(flag ? "true" : "false")
    case let number as Int: node.raw(String(number))
    case let number as Int64: node.raw(String(number))
    case let number as Int32: node.raw(String(number))
    case let number as Int16: node.raw(String(number))
    case let number as Int8: node.raw(String(number))
    case let number as UInt: node.raw(String(number))
    case let number as UInt64: node.raw(String(number))
    case let number as UInt32: node.raw(String(number))
    case let number as UInt16: node.raw(String(number))
    case let number as UInt8: node.raw(String(number))
    case is Double, is Float, is Date, is Data, is URL, is Decimal: throw Unsupported()
    default: try value.encode(to: Writer(node: node, codingPath: path))
    }
  }
}

/// One JSON value being written: a scalar's bytes, an object's fields or an array's
/// items.
private final class Node {
  enum Content {
    case none
    case bytes([UInt8])
    case object([(key: String, node: Node)])
    case array([Node])
  }

  var content = Content.none

  func raw(_ text: String) { content = .bytes(Array(text.utf8)) }

  func scalar(_ text: String) {
    var bytes: [UInt8] = []
    bytes.reserveCapacity(text.utf8.count + 2)
    Node.quote(text, into: &bytes)
    content = .bytes(bytes)
  }

  func null() { content = .bytes(Array("null".utf8)) }

  /// The field `key` of this object (an object from now on). A key written twice keeps
  /// the later value, as with `JSONEncoder` (`write` drops the earlier).
  func field(_ key: String) -> Node {
    let child = Node()
    guard case .object(var fields) = content else {
      content = .object([(key, child)])
      return child
    }
    content = .none
    fields.append((key, child))
    content = .object(fields)
    return child
  }

  /// Makes this node an object (an empty one unless it already is).
  func makeObject() {
    if case .object = content { return }
    content = .object([])
  }

  /// A new item at the end of this array (an array from now on).
  func item() -> Node {
    let child = Node()
    guard case .array(var items) = content else {
      content = .array([child])
      return child
    }
    content = .none
    items.append(child)
    content = .array(items)
    return child
  }

  func makeArray() {
    if case .array = content { return }
    content = .array([])
  }

  var arrayCount: Int {
    if case .array(let items) = content { items.count } else { 0 }
  }

  /// Writes the value; keys in the order of their UTF-8 bytes (`JSONEncoder`'s
  /// `.sortedKeys` here). A value that wrote nothing is `{}` (as `JSONEncoder` writes
  /// it).
  func write(into bytes: inout [UInt8]) {
    switch content {
    case .none: bytes += [UInt8(ascii: "{"), UInt8(ascii: "}")]
    case .bytes(let scalar): bytes += scalar
    case .array(let items):
      bytes.append(UInt8(ascii: "["))
      for (index, item) in items.enumerated() {
        if index > 0 { bytes.append(UInt8(ascii: ",")) }
        item.write(into: &bytes)
      }
      bytes.append(UInt8(ascii: "]"))
    case .object(let fields):
      bytes.append(UInt8(ascii: "{"))
      // By key, then in the order written: of a key written twice, the last counts.
      let order = fields.indices.sorted { a, b in
        fields[a].key == fields[b].key ? a < b : fields[a].key.utf8.lexicographicallyPrecedes(fields[b].key.utf8)
      }
      var first = true
      for (position, index) in order.enumerated() {
        if position + 1 < order.count, fields[order[position + 1]].key == fields[index].key { continue }
        if !first { bytes.append(UInt8(ascii: ",")) }
        first = false
        Node.quote(fields[index].key, into: &bytes)
        bytes.append(UInt8(ascii: ":"))
        fields[index].node.write(into: &bytes)
      }
      bytes.append(UInt8(ascii: "}"))
    }
  }

  private static let hex = Array("0123456789abcdef".utf8)

  /// `text` as a JSON string, escaped as `JSONEncoder` escapes it.
  static func quote(_ text: String, into bytes: inout [UInt8]) {
    bytes.append(UInt8(ascii: "\""))
    for byte in text.utf8 {
      switch byte {
      case UInt8(ascii: "\""): bytes += [UInt8(ascii: "\\"), UInt8(ascii: "\"")]
      case UInt8(ascii: "\\"): bytes += [UInt8(ascii: "\\"), UInt8(ascii: "\\")]
      case UInt8(ascii: "/"): bytes += [UInt8(ascii: "\\"), UInt8(ascii: "/")]
      case 0x08: bytes += [UInt8(ascii: "\\"), UInt8(ascii: "b")]
      case 0x0C: bytes += [UInt8(ascii: "\\"), UInt8(ascii: "f")]
      case 0x0A: bytes += [UInt8(ascii: "\\"), UInt8(ascii: "n")]
      case 0x0D: bytes += [UInt8(ascii: "\\"), UInt8(ascii: "r")]
      case 0x09: bytes += [UInt8(ascii: "\\"), UInt8(ascii: "t")]
      case 0..<0x20:
        bytes += [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0")]
        bytes += [hex[Int(byte >> 4)], hex[Int(byte & 0x0F)]]
      default: bytes.append(byte)
      }
    }
    bytes.append(UInt8(ascii: "\""))
  }
}

/// The `Encoder` records encode themselves into.
private struct Writer: Encoder {
  let node: Node
  let codingPath: [any CodingKey]
  var userInfo: [CodingUserInfoKey: Any] { [:] }

  func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
    node.makeObject()
    return KeyedEncodingContainer(KeyedWriter<Key>(node: node, codingPath: codingPath))
  }

  func unkeyedContainer() -> any UnkeyedEncodingContainer {
    node.makeArray()
    return UnkeyedWriter(node: node, codingPath: codingPath)
  }

  func singleValueContainer() -> any SingleValueEncodingContainer {
    SingleValueWriter(node: node, codingPath: codingPath)
  }
}

private struct KeyedWriter<Key: CodingKey>: KeyedEncodingContainerProtocol {
  let node: Node
  let codingPath: [any CodingKey]

  mutating func encodeNil(forKey key: Key) throws { node.field(key.stringValue).null() }

  // The records' own field types, without a dynamic cast each.
  mutating func encode(_ value: String, forKey key: Key) throws { node.field(key.stringValue).scalar(value) }
  mutating func encode(_ value: Bool, forKey key: Key) throws {
    node.field(key.stringValue).raw(value ? "true" : "false")
  }
  mutating func encode(_ value: Int, forKey key: Key) throws { node.field(key.stringValue).raw(String(value)) }
  mutating func encode(_ value: Int64, forKey key: Key) throws { node.field(key.stringValue).raw(String(value)) }

  mutating func encode<Value: Encodable>(_ value: Value, forKey key: Key) throws {
    try SortedJSONEncoder.encode(value, into: node.field(key.stringValue), path: codingPath + [key])
  }

  mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key)
    -> KeyedEncodingContainer<NestedKey>
  {
    let child = node.field(key.stringValue)
    child.makeObject()
    return KeyedEncodingContainer(KeyedWriter<NestedKey>(node: child, codingPath: codingPath + [key]))
  }

  mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
    let child = node.field(key.stringValue)
    child.makeArray()
    return UnkeyedWriter(node: child, codingPath: codingPath + [key])
  }

  mutating func superEncoder() -> any Encoder {
    Writer(node: node.field("super"), codingPath: codingPath)
  }

  mutating func superEncoder(forKey key: Key) -> any Encoder {
    Writer(node: node.field(key.stringValue), codingPath: codingPath + [key])
  }
}

private struct UnkeyedWriter: UnkeyedEncodingContainer {
  let node: Node
  let codingPath: [any CodingKey]
  var count: Int { node.arrayCount }

  mutating func encodeNil() throws { node.item().null() }

  mutating func encode<Value: Encodable>(_ value: Value) throws {
    try SortedJSONEncoder.encode(value, into: node.item(), path: codingPath)
  }

  mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type)
    -> KeyedEncodingContainer<NestedKey>
  {
    let child = node.item()
    child.makeObject()
    return KeyedEncodingContainer(KeyedWriter<NestedKey>(node: child, codingPath: codingPath))
  }

  mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
    let child = node.item()
    child.makeArray()
    return UnkeyedWriter(node: child, codingPath: codingPath)
  }

  mutating func superEncoder() -> any Encoder {
    Writer(node: node.item(), codingPath: codingPath)
  }
}

private struct SingleValueWriter: SingleValueEncodingContainer {
  let node: Node
  let codingPath: [any CodingKey]

  mutating func encodeNil() throws { node.null() }

  mutating func encode<Value: Encodable>(_ value: Value) throws {
    try SortedJSONEncoder.encode(value, into: node, path: codingPath)
  }
}
