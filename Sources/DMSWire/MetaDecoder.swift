import NIOCore

/// The fields of a CALL's `CallMeta` (frame.proto).
public struct CallMetaFields: Sendable, Equatable {
  /// `/package.Service/Method`.
  public var method: String
  /// 0: no deadline.
  public var timeoutMs: UInt32
  /// Lower-case keys.
  public var metadata: [String: String]

  /// Fields.
  public init(method: String = "", timeoutMs: UInt32 = 0, metadata: [String: String] = [:]) {
    self.method = method
    self.timeoutMs = timeoutMs
    self.metadata = metadata
  }
}

/// The last `CallMeta` a connection decoded, kept with its bytes: a client sends the
/// same meta (method, user agent) call after call, and a repeat costs a comparison of
/// bytes instead of a decode. Used on one connection's event loop.
///
/// `resolved` holds what the user made of the kept fields (the server: the method they
/// name); it is dropped whenever the kept fields change.
public struct CallMetaCache<Resolved> {
  /// Meta longer than this is decoded every time (and not kept).
  public static var maxCachedSize: Int { 512 }

  private var bytes: [UInt8] = []
  private var fields: CallMetaFields?
  private var kept: Resolved?

  /// What was made of the kept fields; nil after a decode that did not repeat them.
  /// Setting it is ignored while no fields are kept.
  public var resolved: Resolved? {
    get { kept }
    set { if fields != nil { kept = newValue } }
  }

  /// An empty cache.
  public init() {}

  /// The fields of `meta`: the kept ones when its bytes are the kept bytes, else a
  /// fresh decode (which is then kept).
  public mutating func decode(_ meta: ByteBuffer) throws(MetaDecoder.Malformed) -> CallMetaFields {
    if let fields, meta.readableBytes == bytes.count,
      meta.withUnsafeReadableBytes({ new in bytes.withUnsafeBytes { Self.equal(new, $0) } })
    {
      return fields
    }
    kept = nil
    let decoded: CallMetaFields
    do {
      decoded = try MetaDecoder.callMeta(meta)
    } catch {
      fields = nil
      throw error
    }
    if meta.readableBytes <= Self.maxCachedSize {
      bytes = Array(meta.readableBytesView)
      fields = decoded
    } else {
      bytes = []
      fields = nil
    }
    return decoded
  }

  /// Whether two byte ranges of the same length are equal, compared eight bytes at a
  /// time.
  private static func equal(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
    guard let x = a.baseAddress, let y = b.baseAddress else { return a.count == b.count }
    var offset = 0
    while offset + 8 <= a.count {
      if x.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
        != y.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
      {
        return false
      }
      offset += 8
    }
    while offset < a.count {
      if x.load(fromByteOffset: offset, as: UInt8.self) != y.load(fromByteOffset: offset, as: UInt8.self) {
        return false
      }
      offset += 1
    }
    return true
  }
}

/// Decodes `CallMeta` straight from the frame's bytes: the server's per-call hot path,
/// without a protobuf message value. Reads every message a protobuf encoder writes as
/// swift-protobuf does (fields in any order, repeated scalars last-wins, unknown fields
/// and groups skipped, a known field with another wire type skipped as unknown), and is
/// never looser: what swift-protobuf refuses (truncated values, invalid UTF-8, invalid
/// wire types or field numbers) it refuses. scripts/fuzz checks both.
public enum MetaDecoder {
  /// The bytes are not a `CallMeta`.
  public struct Malformed: Error, Sendable {}

  /// Decodes a serialized `CallMeta`.
  public static func callMeta(_ bytes: ByteBuffer) throws(Malformed) -> CallMetaFields {
    try bytes.withUnsafeReadableBytes { (raw) throws(Malformed) -> CallMetaFields in
      var reader = RawReader(raw)
      var method = ""
      var timeoutMs: UInt32 = 0
      var metadata: [String: String] = [:]
      while !reader.isAtEnd {
        let key = try reader.tag()
        switch (key >> 3, key & 7) {
        case (1, 2):
          method = try reader.string()
        case (2, 0):
          timeoutMs = UInt32(truncatingIfNeeded: try reader.varint())

        case (3, 2):
          var entry = RawReader(try reader.lengthDelimited())
          var entryKey = ""
          var entryValue = ""
          while !entry.isAtEnd {
            let entryTag = try entry.tag()
            switch (entryTag >> 3, entryTag & 7) {
            case (1, 2): entryKey = try entry.string()
            case (2, 2): entryValue = try entry.string()
            // A map entry's key or value of another wire type: refused (swift-protobuf
            // refuses some such entries and not others; no encoder writes them).
            case (1...2, _): throw Malformed()
            default: try entry.skipField(wireType: entryTag & 7, field: entryTag >> 3)
            }
          }
          metadata[entryKey] = entryValue
        default:
          // Unknown fields, and known ones with another wire type (as swift-protobuf
          // does: such a field is an unknown one), are skipped.
          try reader.skipField(wireType: key & 7, field: key >> 3)
        }
      }
      return CallMetaFields(method: method, timeoutMs: timeoutMs, metadata: metadata)
    }
  }

  /// The `code` of a serialized `Status`, read without decoding the rest: a client
  /// decodes the whole message (message, violations, trailers) only when the code is
  /// not OK. The other fields are checked for framing (lengths, wire types), not
  /// decoded. An int32 is sign-extended on the wire; its low 32 bits are the code.
  public static func statusCode(_ bytes: ByteBuffer) throws(Malformed) -> Int32 {
    // Read in place from the buffer's memory: copying the buffer to read from it, and
    // a slice per skipped field, each cost a reference count.
    try bytes.withUnsafeReadableBytes { (raw) throws(Malformed) -> Int32 in
      var reader = RawReader(raw)
      var code: Int32 = 0
      while !reader.isAtEnd {
        let key = try reader.tag()
        switch (key >> 3, key & 7) {
        case (1, 0):
          code = Int32(truncatingIfNeeded: try reader.varint())

        case (2...4, 2):
          _ = try reader.lengthDelimited()
        default:
          // Unknown fields, and known ones with another wire type, are skipped.
          try reader.skipField(wireType: key & 7, field: key >> 3)
        }
      }
      return code
    }
  }

  /// A cursor over protobuf bytes in memory.
  private struct RawReader {
    let bytes: UnsafeRawBufferPointer
    var offset = 0

    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    var isAtEnd: Bool { offset >= bytes.count }

    mutating func varint() throws(Malformed) -> UInt64 {
      var result: UInt64 = 0
      var shift: UInt64 = 0
      while true {
        guard shift < 64, offset < bytes.count else { throw Malformed() }
        let byte = bytes[offset]
        offset += 1
        result |= UInt64(byte & 0x7F) << shift
        if byte & 0x80 == 0 { return result }
        shift += 7
      }
    }

    /// A field's tag: a varint of at most 5 bytes holding a 32-bit value, as
    /// swift-protobuf reads it (a longer one, even if zero-padded, is malformed).
    mutating func tag() throws(Malformed) -> UInt64 {
      let start = offset
      let value = try varint()
      guard offset - start <= 5, value <= UInt64(UInt32.max) else { throw Malformed() }
      return value
    }

    mutating func skip(_ count: Int) throws(Malformed) {
      guard count <= bytes.count - offset else { throw Malformed() }
      offset += count
    }

    /// A length-delimited value (its length a varint), in place.
    mutating func lengthDelimited() throws(Malformed) -> UnsafeRawBufferPointer {
      let length = try varint()
      guard length <= UInt64(bytes.count - offset) else { throw Malformed() }
      let start = offset
      offset += Int(length)
      return UnsafeRawBufferPointer(rebasing: bytes[start..<offset])
    }

    /// A length-delimited value that must be UTF-8.
    mutating func string() throws(Malformed) -> String {
      guard let string = String(validating: try lengthDelimited(), as: UTF8.self) else { throw Malformed() }
      return string
    }

    /// Skips an unknown field's value.
    mutating func skipField(wireType: UInt64, field: UInt64) throws(Malformed) {
      // Field numbers run from 1 to 2^29 - 1; a tag past that is malformed.
      guard field > 0, field <= 536_870_911 else { throw Malformed() }
      switch wireType {
      case 0: _ = try varint()
      case 1: try skip(8)
      case 2: _ = try lengthDelimited()
      case 3: try skipGroup(field: field, depth: 1)
      case 5: try skip(4)
      default: throw Malformed()
      }
    }

    /// Skips a group (deprecated wire types 3 and 4, which a protobuf decoder still
    /// skips as an unknown field): everything up to the end tag of `field`.
    private mutating func skipGroup(field: UInt64, depth: Int) throws(Malformed) {
      guard depth <= Self.maxGroupDepth else { throw Malformed() }
      while true {
        let key = try tag()
        let (number, wireType) = (key >> 3, key & 7)
        guard number > 0, number <= 536_870_911 else { throw Malformed() }
        switch wireType {
        case 4:
          guard number == field else { throw Malformed() }
          return
        case 3: try skipGroup(field: number, depth: depth + 1)
        default: try skipField(wireType: wireType, field: number)
        }
      }
    }

    /// Groups nested deeper than this are refused (swift-protobuf's default limit
    /// for nested messages is 100).
    static let maxGroupDepth = 100
  }
}
