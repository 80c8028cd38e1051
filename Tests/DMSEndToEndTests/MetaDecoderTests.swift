import DMSMessages
import DMSRPC
import DMSWire
import Foundation
import NIOCore
import SwiftProtobuf
import Testing

/// The server's hand-written CallMeta decoder agrees with swift-protobuf.
@Suite("CallMeta decoding")
struct MetaDecoderTests {
  @Test("random CallMeta values decode as swift-protobuf encodes them")
  func agreesWithSwiftProtobuf() throws {
    var random = SystemRandomNumberGenerator()
    let alphabet = Array("abcXYZ019/-._ żółć€😀")
    func text(_ maxLength: Int) -> String {
      String((0..<Int.random(in: 0...maxLength, using: &random)).map { _ in alphabet.randomElement(using: &random)! })
    }
    for _ in 0..<2_000 {
      var meta = Dms_Rpc_V1_CallMeta()
      meta.method = text(40)
      meta.timeoutMs = Bool.random(using: &random) ? UInt32.random(in: 0...UInt32.max, using: &random) : 0
      for _ in 0..<Int.random(in: 0...4, using: &random) { meta.metadata[text(12)] = text(30) }
      let bytes: [UInt8] = try meta.serializedBytes()
      let decoded = try MetaDecoder.callMeta(ByteBuffer(bytes: bytes))
      #expect(decoded == CallMetaFields(method: meta.method, timeoutMs: meta.timeoutMs, metadata: meta.metadata))
    }
  }

  @Test("the per-connection cache answers as a fresh decode does, for repeats, changes and long meta")
  func cacheAgreesWithDecoder() throws {
    var metas: [[UInt8]] = []
    for index in 0..<4 {
      var meta = Dms_Rpc_V1_CallMeta()
      meta.method = "/a.B/M\(index % 2)"
      meta.metadata["user-agent"] = "test/1"
      if index == 2 { meta.timeoutMs = 250 }
      if index == 3 { meta.metadata["long"] = String(repeating: "x", count: CallMetaCache<String>.maxCachedSize) }
      metas.append(try meta.serializedBytes())
    }
    var cache = CallMetaCache<String>()
    var random = SystemRandomNumberGenerator()
    for _ in 0..<500 {
      let bytes = metas.randomElement(using: &random)!
      let buffer = ByteBuffer(bytes: bytes)
      let fields = try cache.decode(buffer)
      #expect(try fields == MetaDecoder.callMeta(buffer))
      // What was resolved for a meta comes back only for that meta, never another's.
      if let resolved = cache.resolved { #expect(resolved == fields.method) }
      cache.resolved = fields.method
    }
    #expect(throws: MetaDecoder.Malformed.self) { _ = try cache.decode(ByteBuffer(bytes: [0x0A, 0x05, 0x61])) }
    #expect(cache.resolved == nil)
  }

  @Test("unknown fields of every wire type are skipped")
  func unknownFields() throws {
    var meta = Dms_Rpc_V1_CallMeta()
    meta.method = "/a.B/C"
    var bytes: [UInt8] = try meta.serializedBytes()
    bytes += [0x48, 0x96, 0x01]  // field 9, varint
    bytes += [0x52, 0x02, 0x61, 0x62]  // field 10, bytes
    bytes += [0x5D, 1, 2, 3, 4]  // field 11, fixed32
    bytes += [0x61, 1, 2, 3, 4, 5, 6, 7, 8]  // field 12, fixed64
    #expect(try MetaDecoder.callMeta(ByteBuffer(bytes: bytes)).method == "/a.B/C")
    #expect(try Dms_Rpc_V1_CallMeta(serializedBytes: bytes).method == "/a.B/C")
  }

  @Test(
    "malformed meta is refused, as swift-protobuf refuses it",
    arguments: [
      [0x0A, 0x05, 0x61],  // string runs past the end
      [0x0A, 0x02, 0xC3, 0x28],  // invalid UTF-8
      [0x10],  // truncated varint
      [0x0F, 0x01],  // wire type 7
      [0x1A, 0x03, 0x0A, 0x05, 0x61],  // map entry runs past its end
    ] as [[UInt8]])
  func malformed(bytes: [UInt8]) {
    #expect(throws: MetaDecoder.Malformed.self) { _ = try MetaDecoder.callMeta(ByteBuffer(bytes: bytes)) }
    #expect(throws: (any Error).self) { _ = try Dms_Rpc_V1_CallMeta(serializedBytes: bytes) }
  }

  @Test("a Status's code reads as swift-protobuf decodes it, negative codes included")
  func statusCode() throws {
    var random = SystemRandomNumberGenerator()
    for _ in 0..<2_000 {
      var status = Dms_Rpc_V1_Status()
      status.code = Bool.random(using: &random) ? Int32.random(in: .min ... .max, using: &random) : 0
      status.message = String(repeating: "ż", count: Int.random(in: 0...20, using: &random))
      for index in 0..<Int.random(in: 0...3, using: &random) {
        var violation = Dms_Rpc_V1_FieldViolation()
        violation.field = "f\(index)"
        violation.rule = "R-\(index)"
        status.violations.append(violation)
      }
      status.trailers["request-id"] = "r-\(Int.random(in: 0...1_000_000, using: &random))"
      let bytes: [UInt8] = try status.serializedBytes()
      #expect(try MetaDecoder.statusCode(ByteBuffer(bytes: bytes)) == status.code)
    }
  }

  @Test("a Status's unknown fields of every wire type are skipped, as swift-protobuf skips them")
  func statusUnknownFields() throws {
    let bytes: [UInt8] = [
      0x29, 1, 2, 3, 4, 5, 6, 7, 8,  // field 5, fixed64
      0x08, 0x07,  // code 7
      0x35, 1, 2, 3, 4,  // field 6, fixed32
      0x38, 0x96, 0x01,  // field 7, varint
      0x42, 0x02, 0x61, 0x62,  // field 8, length-delimited
    ]
    #expect(try Dms_Rpc_V1_Status(serializedBytes: bytes).code == 7)
    #expect(try MetaDecoder.statusCode(ByteBuffer(bytes: bytes)) == 7)
    for truncated in [[0x29, 1, 2], [0x35, 1], [0x42, 0x05, 0x61]] as [[UInt8]] {
      #expect(throws: MetaDecoder.Malformed.self) { _ = try MetaDecoder.statusCode(ByteBuffer(bytes: truncated)) }
      #expect(throws: (any Error).self) { _ = try Dms_Rpc_V1_Status(serializedBytes: truncated) }
    }
  }

  @Test(
    "a malformed Status is refused",
    arguments: [
      [0x08],  // truncated varint
      [0x0A, 0x01],  // code with the wrong wire type
      [0x12, 0x05, 0x61],  // message runs past the end
      [0x22, 0x7F],  // trailer entry runs past the end
      [0x07],  // field 0
    ] as [[UInt8]])
  func malformedStatus(bytes: [UInt8]) {
    #expect(throws: MetaDecoder.Malformed.self) { _ = try MetaDecoder.statusCode(ByteBuffer(bytes: bytes)) }
  }

  @Test("wireBytes() is byte for byte serializedBytes(), empty messages included")
  func wireBytes() throws {
    #expect(try Dms_Rpc_V1_HealthCheckRequest().wireBytes() == [])
    var random = SystemRandomNumberGenerator()
    for _ in 0..<200 {
      var status = Dms_Rpc_V1_Status()
      status.code = Int32.random(in: -5...16, using: &random)
      status.message = String(repeating: "ą", count: Int.random(in: 0...300, using: &random))
      status.trailers["request-id"] = "r-\(UInt64.random(in: 0...UInt64.max, using: &random))"
      let expected: [UInt8] = try status.serializedBytes()
      #expect(try status.wireBytes() == expected)
      let encoding = try status.wireEncoding()
      #expect(encoding.count == expected.count)
      #expect(encoding.withUnsafeBytes { Array($0) } == expected)
    }
    // Either side of the inline capacity: held inline up to it, in an array past it.
    for size in [0, 1, WireBytes.inlineCapacity - 1, WireBytes.inlineCapacity, WireBytes.inlineCapacity + 1] {
      let bytes = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 1) }
      let value = Google_Protobuf_BytesValue(Data(bytes))
      let expected: [UInt8] = try value.serializedBytes()
      #expect(try value.wireEncoding().array == expected)
      #expect(WireBytes(bytes).array == bytes)
      #expect(WireBytes(bytes).count == size)
    }
  }
}
