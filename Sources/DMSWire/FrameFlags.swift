/// The flags of a frame: byte 5 of its header.
public struct FrameFlags: OptionSet, Sendable, Hashable {
  public let rawValue: UInt8
  public init(rawValue: UInt8) { self.rawValue = rawValue }

  /// The sender sends nothing more on this call (a CALL of a unary or
  /// server-streaming call carries it).
  public static let endStream = FrameFlags(rawValue: 0x01)
  /// An answer: a PING echoed, a SETTINGS acknowledged.
  public static let ack = FrameFlags(rawValue: 0x02)

  /// The bits defined in version 1; any other bit set makes a frame malformed.
  public static let defined: FrameFlags = [.endStream, .ack]
}
