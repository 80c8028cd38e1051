import NIOCore

/// Writes the two per-call frames whole: one reservation of the buffer and raw stores,
/// instead of a capacity and uniqueness check per field. Byte for byte what
/// `FrameHeader.write` and `MetaEncoder` write.
public enum FrameWriter {
  /// The size of an OK END whose Status holds one trailer and nothing else.
  public static func okEndSize(trailerKey: String, value: String, payloadCount: Int) -> Int {
    FrameHeader.size + MetaEncoder.okStatusSize(trailerKey: trailerKey, value: value) + payloadCount
  }

  /// Appends an OK END: header, `Status { trailers: {trailerKey: value} }`, payload.
  /// (The server's every successful call: the trailer is its request id.)
  public static func writeOKEnd(
    callID: UInt32, trailerKey: String, value: String, payload: UnsafeRawBufferPointer, into buffer: inout ByteBuffer
  ) {
    let metaLength = MetaEncoder.okStatusSize(trailerKey: trailerKey, value: value)
    let size = FrameHeader.size + metaLength + payload.count
    var (trailerKey, value) = (trailerKey, value)
    trailerKey.withUTF8 { key in
      value.withUTF8 { value in
        _ = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { raw in
          var writer = RawWriter(raw.baseAddress!)
          writer.header(
            type: .end, flags: .endStream, callID: callID, metaLength: metaLength, payloadLength: payload.count)
          writer.byte(4 << 3 | 2)  // trailers, a map entry
          writer.varint(
            UInt64(MetaEncoder.lengthDelimitedSize(key.count) + MetaEncoder.lengthDelimitedSize(value.count)))
          writer.byte(1 << 3 | 2)
          writer.varint(UInt64(key.count))
          writer.bytes(UnsafeRawBufferPointer(key))
          writer.byte(2 << 3 | 2)
          writer.varint(UInt64(value.count))
          writer.bytes(UnsafeRawBufferPointer(value))
          writer.bytes(payload)
          return size
        }
      }
    }
  }

  /// Appends a CALL (with END_STREAM): header, the encoded `CallMeta`, the request.
  public static func writeCall(
    callID: UInt32, meta: ByteBuffer, request: UnsafeRawBufferPointer, into buffer: inout ByteBuffer
  ) {
    let size = FrameHeader.size + meta.readableBytes + request.count
    meta.withUnsafeReadableBytes { meta in
      _ = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { raw in
        var writer = RawWriter(raw.baseAddress!)
        writer.header(
          type: .call, flags: .endStream, callID: callID, metaLength: meta.count, payloadLength: request.count)
        writer.bytes(meta)
        writer.bytes(request)
        return size
      }
    }
  }
}

/// Raw stores at a cursor; the caller has reserved the room.
private struct RawWriter {
  private var pointer: UnsafeMutableRawPointer

  init(_ pointer: UnsafeMutableRawPointer) {
    self.pointer = pointer
  }

  mutating func header(type: FrameType, flags: FrameFlags, callID: UInt32, metaLength: Int, payloadLength: Int) {
    precondition(metaLength <= Int(UInt16.max), "meta longer than a u16")
    pointer.storeBytes(of: UInt32(FrameHeader.countedBytes + metaLength + payloadLength).bigEndian, as: UInt32.self)
    pointer.storeBytes(of: type.rawValue, toByteOffset: 4, as: UInt8.self)
    pointer.storeBytes(of: flags.rawValue, toByteOffset: 5, as: UInt8.self)
    pointer.storeBytes(of: UInt16(metaLength).bigEndian, toByteOffset: 6, as: UInt16.self)
    pointer.storeBytes(of: callID.bigEndian, toByteOffset: 8, as: UInt32.self)
    pointer += FrameHeader.size
  }

  mutating func byte(_ value: UInt8) {
    pointer.storeBytes(of: value, as: UInt8.self)
    pointer += 1
  }

  mutating func varint(_ value: UInt64) {
    var rest = value
    while rest >= 0x80 {
      byte(UInt8(truncatingIfNeeded: rest) | 0x80)
      rest >>= 7
    }
    byte(UInt8(rest))
  }

  mutating func bytes(_ bytes: UnsafeRawBufferPointer) {
    guard let base = bytes.baseAddress, bytes.count > 0 else { return }
    pointer.copyMemory(from: base, byteCount: bytes.count)
    pointer += bytes.count
  }
}
