/// What a write does to one secret field. Secrets are write-only: a read tells only
/// whether one is set.
public enum SecretChange: Sendable, Hashable {
  /// Leave the stored value as it is.
  case keep
  /// Store this value (encrypted at rest).
  case set(String)
  /// Remove the stored value.
  case clear
}
