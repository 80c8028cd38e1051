import DMSMessages
import DMSRPC
import DMSWire
import NIOCore
import SwiftProtobuf
import Testing

/// Inputs scripts/fuzz found (`.build-fuzz/crashes/`), kept as tests: each once failed
/// the check named.
@Suite("Fuzz regressions")
struct FuzzRegressionTests {
  /// The meta-decoders target: our CallMeta decoder is never looser than
  /// swift-protobuf's, agrees with it where both accept, and reads what its encoder
  /// writes.
  static func sameCallMeta(_ bytes: [UInt8]) {
    let ours = try? MetaDecoder.callMeta(ByteBuffer(bytes: bytes))
    let reference = try? Dms_Rpc_V1_CallMeta(serializedBytes: bytes)
    if ours != nil { #expect(reference != nil, "ours accepted what swift-protobuf refuses") }
    if let ours, let reference {
      #expect(ours.method == reference.method)
      #expect(ours.timeoutMs == reference.timeoutMs)
      #expect(ours.metadata == reference.metadata)
    }
    if var reference {
      reference.unknownFields = UnknownStorage()
      let canonical: [UInt8] = try! reference.serializedBytes()
      let again = try? MetaDecoder.callMeta(ByteBuffer(bytes: canonical))
      #expect(again?.method == reference.method)
      #expect(again?.metadata == reference.metadata)
    }
  }

  /// The meta-decoders target: our Status-code reader agrees with swift-protobuf where
  /// both read a code (it checks the other fields' framing only, so it may take what
  /// swift-protobuf refuses).
  static func sameStatusCode(_ bytes: [UInt8]) {
    let code = try? MetaDecoder.statusCode(ByteBuffer(bytes: bytes))
    let status = try? Dms_Rpc_V1_Status(serializedBytes: bytes)
    if let code, let status { #expect(code == status.code) }
    if var status {
      status.unknownFields = UnknownStorage()
      let canonical: [UInt8] = try! status.serializedBytes()
      #expect((try? MetaDecoder.statusCode(ByteBuffer(bytes: canonical))) == status.code)
    }
  }

  @Test("meta-decoders: a Status read as a CallMeta (field 1 as a varint)")
  func statusAsCallMeta() {
    Self.sameCallMeta([
      0x08, 0x05, 0x12, 0x09, 0x6e, 0x6f, 0x74, 0x20, 0x66, 0x6f, 0x75, 0x6e, 0x64, 0x22, 0x14, 0x0a, 0x0a, 0x72,
      0x65, 0x71, 0x75, 0x65, 0x73, 0x74, 0x2d, 0x69, 0x64, 0x12, 0x06, 0x73, 0x65, 0x65, 0x64, 0x2d, 0x31,
    ])
  }

  @Test("meta-decoders: a tag whose field number is past 2^29 - 1 is malformed")
  func fieldNumberTooLarge() {
    Self.sameCallMeta([
      0x08, 0x73, 0x82, 0xd2, 0x96, 0x9b, 0x91, 0x90, 0x66, 0x91, 0x00, 0x00, 0x55, 0xcb, 0x8e, 0x29, 0x6a, 0x90,
      0x6e, 0xff, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    ])
  }

  @Test("meta-decoders: a CallMeta read as a Status (its code field length-delimited)")
  func callMetaAsStatus() {
    let bytes: [UInt8] = [
      0x0a, 0x18, 0x2f, 0x64, 0x6d, 0x73, 0x2e, 0x72, 0x70, 0x63, 0x2e, 0x0a, 0x0a, 0x72, 0xff, 0x79, 0xec, 0x65,
      0x71, 0x2d, 0x66, 0x77, 0x7a, 0x7a, 0x43, 0x68, 0x65, 0x65, 0x6b, 0x75, 0x65, 0x73, 0x74, 0x2d, 0x64, 0x69,
      0x12, 0x12, 0x08, 0xff, 0x30,
    ]
    Self.sameStatusCode(bytes)
    Self.sameCallMeta(bytes)
  }

  @Test("meta-decoders: a metadata entry holding an unterminated group")
  func entryWithGroup() {
    Self.sameCallMeta([
      0x1a, 0x18, 0x2d, 0x66, 0x35, 0x7a, 0x8f, 0x65, 0x14, 0x62, 0x0a, 0x71, 0x68, 0x68, 0x13, 0x68, 0x68, 0x68,
      0x68, 0x68, 0x68, 0x68, 0x68, 0x68, 0x8c, 0x68, 0x68, 0x68, 0x68, 0x61,
    ])
  }

  @Test("meta-decoders: a Status whose violations do not decode: only the code is read")
  func statusViolationsNotDecoded() {
    Self.sameStatusCode([
      0x1a, 0x18, 0x2d, 0x66, 0x75, 0x7a, 0x7a, 0x65, 0x14, 0x62, 0x6d, 0x6d, 0x6d, 0x6d, 0x71, 0x1a, 0x0a, 0x75,
      0x65, 0x95, 0x95, 0x95, 0x95, 0xf4, 0x03, 0x61,
    ])
  }

  @Test("meta-decoders: a metadata entry whose value is a varint")
  func entryValueVarint() {
    Self.sameCallMeta([
      0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1a, 0x10, 0x10, 0xf1, 0x10, 0xf0, 0x46, 0xef,
      0xef, 0xef, 0xef, 0xef, 0xe7, 0x10, 0x10, 0x10, 0x10, 0x0a, 0x18, 0x10, 0x10, 0x0a, 0x18, 0x27, 0x72, 0x00,
    ])
  }

  @Test("meta-decoders: a tag of 6 bytes (zero-padded) is malformed; a map field sent as a varint is unknown")
  func longTag() {
    Self.sameCallMeta([0x18, 0x2c])
    Self.sameCallMeta([0x08, 0x8c, 0x7b, 0xfa, 0xed, 0xff, 0xfb, 0x80, 0x00, 0x00, 0xa0, 0xa0, 0x00, 0x00, 0x18, 0x00])
  }
}
