/// The mail account notifications are sent from (MAIL-1, MAIL-7 … MAIL-21): one per
/// company in multi-company mode, one in single-company mode.
///
/// The password and the OAuth2 tokens are not part of this value: they are stored
/// encrypted, apart, and named by `MailAccount.Secret`. The server type (MAIL-13) is
/// SMTP, fixed: it has no field.
public struct MailAccount: Sendable, Hashable {
  /// The account's secret fields.
  public enum Secret: String, Sendable, CaseIterable {
    /// MAIL-17: the mailbox password (login-and-password authentication only).
    case password
    /// MAIL-24: the OAuth2 access token, and the refresh token that renews it.
    case oauthAccessToken = "oauth.access_token"
    case oauthRefreshToken = "oauth.refresh_token"
    /// MAIL-22: a sign-in begun and not finished: its state, PKCE verifier, redirect URI
    /// and end, until the code comes back (another instance may take it).
    case oauthPending = "oauth.pending"
  }

  /// MAIL-1: how messages leave the system.
  public enum Transport: String, Sendable, CaseIterable {
    /// The mail component (the default): messages are queued and a worker sends them
    /// (MAIL-2); attachments, the encryption methods and OAuth2 are its own.
    case component
    /// The database's own mail profile (the original's SQL Server profile, MAIL-5 and
    /// MAIL-6): no attachments; SSL yes or no.
    case databaseProfile = "database_profile"
  }

  /// MAIL-20: the mail component's encryption method.
  public enum Encryption: String, Sendable, CaseIterable {
    /// Plain SMTP (the original's default).
    case none
    /// Implicit TLS on port 465, STARTTLS on any other port when the server offers it
    /// (docs/MAIL.md says what happens when it does not).
    case automatic
    /// Implicit TLS from the first byte (SMTPS, usually port 465).
    case tls
    /// STARTTLS, required: a server that does not offer it is not sent to.
    case startTLS = "starttls"
  }

  /// MAIL-21: how the mail component signs in.
  public enum Authentication: String, Sendable, CaseIterable {
    /// A login and a password (MAIL-16, MAIL-17), or none for a relay that asks for none.
    case password
    /// OAuth2 for Microsoft 365 (MAIL-22 … MAIL-24); not for Google (MAIL-21).
    case oauth2
  }

  /// Where the mail component gets its OAuth2 tokens (MAIL-22 … MAIL-24).
  public struct OAuth: Sendable, Hashable {
    /// The identity provider's authority: its authorization and token endpoints are
    /// `<authority>/oauth2/v2.0/authorize` and `…/token` (Microsoft's layout).
    public var authority: String
    /// The application (client) id registered with the provider.
    public var clientID: String
    /// The scopes asked for, separated by spaces.
    public var scopes: String

    /// Microsoft 365's: every tenant's sign-in, SMTP sending and a refresh token.
    public static let microsoftAuthority = "https://login.microsoftonline.com/common"
    public static let microsoftScopes = "https://outlook.office.com/SMTP.Send offline_access"

    /// OAuth2 settings; the authority and scopes default to Microsoft 365's.
    public init(authority: String = microsoftAuthority, clientID: String = "", scopes: String = microsoftScopes) {
      self.authority = authority
      self.clientID = clientID
      self.scopes = scopes
    }
  }

  /// MAIL-1.
  public var transport: Transport
  /// MAIL-7: sending is on.
  public var enabled: Bool
  /// MAIL-8: the account's name on the mail server, e.g. "DMS".
  public var accountName: String
  /// MAIL-9: the sender address.
  public var senderAddress: String
  /// MAIL-10: the sender name recipients see (TPL-3).
  public var displayName: String
  /// MAIL-11: the reply-to address, optional.
  public var replyTo: String
  /// MAIL-12.
  public var description: String
  /// MAIL-14: the SMTP server's host name or address.
  public var server: String
  /// MAIL-15: 1–65535; 0 while the account is not filled in.
  public var port: Int
  /// MAIL-16: the mailbox login.
  public var login: String
  /// MAIL-19: SSL yes or no (database profile only).
  public var ssl: Bool
  /// MAIL-20 (mail component only).
  public var encryption: Encryption
  /// MAIL-21 (mail component only).
  public var authentication: Authentication
  /// MAIL-22 … MAIL-24: with OAuth2 only.
  public var oauth: OAuth?
  /// MAIL-20: PEM certificates to trust for the server's TLS instead of the system's
  /// (an in-house server's CA); empty: the system's. With an encryption method (the
  /// database profile: with SSL) only.
  public var trustedCertificates: String

  /// An account; by default the mail component's, off and empty.
  public init(
    transport: Transport = .component, enabled: Bool = false, accountName: String = "", senderAddress: String = "",
    displayName: String = "", replyTo: String = "", description: String = "", server: String = "", port: Int = 0,
    login: String = "", ssl: Bool = false, encryption: Encryption = .none, authentication: Authentication = .password,
    oauth: OAuth? = nil, trustedCertificates: String = ""
  ) {
    self.transport = transport
    self.enabled = enabled
    self.accountName = accountName
    self.senderAddress = senderAddress
    self.displayName = displayName
    self.replyTo = replyTo
    self.description = description
    self.server = server
    self.port = port
    self.login = login
    self.ssl = ssl
    self.encryption = encryption
    self.authentication = authentication
    self.oauth = oauth
    self.trustedCertificates = trustedCertificates
  }

  /// The longest description (MAIL-12).
  public static let maxDescriptionLength = 1024

  /// Checks MAIL-4, MAIL-7 … MAIL-21; the account with its texts trimmed. `password`
  /// is what the save does to the password (MAIL-17); `passwordSet`, whether one is
  /// stored now.
  public func validated(password: SecretChange, passwordSet: Bool) throws(ValidationFailure) -> MailAccount {
    var v = Validator()
    var account = self
    for keyPath in [\MailAccount.accountName, \.senderAddress, \.displayName, \.replyTo, \.server, \.login] {
      account[keyPath: keyPath] = String(account[keyPath: keyPath].trimmingWhitespace())
    }
    account.validateTexts(into: &v)
    account.validateTransport(into: &v)
    account.validateSignIn(password: password, passwordSet: passwordSet, into: &v)
    try v.check()
    return account
  }

  private func validateTexts(into v: inout Validator) {
    if enabled {
      // MAIL-7: an account that sends must say from where, through what.
      v.requireText(accountName, "account_name", "MAIL-8")
      v.requireText(senderAddress, "sender_address", "MAIL-9", maxLength: EmailAddress.maxLength)
      v.requireText(server, "server", "MAIL-14")
      v.require(port != 0, "port", "MAIL-15", "is required when sending is on (MAIL-7)")
    } else {
      v.limit(accountName, "account_name")
    }
    if !senderAddress.isEmpty {
      v.require(
        EmailAddress.isValid(senderAddress), "sender_address", "MAIL-9",
        "is not an e-mail address (RFC 5322 addr-spec, e.g. dms@example.com)")
    }
    if !replyTo.isEmpty {
      v.require(
        EmailAddress.isValid(replyTo), "reply_to", "MAIL-11",
        "is not an e-mail address (RFC 5322 addr-spec, e.g. office@example.com)")
    }
    v.limit(displayName, "display_name")
    v.require(
      !displayName.contains(where: { $0.isNewline }), "display_name", "MAIL-10",
      "must be one line: it becomes the From header's name")
    v.limit(description, "description", maxLength: Self.maxDescriptionLength)
    if !server.isEmpty {
      v.require(
        Self.isHostName(server), "server", "MAIL-14",
        "must be a host name or an IP address, without a scheme or a port (e.g. smtp.example.com)")
    }
    v.require(
      (0...65535).contains(port), "port", "MAIL-15", "must be between 1 and 65535 (e.g. 587, or 465 for TLS)")
    v.limit(login, "login")
  }

  private func validateTransport(into v: inout Validator) {
    switch transport {
    case .component:
      v.require(
        !ssl, "ssl", "MAIL-19", "is only for the database profile; the mail component uses encryption (MAIL-20)")
      if !trustedCertificates.isEmpty {
        v.require(
          encryption != .none, "trusted_certificates", "MAIL-20",
          "are for TLS: choose an encryption method (automatic, TLS or STARTTLS)")
        validateCertificates(into: &v)
      }
    case .databaseProfile:
      if !trustedCertificates.isEmpty {
        v.require(ssl, "trusted_certificates", "MAIL-19", "are for SSL: set ssl, or leave them out")
        validateCertificates(into: &v)
      }
      v.require(
        encryption == .none, "encryption", "MAIL-20",
        "is only for the mail component; the database profile uses ssl (MAIL-19)")
      v.require(
        authentication == .password, "authentication", "MAIL-4",
        "OAuth2 (Microsoft 365) works only with the mail component")
    }
  }

  private func validateCertificates(into v: inout Validator) {
    v.require(
      trustedCertificates.utf8.count <= TextLimits.pem
        && trustedCertificates.contains("-----BEGIN CERTIFICATE-----")
        && trustedCertificates.contains("-----END CERTIFICATE-----"),
      "trusted_certificates", "MAIL-20",
      "must be PEM certificates (-----BEGIN CERTIFICATE----- …), at most \(TextLimits.pem) bytes")
  }

  private func validateSignIn(password: SecretChange, passwordSet: Bool, into v: inout Validator) {
    let passwordAfter: Bool =
      switch password {
      case .keep: passwordSet
      case .set: true
      case .clear: false
      }
    if case .set(let plaintext) = password {
      v.require(!plaintext.isEmpty, "password", "MAIL-17", "must not be empty (clear it instead)")
      v.require(
        plaintext.count <= TextLimits.secret, "password", "MAIL-17",
        "must be at most \(TextLimits.secret) characters")
    }
    switch authentication {
    case .password:
      v.require(
        oauth == nil, "oauth", "MAIL-22", "is only for OAuth2 authentication (MAIL-21)")
      if passwordAfter { v.requireText(login, "login", "MAIL-16") }
    case .oauth2:
      if case .set = password {
        v.add("password", "MAIL-17", "is only for login-and-password authentication, not OAuth2 (MAIL-21)")
      }
      if Self.isGoogle(server) {
        v.add(
          "authentication", "MAIL-21",
          "OAuth2 is not supported for Google accounts: use login and password with an app password (PRESET-3)")
      }
      // MAIL-22: the mailbox the tokens are for.
      v.requireText(login, "login", "MAIL-16")
      guard let oauth else {
        v.add("oauth", "MAIL-22", "is required with OAuth2: the authority and the application's client id")
        return
      }
      v.require(
        oauth.authority.hasPrefix("https://") && !oauth.authority.contains(where: \.isWhitespace)
          && oauth.authority.count > "https://".count,
        "oauth.authority", "MAIL-22", "must be an https:// URL (e.g. \(OAuth.microsoftAuthority))")
      v.requireText(oauth.clientID, "oauth.client_id", "MAIL-22")
      v.requireText(oauth.scopes, "oauth.scopes", "MAIL-22", maxLength: 1024)
    }
  }

  /// Whether `text` is a host name (letters, digits and hyphens in dot-separated
  /// labels, at most 253 characters) or an IPv4 or bracketless IPv6 address.
  public static func isHostName(_ text: String) -> Bool {
    guard !text.isEmpty, text.count <= 253, text.allSatisfy(\.isASCII) else { return false }
    if text.contains(":") {
      // IPv6: hex digits, colons, and a dotted IPv4 tail.
      return text.allSatisfy { $0.isHexDigit || $0 == ":" || $0 == "." } && text.filter { $0 == ":" }.count >= 2
    }
    return EmailAddress.isDomainName(text)
  }

  /// Whether `server` is Google's (MAIL-21: no OAuth2 there).
  static func isGoogle(_ server: String) -> Bool {
    let host = server.lowercased()
    return ["gmail.com", "googlemail.com", "google.com"].contains { host == $0 || host.hasSuffix("." + $0) }
  }
}
