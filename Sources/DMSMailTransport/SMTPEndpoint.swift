import DMSDomain

/// Where and how a mail account's messages are sent: the server, the TLS it asks for,
/// the sign-in (MAIL-14 … MAIL-21, the encryption as docs/settings/MAIL.md says).
public struct SMTPEndpoint: Sendable, Hashable {
  /// How the connection is protected.
  public enum Security: Sendable, Hashable {
    /// Plain SMTP (encryption "none", chosen by the administrator).
    case none
    /// TLS from the first byte (SMTPS).
    case implicitTLS
    /// STARTTLS; `required`: a server that does not offer it is not sent to (and
    /// nothing is sent in plain text); otherwise it is used when offered.
    case startTLS(required: Bool)
  }

  /// How the sender signs in.
  public enum Credential: Sendable, Hashable {
    /// None: a relay that asks for none.
    case none
    /// AUTH PLAIN or LOGIN, whichever the server offers.
    case password(login: String, password: String)
    /// AUTH XOAUTH2 with an OAuth2 access token (MAIL-24).
    case bearer(login: String, token: String)
  }

  public var host: String
  public var port: Int
  public var security: Security
  public var credential: Credential
  /// PEM certificates to trust instead of the system's (an in-house server's CA); empty:
  /// the system's.
  public var trustedCertificates: String
  /// Seconds to connect (TCP and TLS), and for a whole message.
  public var connectTimeout: Double
  public var sendTimeout: Double

  public init(
    host: String, port: Int, security: Security, credential: Credential, trustedCertificates: String = "",
    connectTimeout: Double = 10, sendTimeout: Double = 60
  ) {
    self.host = host
    self.port = port
    self.security = security
    self.credential = credential
    self.trustedCertificates = trustedCertificates
    self.connectTimeout = connectTimeout
    self.sendTimeout = sendTimeout
  }

  /// The endpoint of the mail component's `account` (MAIL-20): automatic is implicit
  /// TLS on port 465, elsewhere STARTTLS when offered, required when it signs in (no
  /// secret goes out in plain text unless the administrator chose no encryption).
  public init(account: MailAccount, credential: Credential) {
    let security: Security =
      switch (account.transport, account.encryption) {
      case (.databaseProfile, _):
        // MAIL-19: SSL yes is TLS required (implicit on 465, STARTTLS elsewhere, as the
        // original's database mail does); no is plain SMTP.
        if !account.ssl { .none } else if account.port == 465 { .implicitTLS } else { .startTLS(required: true) }
      case (_, .none): .none
      case (_, .tls): .implicitTLS
      case (_, .startTLS): .startTLS(required: true)
      case (_, .automatic):
        if account.port == 465 {
          .implicitTLS
        } else {
          .startTLS(required: credential != .none)
        }
      }
    self.init(
      host: account.server, port: account.port, security: security, credential: credential,
      trustedCertificates: account.trustedCertificates)
  }

  /// The URL libcurl is given.
  var url: String {
    let scheme = security == .implicitTLS ? "smtps" : "smtp"
    let hostPart = host.contains(":") ? "[\(host)]" : host
    return "\(scheme)://\(hostPart):\(port)"
  }
}
