import NIOCore

/// A bounded frame decoder: takes whole frames off the front of a receive buffer.
///
/// Limits are checked from the header alone, before the frame's bytes are waited
/// for, so an oversized length is refused without buffering it. Decoded frames are
/// slices of the buffer: no payload byte is copied.
public struct FrameDecoder: Sendable {
  /// The largest meta_len + payload length accepted.
  public var maxFrameSize: Int
  /// The largest meta_len accepted.
  public var maxMetaSize: Int

  /// A decoder with these limits (defaults: 4 MiB frames, 16 KiB meta).
  public init(maxFrameSize: Int = 4 << 20, maxMetaSize: Int = 16 << 10) {
    self.maxFrameSize = maxFrameSize
    self.maxMetaSize = maxMetaSize
  }

  /// Takes the next whole frame off `buffer`, or returns nil (consuming nothing) when
  /// the buffer holds only part of one.
  ///
  /// - Throws: `WireError` when what is there is already known to be oversized or
  ///   malformed; the buffer is then not to be used again.
  public func next(from buffer: inout ByteBuffer) throws(WireError) -> Frame? {
    guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) else {
      return nil
    }
    guard length >= FrameHeader.countedBytes else {
      throw WireError(.malformed, "frame length \(length) is shorter than the 8 header bytes it counts")
    }
    let bodySize = Int(length) - FrameHeader.countedBytes
    guard bodySize <= maxFrameSize else {
      throw WireError(.tooLarge, "frame of \(bodySize) bytes is over the limit of \(maxFrameSize)")
    }
    guard
      let (_, rawType, rawFlags, metaLength, callID) = buffer.getMultipleIntegers(
        at: buffer.readerIndex,
        as: (UInt32, UInt8, UInt8, UInt16, UInt32).self
      )
    else { return nil }
    let type = try Self.validate(
      rawType: rawType,
      rawFlags: rawFlags,
      metaLength: Int(metaLength),
      bodySize: bodySize,
      callID: callID
    )
    guard Int(metaLength) <= maxMetaSize else {
      throw WireError(.tooLarge, "meta of \(metaLength) bytes is over the limit of \(maxMetaSize)")
    }
    guard buffer.readableBytes >= FrameHeader.size + bodySize else { return nil }

    buffer.moveReaderIndex(forwardBy: FrameHeader.size)
    let meta = buffer.readSlice(length: Int(metaLength))!
    let payload = buffer.readSlice(length: bodySize - Int(metaLength))!
    if type == .ping, payload.readableBytes != 8 {
      throw WireError(.malformed, "PING carries \(payload.readableBytes) payload bytes, not 8")
    }
    return Frame(
      type: type,
      flags: FrameFlags(rawValue: rawFlags),
      callID: callID,
      meta: meta,
      payload: payload
    )
  }

  private static func validate(
    rawType: UInt8,
    rawFlags: UInt8,
    metaLength: Int,
    bodySize: Int,
    callID: UInt32
  ) throws(WireError) -> FrameType {
    guard let type = FrameType(rawValue: rawType) else {
      throw WireError(.malformed, "unknown frame type \(rawType)")
    }
    let undefined = rawFlags & ~FrameFlags.defined.rawValue
    guard undefined == 0 else {
      throw WireError(.malformed, "\(type) frame sets reserved flag bits 0x\(String(undefined, radix: 16))")
    }
    guard metaLength <= bodySize else {
      throw WireError(.malformed, "\(type) frame's meta_len \(metaLength) runs past its end (\(bodySize) bytes)")
    }
    if type.isCallFrame, callID == 0 {
      throw WireError(.malformed, "\(type) frame on call id 0")
    }
    if !type.isCallFrame, callID != 0 {
      throw WireError(.malformed, "\(type) frame on call id \(callID); connection frames use 0")
    }
    switch type {
    case .cancel where bodySize != 0:
      throw WireError(.malformed, "CANCEL frame carries \(bodySize) bytes; it carries none")
    case .message where metaLength != 0, .ping where metaLength != 0:
      throw WireError(.malformed, "\(type) frame carries meta; it carries none")
    default:
      return type
    }
  }
}
