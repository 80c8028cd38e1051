/// What a write does to one secret field. Secrets are write-only: a read tells only
/// whether one is set.
///
/// Printing, logging or dumping a change never shows the value: `set` prints as
/// `set(<redacted>)`.
public enum SecretChange: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible,
  CustomReflectable
{
  /// Leave the stored value as it is.
  case keep
  /// Store this value (encrypted at rest).
  case set(String)
  /// Remove the stored value.
  case clear

  public var description: String {
    switch self {
    case .keep: "keep"
    case .set: "set(<redacted>)"
    case .clear: "clear"
    }
  }

  public var debugDescription: String { description }

  public var customMirror: Mirror { Mirror(self, children: [], displayStyle: .enum) }
}
