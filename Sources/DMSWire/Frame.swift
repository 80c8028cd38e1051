import NIOCore

/// One decoded frame: its header fields, its meta and its payload.
///
/// `meta` and `payload` are slices of the receive buffer: decoding copies no bytes.
public struct Frame: Sendable, Equatable {
  /// The frame's type.
  public var type: FrameType
  /// The frame's flags.
  public var flags: FrameFlags
  /// The call this frame belongs to; 0 for connection frames.
  public var callID: UInt32
  /// The serialized meta message (may be empty).
  public var meta: ByteBuffer
  /// The payload (may be empty).
  public var payload: ByteBuffer

  /// A frame.
  public init(
    type: FrameType,
    flags: FrameFlags = [],
    callID: UInt32,
    meta: ByteBuffer = ByteBuffer(),
    payload: ByteBuffer = ByteBuffer()
  ) {
    self.type = type
    self.flags = flags
    self.callID = callID
    self.meta = meta
    self.payload = payload
  }

  /// Appends this frame, header first, to `buffer`.
  public func write(into buffer: inout ByteBuffer) {
    FrameHeader.write(
      type: type,
      flags: flags,
      callID: callID,
      metaLength: meta.readableBytes,
      payloadLength: payload.readableBytes,
      into: &buffer
    )
    buffer.writeImmutableBuffer(meta)
    buffer.writeImmutableBuffer(payload)
  }
}
