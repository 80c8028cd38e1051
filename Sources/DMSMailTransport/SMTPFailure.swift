/// A message that could not be sent, and whether trying again may help.
public struct SMTPFailure: Error, Sendable, Hashable, CustomStringConvertible {
  /// Whether another attempt may succeed.
  public enum Kind: String, Sendable {
    /// A refused or dropped connection, a time-out, a 4xx reply: try again later.
    case transient
    /// A 5xx reply, a certificate that does not verify, a bad address: trying again
    /// sends nothing more.
    case permanent
  }

  public var kind: Kind
  /// The SMTP reply code (0: none, the failure was below SMTP).
  public var replyCode: Int
  /// The server's reply text when there was one, else what failed; never a secret.
  public var message: String

  public init(kind: Kind, replyCode: Int, message: String) {
    self.kind = kind
    self.replyCode = replyCode
    self.message = message
  }

  public var description: String { message }
}
