/// A provider's settings an administrator starts an account from (PRESET-1 … PRESET-3,
/// and Microsoft 365 with OAuth2).
public struct MailPreset: Sendable, Hashable {
  /// What the mailbox login is, made from the sender address.
  public enum Login: String, Sendable {
    /// The mailbox name without the domain (`jan` for jan@wp.pl).
    case localPart = "local_part"
    /// The full address.
    case fullAddress = "full_address"
  }

  /// How the preset is named in calls (`wp`, `onet`, `gmail`, `microsoft365`).
  public let id: String
  public let name: String
  public let server: String
  public let port: Int
  public let encryption: MailAccount.Encryption
  public let authentication: MailAccount.Authentication
  public let login: Login
  /// What the administrator must still know (an app password, a client id).
  public let note: String

  /// PRESET-1.
  public static let wp = MailPreset(
    id: "wp", name: "WP", server: "smtp.wp.pl", port: 587, encryption: .automatic, authentication: .password,
    login: .localPart, note: "The login is the mailbox name without the domain (PRESET-1).")
  /// PRESET-2.
  public static let onet = MailPreset(
    id: "onet", name: "Onet", server: "smtp.poczta.onet.pl", port: 465, encryption: .automatic,
    authentication: .password, login: .fullAddress, note: "The login is the full address (PRESET-2).")
  /// PRESET-3: Google without OAuth2 (MAIL-21).
  public static let gmail = MailPreset(
    id: "gmail", name: "Gmail", server: "smtp.gmail.com", port: 465, encryption: .automatic,
    authentication: .password, login: .fullAddress,
    note:
      "The login is the full address; the password is a 16-character app password generated in the Google account "
      + "(2-step verification on). OAuth2 is not supported for Google accounts (PRESET-3, MAIL-21).")
  /// Microsoft 365 with OAuth2 (MAIL-4, MAIL-21 … MAIL-24).
  public static let microsoft365 = MailPreset(
    id: "microsoft365", name: "Microsoft 365", server: "smtp.office365.com", port: 587, encryption: .startTLS,
    authentication: .oauth2, login: .fullAddress,
    note:
      "Sign in with OAuth2 after saving: set the application (client) id registered in the organisation's "
      + "Microsoft Entra ID, with the SMTP.Send permission (MAIL-22).")

  /// Every preset, in the order they are listed.
  public static let all = [wp, onet, gmail, microsoft365]

  /// The preset `id` names (ignoring case).
  public static func named(_ id: String) -> MailPreset? {
    all.first { $0.id == id.lowercased() }
  }

  /// A draft of `account` on this provider, for the mailbox `address` (MAIL-9): the
  /// mail component's transport, the server, port, encryption and authentication, and
  /// the login made from the address; the rest as it was. Not validated: the
  /// administrator completes it and saves it.
  public func draft(from account: MailAccount, address: String) -> MailAccount {
    var draft = account
    let address = String(address.trimmingWhitespace())
    draft.transport = .component
    draft.ssl = false
    draft.senderAddress = address
    draft.server = server
    draft.port = port
    draft.encryption = encryption
    draft.authentication = authentication
    draft.oauth = authentication == .oauth2 ? (account.oauth ?? MailAccount.OAuth()) : nil
    switch login {
    case .fullAddress: draft.login = address
    case .localPart: draft.login = address.lastIndex(of: "@").map { String(address[..<$0]) } ?? address
    }
    return draft
  }
}
