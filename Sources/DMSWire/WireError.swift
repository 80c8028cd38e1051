/// A malformed or oversized frame: the connection that sent it is closed with GOAWAY.
public struct WireError: Error, Hashable, Sendable, CustomStringConvertible {
  /// What is wrong with the frame.
  public struct Kind: Hashable, Sendable {
    fileprivate enum Base: Hashable { case tooLarge, malformed }
    fileprivate let base: Base

    /// The frame (or its meta) is over the receiver's limit: RESOURCE_EXHAUSTED.
    public static let tooLarge = Kind(base: .tooLarge)
    /// The frame breaks the format: INVALID_ARGUMENT.
    public static let malformed = Kind(base: .malformed)
  }

  /// Oversized or malformed.
  public let kind: Kind
  /// The fault, for the GOAWAY reason and the log, such as "unknown frame type 9".
  public let message: String

  /// An error of `kind`.
  public init(_ kind: Kind, _ message: String) {
    self.kind = kind
    self.message = message
  }

  public var description: String { message }
}
