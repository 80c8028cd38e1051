/// Why a store operation failed.
public struct StoreError: Error, Hashable, Sendable, CustomStringConvertible {
  /// What kind of failure.
  public struct Kind: Hashable, Sendable {
    fileprivate enum Base: Hashable { case notFound, alreadyExists, staleRevision, secretUnreadable, unavailable }
    fileprivate let base: Base

    /// The company or document does not exist.
    public static let notFound = Kind(base: .notFound)
    /// A company with that code (ignoring case) exists.
    public static let alreadyExists = Kind(base: .alreadyExists)
    /// The write named a revision that is not the stored one.
    public static let staleRevision = Kind(base: .staleRevision)
    /// A secret does not decrypt (wrong master key, or a ciphertext moved).
    public static let secretUnreadable = Kind(base: .secretUnreadable)
    /// The database cannot be used.
    public static let unavailable = Kind(base: .unavailable)
  }

  /// What kind of failure.
  public let kind: Kind
  /// What happened; names no secret.
  public let message: String
  /// For `.staleRevision`: the stored revision.
  public let currentRevision: Int64?

  /// An error.
  public init(_ kind: Kind, _ message: String, currentRevision: Int64? = nil) {
    self.kind = kind
    self.message = message
    self.currentRevision = currentRevision
  }

  public var description: String { message }
}
