/// MAIL-5, MAIL-6: a company's database profile (the original's SQL Server mail
/// profile). A database administrator creates it by saving the account with the database
/// profile transport, and deletes it with the account; the server sends through it with
/// the account's settings, without attachments, TLS by the account's SSL (MAIL-19).
///
/// Its name and description are the server's, read-only (MAIL-5); the value records who
/// saved it.
public struct MailProfile: Sendable, Hashable {
  /// MAIL-5: the profile's name.
  public var name: String
  /// MAIL-5: what the profile is for.
  public var description: String
  /// The database administrator's login that saved it last (MAIL-6).
  public var savedBy: String

  public init(name: String, description: String, savedBy: String) {
    self.name = name
    self.description = description
    self.savedBy = savedBy
  }

  /// The profile of the company `code` as the server names it (MAIL-5).
  public init(company code: String, savedBy: String = "") {
    self.init(name: Self.name(company: code), description: Self.description(company: code), savedBy: savedBy)
  }

  /// MAIL-5: `DMS <code>`, one per company.
  public static func name(company code: String) -> String { "DMS \(code)" }

  /// MAIL-5: the fixed description.
  public static func description(company code: String) -> String {
    "Notifications of the DMS for company \(code), sent with its mail account settings (no attachments)"
  }
}
