import NIOCore

/// The 12-byte header in front of every frame (all integers big-endian).
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | u32 | length: bytes after this field = 8 + meta_len + payload length |
/// | 4 | u8 | type |
/// | 5 | u8 | flags |
/// | 6 | u16 | meta_len |
/// | 8 | u32 | call_id |
public enum FrameHeader {
  /// Bytes in a header.
  public static let size = 12
  /// Header bytes counted by `length` (all but the length field itself).
  public static let countedBytes = 8

  /// Writes a header for a frame with `metaLength` bytes of meta and `payloadLength`
  /// bytes of payload.
  @inlinable
  public static func write(
    type: FrameType,
    flags: FrameFlags = [],
    callID: UInt32,
    metaLength: Int,
    payloadLength: Int,
    into buffer: inout ByteBuffer
  ) {
    precondition(metaLength <= Int(UInt16.max), "meta longer than a u16")
    buffer.writeMultipleIntegers(
      UInt32(countedBytes + metaLength + payloadLength),
      type.rawValue,
      flags.rawValue,
      UInt16(metaLength),
      callID
    )
  }
}
