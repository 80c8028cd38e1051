import DMSWire
import NIOCore
import Testing

@Suite("Preface")
struct PrefaceTests {
  @Test("the preface is DMSRPC then a big-endian u16 version")
  func bytes() {
    #expect(Preface.bytes() == [0x44, 0x4D, 0x53, 0x52, 0x50, 0x43, 0x00, 0x01])
  }

  @Test(
    "first bytes are classified",
    arguments: [
      ([UInt8](), Preface.Detection.incomplete),
      (Array("DMS".utf8), .incomplete),
      (Array("DMSRPC".utf8) + [0], .incomplete),
      (Preface.bytes(), .preface(version: 1)),
      (Preface.bytes(version: 2), .preface(version: 2)),
      (Array("GET / HTTP/1.1\r\n".utf8), .http),
      (Array("POST /x".utf8), .http),
      (Array("PUT /x".utf8), .http),
      (Array("HEAD /".utf8), .http),
      (Array("PRI * HTTP/2.0".utf8), .http),
      (Array("GE".utf8), .incomplete),
      ([0x16, 0x03, 0x01, 0x00, 0xA5], .tls),
      (Array("hello there".utf8), .garbage),
      (Array("DMSRPX\0\u{1}".utf8), .garbage),
    ]
  )
  func detect(bytes: [UInt8], expected: Preface.Detection) {
    #expect(Preface.detect(ByteBuffer(bytes: bytes)) == expected)
  }
}
