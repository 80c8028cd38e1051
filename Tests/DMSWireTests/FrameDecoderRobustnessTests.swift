import DMSWire
import NIOCore
import Testing

/// The decoder against arbitrary bytes: it returns frames, waits, or throws
/// `WireError`, and never crashes or reads past what it was given.
@Suite("Frame decoder robustness")
struct FrameDecoderRobustnessTests {
  /// A small deterministic generator (SplitMix64), so a failure can be replayed.
  struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
      state &+= 0x9E37_79B9_7F4A_7C15
      var z = state
      z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
      z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
      return z ^ (z >> 31)
    }
  }

  @Test("20,000 random buffers: frames, waiting or WireError, never a crash", arguments: [1, 2, 3, 4])
  func randomBytes(seed: UInt64) throws {
    var random = SplitMix64(state: seed)
    let decoder = FrameDecoder(maxFrameSize: 4096, maxMetaSize: 512)
    for _ in 0..<5_000 {
      var bytes = (0..<Int.random(in: 0...64, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
      // Bias towards plausible headers: small lengths and valid types.
      if bytes.count >= 12, Bool.random(using: &random) {
        bytes[0] = 0
        bytes[1] = 0
        bytes[4] = UInt8.random(in: 1...7, using: &random)
        bytes[5] &= 0x03
      }
      var buffer = ByteBuffer(bytes: bytes)
      do {
        while let frame = try decoder.next(from: &buffer) {
          #expect(frame.meta.readableBytes <= 512)
          #expect(frame.meta.readableBytes + frame.payload.readableBytes <= 4096)
        }
        #expect(buffer.readableBytes <= bytes.count)
      } catch {
        // WireError is the only error the decoder throws (typed throws).
      }
    }
  }
}
