import Foundation

/// An audit row as read back.
public struct AuditRecord: Sendable, Hashable {
  /// The row's place in the audit: increases with every row.
  public var id: Int64
  /// The company's code; nil for the shared section and the server.
  public var company: String?
  /// When.
  public var at: Date
  /// What: `create`, `update`, `delete`, `reveal`, `company.create`, `company.delete`.
  public var action: String
  /// The settings area.
  public var area: String
  /// The secret revealed, or the secret fields a write changed (names only).
  public var field: String
  /// The document's revision after the change.
  public var revision: Int64
  /// The reason given for a reveal.
  public var detail: String
  /// The operator (login) or API system the change was made to; empty for settings.
  public var subject: String = ""
  /// Who.
  public var actor: AuditActor
}
