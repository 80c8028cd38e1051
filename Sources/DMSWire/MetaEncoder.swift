import NIOCore

/// Encodes the hot meta messages straight into a frame buffer, as protobuf, without
/// building message values: `CallMeta` (every CALL) and an OK `Status` holding one
/// trailer (every successful END: its request id). Byte for byte what a protobuf library
/// writes for the same values (frame.proto's field numbers).
public enum MetaEncoder {
  /// The encoded size of `CallMeta { method, timeout_ms, metadata }`; `extra` and
  /// `second` are more metadata entries (the user agent, the session), each written
  /// unless `metadata` has its key.
  public static func callMetaSize(
    method: String,
    timeoutMs: UInt32,
    metadata: [String: String],
    extra: (key: String, value: String)? = nil,
    second: (key: String, value: String)? = nil
  ) -> Int {
    var size = lengthDelimitedSize(method.utf8.count)
    if timeoutMs > 0 { size += 1 + varintSize(UInt64(timeoutMs)) }
    for (key, value) in metadata { size += lengthDelimitedSize(entrySize(key: key, value: value)) }
    for entry in [extra, second] {
      if let entry, metadata[entry.key] == nil {
        size += lengthDelimitedSize(entrySize(key: entry.key, value: entry.value))
      }
    }
    return size
  }

  /// Writes `CallMeta { method, timeout_ms, metadata }` (and `extra` and `second`, as
  /// above).
  public static func writeCallMeta(
    method: String,
    timeoutMs: UInt32,
    metadata: [String: String],
    extra: (key: String, value: String)? = nil,
    second: (key: String, value: String)? = nil,
    into buffer: inout ByteBuffer
  ) {
    writeString(field: 1, method, into: &buffer)
    if timeoutMs > 0 {
      buffer.writeInteger(UInt8(0x10))  // field 2, varint
      writeVarint(UInt64(timeoutMs), into: &buffer)
    }
    for (key, value) in metadata { writeEntry(field: 3, key: key, value: value, into: &buffer) }
    if let extra, metadata[extra.key] == nil {
      writeEntry(field: 3, key: extra.key, value: extra.value, into: &buffer)
    }
    if let second, metadata[second.key] == nil {
      writeEntry(field: 3, key: second.key, value: second.value, into: &buffer)
    }
  }

  /// The encoded size of `Status { trailers: {trailerKey: value} }`.
  public static func okStatusSize(trailerKey: String, value: String) -> Int {
    lengthDelimitedSize(entrySize(key: trailerKey, value: value))
  }

  /// Writes `Status { trailers: {trailerKey: value} }`: code OK (0) is the default and
  /// so is not on the wire.
  public static func writeOKStatus(trailerKey: String, value: String, into buffer: inout ByteBuffer) {
    writeEntry(field: 4, key: trailerKey, value: value, into: &buffer)
  }

  private static func entrySize(key: String, value: String) -> Int {
    lengthDelimitedSize(key.utf8.count) + lengthDelimitedSize(value.utf8.count)
  }

  /// Tag (one byte for fields 1…15), length, bytes.
  static func lengthDelimitedSize(_ count: Int) -> Int {
    1 + varintSize(UInt64(count)) + count
  }

  private static func writeEntry(field: UInt8, key: String, value: String, into buffer: inout ByteBuffer) {
    buffer.writeInteger(field << 3 | 2)
    writeVarint(UInt64(entrySize(key: key, value: value)), into: &buffer)
    writeString(field: 1, key, into: &buffer)
    writeString(field: 2, value, into: &buffer)
  }

  private static func writeString(field: UInt8, _ value: String, into buffer: inout ByteBuffer) {
    buffer.writeInteger(field << 3 | 2)
    writeVarint(UInt64(value.utf8.count), into: &buffer)
    buffer.writeString(value)
  }

  static func varintSize(_ value: UInt64) -> Int {
    var size = 1
    var rest = value >> 7
    while rest > 0 {
      size += 1
      rest >>= 7
    }
    return size
  }

  static func writeVarint(_ value: UInt64, into buffer: inout ByteBuffer) {
    var rest = value
    while rest >= 0x80 {
      buffer.writeInteger(UInt8(truncatingIfNeeded: rest) | 0x80)
      rest >>= 7
    }
    buffer.writeInteger(UInt8(rest))
  }
}
