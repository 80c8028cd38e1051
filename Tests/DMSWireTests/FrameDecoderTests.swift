import DMSWire
import NIOCore
import Testing

@Suite("Frame codec")
struct FrameDecoderTests {
  let decoder = FrameDecoder(maxFrameSize: 1024, maxMetaSize: 64)

  static func frame(_ type: FrameType) -> Frame {
    switch type {
    case .call:
      Frame(
        type: .call, flags: .endStream, callID: 7, meta: ByteBuffer(bytes: [1, 2]),
        payload: ByteBuffer(bytes: [3, 4, 5]))
    case .message: Frame(type: .message, callID: 7, payload: ByteBuffer(bytes: [9, 9]))
    case .end:
      Frame(type: .end, flags: .endStream, callID: 7, meta: ByteBuffer(bytes: [8]), payload: ByteBuffer(bytes: [1]))
    case .cancel: Frame(type: .cancel, callID: 7)
    case .ping: Frame(type: .ping, flags: .ack, callID: 0, payload: ByteBuffer(bytes: [1, 2, 3, 4, 5, 6, 7, 8]))
    case .goAway: Frame(type: .goAway, callID: 0, meta: ByteBuffer(bytes: [8, 1]))
    case .settings: Frame(type: .settings, callID: 0, meta: ByteBuffer(bytes: [8, 128, 1]))
    }
  }

  @Test("every frame type round-trips", arguments: FrameType.allCases)
  func roundTrip(type: FrameType) throws {
    let original = Self.frame(type)
    var buffer = ByteBuffer()
    original.write(into: &buffer)
    #expect(buffer.readableBytes == FrameHeader.size + original.meta.readableBytes + original.payload.readableBytes)
    let decoded = try decoder.next(from: &buffer)
    #expect(decoded == original)
    #expect(buffer.readableBytes == 0)
  }

  @Test("the header is laid out as the protocol says")
  func headerLayout() {
    var buffer = ByteBuffer()
    FrameHeader.write(
      type: .end, flags: .endStream, callID: 0x0102_0304, metaLength: 2, payloadLength: 3, into: &buffer)
    #expect(Array(buffer.readableBytesView) == [0, 0, 0, 13, 3, 1, 0, 2, 1, 2, 3, 4])
  }

  /// Raw header bytes: length, type, flags, meta_len, call id.
  static func header(length: UInt32, type: UInt8, flags: UInt8 = 0, metaLength: UInt16 = 0, callID: UInt32)
    -> ByteBuffer
  {
    var buffer = ByteBuffer()
    buffer.writeMultipleIntegers(length, type, flags, metaLength, callID)
    return buffer
  }

  struct Malformed: CustomTestStringConvertible, Sendable {
    let name: String
    let bytes: [UInt8]
    let tooLarge: Bool
    var testDescription: String { name }

    init(_ name: String, _ buffer: ByteBuffer, body: Int = 0, tooLarge: Bool = false) {
      self.name = name
      self.bytes = Array(buffer.readableBytesView) + [UInt8](repeating: 0, count: body)
      self.tooLarge = tooLarge
    }
  }

  static let malformed: [Malformed] = [
    Malformed("length shorter than the header", header(length: 7, type: 1, callID: 1)),
    Malformed("unknown type 0", header(length: 8, type: 0, callID: 1)),
    Malformed("unknown type 8", header(length: 8, type: 8, callID: 1)),
    Malformed("reserved flag bit", header(length: 8, type: 1, flags: 0x04, callID: 1)),
    Malformed("meta_len past the end", header(length: 10, type: 1, metaLength: 3, callID: 1), body: 2),
    Malformed("CALL on call id 0", header(length: 8, type: 1, callID: 0)),
    Malformed("MESSAGE on call id 0", header(length: 8, type: 2, callID: 0)),
    Malformed("END on call id 0", header(length: 8, type: 3, callID: 0)),
    Malformed("CANCEL on call id 0", header(length: 8, type: 4, callID: 0)),
    Malformed("PING on a call id", header(length: 16, type: 5, callID: 3), body: 8),
    Malformed("GOAWAY on a call id", header(length: 8, type: 6, callID: 3)),
    Malformed("SETTINGS on a call id", header(length: 8, type: 7, callID: 3)),
    Malformed("CANCEL with a payload", header(length: 9, type: 4, callID: 3), body: 1),
    Malformed("PING with 4 bytes", header(length: 12, type: 5, callID: 0), body: 4),
    Malformed("MESSAGE with meta", header(length: 10, type: 2, metaLength: 2, callID: 3), body: 2),
    Malformed("frame over the limit", header(length: 8 + 1025, type: 1, callID: 1), tooLarge: true),
    Malformed("meta over the limit", header(length: 8 + 65, type: 1, metaLength: 65, callID: 1), tooLarge: true),
  ]

  @Test("malformed frames are refused", arguments: malformed)
  func refusesMalformed(_ testCase: Malformed) {
    var buffer = ByteBuffer(bytes: testCase.bytes)
    #expect {
      _ = try decoder.next(from: &buffer)
    } throws: { error in
      guard let error = error as? WireError else { return false }
      return error.kind == (testCase.tooLarge ? .tooLarge : .malformed)
    }
  }

  @Test("an oversized length is refused from its first 4 bytes, before any body arrives")
  func oversizedWithoutBuffering() {
    var buffer = ByteBuffer(bytes: [0x7F, 0xFF, 0xFF, 0xFF])
    #expect(throws: WireError.self) { _ = try decoder.next(from: &buffer) }
  }

  @Test("a frame split into single bytes decodes once whole")
  func splitReads() throws {
    var whole = ByteBuffer()
    Self.frame(.call).write(into: &whole)
    let bytes = Array(whole.readableBytesView)
    var buffer = ByteBuffer()
    for (index, byte) in bytes.enumerated() {
      buffer.writeInteger(byte)
      let frame = try decoder.next(from: &buffer)
      if index < bytes.count - 1 {
        #expect(frame == nil)
        #expect(buffer.readerIndex == 0, "an incomplete frame consumes nothing")
      } else {
        #expect(frame == Self.frame(.call))
      }
    }
  }

  @Test("coalesced frames in one read decode one by one")
  func coalescedReads() throws {
    var buffer = ByteBuffer()
    for type in FrameType.allCases { Self.frame(type).write(into: &buffer) }
    var frames: [Frame] = []
    while let frame = try decoder.next(from: &buffer) { frames.append(frame) }
    #expect(frames == FrameType.allCases.map(Self.frame))
  }

  @Test("meta and payload are slices of the receive buffer, not copies")
  func zeroCopySlices() throws {
    var buffer = ByteBuffer()
    Self.frame(.call).write(into: &buffer)
    let frame = try #require(try decoder.next(from: &buffer))
    let base = buffer.withUnsafeReadableBytes { $0.baseAddress! } - buffer.readerIndex
    let payloadAddress = frame.payload.withUnsafeReadableBytes { $0.baseAddress! }
    #expect(payloadAddress == base + FrameHeader.size + 2)
  }
}
