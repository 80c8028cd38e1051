/// Why a store operation failed.
public struct StoreError: Error, Hashable, Sendable, CustomStringConvertible {
  /// What kind of failure.
  public struct Kind: Hashable, Sendable, CustomStringConvertible {
    fileprivate enum Base: String, Hashable {
      case notFound, alreadyExists, staleRevision, secretUnreadable, unavailable, busy, full, corrupt, unreadable
      case outOfRange, fellBehind, inUse
    }
    fileprivate let base: Base

    /// The company or document does not exist.
    public static let notFound = Kind(base: .notFound)
    /// A uniqueness rule is broken (`field` and `rule` say which).
    public static let alreadyExists = Kind(base: .alreadyExists)
    /// The write named a revision that is not the stored one.
    public static let staleRevision = Kind(base: .staleRevision)
    /// A secret does not decrypt (wrong master key, or a ciphertext moved).
    public static let secretUnreadable = Kind(base: .secretUnreadable)
    /// The database cannot be used (I/O error, cannot open, read-only).
    public static let unavailable = Kind(base: .unavailable)
    /// Another process held the database past the configured wait (SQLITE_BUSY, SQLITE_LOCKED).
    public static let busy = Kind(base: .busy)
    /// The disk (or the database's size limit) is full.
    public static let full = Kind(base: .full)
    /// The database file is damaged; the server stops reporting SERVING.
    public static let corrupt = Kind(base: .corrupt)
    /// A stored document cannot be read in its recorded format.
    public static let unreadable = Kind(base: .unreadable)
    /// A change-feed position the feed does not hold (ahead of it, or pruned).
    public static let outOfRange = Kind(base: .outOfRange)
    /// The record is still referred to (an API system that is an operator's
    /// cooperating system): change those first.
    public static let inUse = Kind(base: .inUse)
    /// A change-feed subscriber fell too far behind and was ended; resume from its last position.
    public static let fellBehind = Kind(base: .fellBehind)

    public var description: String { base.rawValue }
  }

  /// What kind of failure.
  public let kind: Kind
  /// What happened; names no secret.
  public let message: String
  /// For `.staleRevision`: the stored revision.
  public let currentRevision: Int64?
  /// For `.alreadyExists`: the field whose value is taken, and its rule (`short_name`, `ERP-3`).
  public let field: String?
  /// The rule behind `field`.
  public let rule: String?

  /// An error.
  public init(_ kind: Kind, _ message: String, currentRevision: Int64? = nil, field: String? = nil, rule: String? = nil)
  {
    self.kind = kind
    self.message = message
    self.currentRevision = currentRevision
    self.field = field
    self.rule = rule
  }

  public var description: String { message }

  /// A document that cannot be read in its recorded format.
  static func unreadable(area: String, format: Int, reason: String) -> StoreError {
    StoreError(.unreadable, "a stored \(area) document (format \(format)) cannot be read: \(reason)")
  }
}
