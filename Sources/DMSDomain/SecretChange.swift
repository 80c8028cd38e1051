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

  /// Whether this change leaves a secret as it is: keeping it, or clearing one that is
  /// not set. Setting a value always counts as a change (the value is never compared).
  public func leavesUnchanged(isSet: Bool) -> Bool {
    switch self {
    case .keep: true
    case .clear: !isSet
    case .set: false
    }
  }

  public var customMirror: Mirror { Mirror(self, children: [], displayStyle: .enum) }
}
