/// The kind of a frame: byte 4 of its header.
public enum FrameType: UInt8, Sendable, CaseIterable, CustomStringConvertible {
  /// Starts a call: meta `CallMeta`, payload the request.
  case call = 1
  /// One streamed response message: no meta.
  case message = 2
  /// Ends a call: meta `Status`, payload the unary response when OK.
  case end = 3
  /// Cancels a call: no meta, no payload.
  case cancel = 4
  /// A liveness probe: 8 opaque payload bytes, echoed with ACK.
  case ping = 5
  /// The sender stops: meta `GoAway`.
  case goAway = 6
  /// The server's limits: meta `Settings`.
  case settings = 7

  /// Whether frames of this type belong to a call (non-zero call id) rather than to
  /// the connection (call id 0).
  public var isCallFrame: Bool {
    switch self {
    case .call, .message, .end, .cancel: true
    case .ping, .goAway, .settings: false
    }
  }

  public var description: String {
    switch self {
    case .call: "CALL"
    case .message: "MESSAGE"
    case .end: "END"
    case .cancel: "CANCEL"
    case .ping: "PING"
    case .goAway: "GOAWAY"
    case .settings: "SETTINGS"
    }
  }
}
