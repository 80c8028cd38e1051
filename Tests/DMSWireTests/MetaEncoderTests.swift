import DMSWire
import NIOCore
import Testing

@Suite("Meta encoding")
struct MetaEncoderTests {
  @Test("CallMeta is encoded as protobuf: the PROTOCOL.md worked example, byte for byte")
  func callMetaWorkedExample() {
    var buffer = ByteBuffer()
    MetaEncoder.writeCallMeta(method: "/dms.rpc.v1.Health/Check", timeoutMs: 0, metadata: [:], into: &buffer)
    #expect(Array(buffer.readableBytesView) == [0x0A, 0x18] + Array("/dms.rpc.v1.Health/Check".utf8))
    #expect(MetaEncoder.callMetaSize(method: "/dms.rpc.v1.Health/Check", timeoutMs: 0, metadata: [:]) == 26)
  }

  @Test("timeout and metadata: sizes match what is written", arguments: [0, 1, 127, 128, 300_000, UInt32.max])
  func sizes(timeout: UInt32) {
    let metadata = ["user-agent": "dmsctl/0.1.0", "company": "ACME", "long": String(repeating: "x", count: 300)]
    var buffer = ByteBuffer()
    MetaEncoder.writeCallMeta(method: "/a.B/C", timeoutMs: timeout, metadata: metadata, into: &buffer)
    #expect(buffer.readableBytes == MetaEncoder.callMetaSize(method: "/a.B/C", timeoutMs: timeout, metadata: metadata))
  }

  @Test("the extra entry (user agent) is written unless the metadata has its key")
  func extraEntry() {
    var with = ByteBuffer()
    let extra = (key: "user-agent", value: "x/1")
    MetaEncoder.writeCallMeta(method: "/a.B/C", timeoutMs: 0, metadata: [:], extra: extra, into: &with)
    #expect(with.readableBytes == MetaEncoder.callMetaSize(method: "/a.B/C", timeoutMs: 0, metadata: [:], extra: extra))
    var overridden = ByteBuffer()
    MetaEncoder.writeCallMeta(
      method: "/a.B/C", timeoutMs: 0, metadata: ["user-agent": "y/2"], extra: extra, into: &overridden)
    var plain = ByteBuffer()
    MetaEncoder.writeCallMeta(method: "/a.B/C", timeoutMs: 0, metadata: ["user-agent": "y/2"], into: &plain)
    #expect(overridden == plain)
    #expect(with.readableBytes == plain.readableBytes)
  }

  @Test("an OK Status is the request-id trailer alone")
  func okStatus() {
    var buffer = ByteBuffer()
    MetaEncoder.writeOKStatus(trailerKey: "request-id", value: "r-1", into: &buffer)
    #expect(
      Array(buffer.readableBytesView) == [0x22, 0x11, 0x0A, 0x0A] + Array("request-id".utf8) + [0x12, 0x03]
        + Array("r-1".utf8))
    #expect(MetaEncoder.okStatusSize(trailerKey: "request-id", value: "r-1") == buffer.readableBytes)
  }

  @Test(
    "FrameWriter's whole frames equal header, meta and payload written field by field",
    arguments: [0, 1, 130, 20_000])
  func wholeFrames(payloadSize: Int) {
    let payload = (0..<payloadSize).map { UInt8(truncatingIfNeeded: $0 &* 31) }
    for requestID in ["", "r-1", "żółć-" + String(repeating: "9", count: 200)] {
      var expected = ByteBuffer()
      FrameHeader.write(
        type: .end, flags: .endStream, callID: 0xDEAD_BEEF,
        metaLength: MetaEncoder.okStatusSize(trailerKey: "request-id", value: requestID), payloadLength: payload.count,
        into: &expected)
      MetaEncoder.writeOKStatus(trailerKey: "request-id", value: requestID, into: &expected)
      expected.writeBytes(payload)
      var written = ByteBuffer(bytes: [9, 9])  // after what is already there
      payload.withUnsafeBytes {
        FrameWriter.writeOKEnd(
          callID: 0xDEAD_BEEF, trailerKey: "request-id", value: requestID, payload: $0, into: &written)
      }
      #expect(written.readBytes(length: 2) == [9, 9])
      #expect(written == expected)
      #expect(
        FrameWriter.okEndSize(trailerKey: "request-id", value: requestID, payloadCount: payload.count)
          == expected.readableBytes)
    }
    var meta = ByteBuffer()
    MetaEncoder.writeCallMeta(method: "/a.B/C", timeoutMs: 300, metadata: ["k": "v"], into: &meta)
    var expected = ByteBuffer()
    FrameHeader.write(
      type: .call, flags: .endStream, callID: 7, metaLength: meta.readableBytes, payloadLength: payload.count,
      into: &expected)
    expected.writeImmutableBuffer(meta)
    expected.writeBytes(payload)
    var written = ByteBuffer()
    payload.withUnsafeBytes { FrameWriter.writeCall(callID: 7, meta: meta, request: $0, into: &written) }
    #expect(written == expected)
  }
}
