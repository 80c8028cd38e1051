import DMSDomain
import DMSMessages
import DMSStorage

extension MailAccount {
  /// The account a request sends; an enumeration value this release does not know is
  /// recorded in `validator` (UNSPECIFIED reads as the default).
  init(message: Dms_Settings_V1_MailAccount, into validator: inout Validator) {
    let transport: Transport =
      switch message.transport {
      case .unspecified, .component: .component
      case .databaseProfile: .databaseProfile
      case .UNRECOGNIZED(let value):
        validator.unknown("account.transport", "MAIL-1", value, Transport.component)
      }
    let encryption: Encryption =
      switch message.encryption {
      case .unspecified, .none: .none
      case .automatic: .automatic
      case .tls: .tls
      case .starttls: .startTLS
      case .UNRECOGNIZED(let value):
        validator.unknown("account.encryption", "MAIL-20", value, Encryption.none)
      }
    let authentication: Authentication =
      switch message.authentication {
      case .unspecified, .password: .password
      case .oauth2: .oauth2
      case .UNRECOGNIZED(let value):
        validator.unknown("account.authentication", "MAIL-21", value, Authentication.password)
      }
    var oauth: OAuth?
    if message.hasOauth {
      let given = message.oauth
      oauth = OAuth(
        authority: given.authority.isEmpty ? OAuth.microsoftAuthority : given.authority, clientID: given.clientID,
        scopes: given.scopes.isEmpty ? OAuth.microsoftScopes : given.scopes)
    }
    self.init(
      transport: transport, enabled: message.enabled, accountName: message.accountName,
      senderAddress: message.senderAddress, displayName: message.displayName, replyTo: message.replyTo,
      description: message.description_p, server: message.server, port: Int(message.port), login: message.login,
      ssl: message.ssl, encryption: encryption, authentication: authentication, oauth: oauth,
      trustedCertificates: message.trustedCertificates)
  }

  /// The message of a stored account (nil: never saved, the defaults at revision 0) of
  /// the company `code`, with its database profile (MAIL-5).
  static func message(_ stored: Stored<MailAccount>?, company code: String, profile: MailProfile?)
    -> Dms_Settings_V1_MailAccount
  {
    let account = stored?.value ?? MailAccount()
    var message = Dms_Settings_V1_MailAccount()
    message.transport = account.transport.message
    message.enabled = account.enabled
    message.accountName = account.accountName
    message.senderAddress = account.senderAddress
    message.displayName = account.displayName
    message.replyTo = account.replyTo
    message.description_p = account.description
    message.serverType = "SMTP"
    message.server = account.server
    message.port = Int32(clamping: account.port)
    message.login = account.login
    message.ssl = account.ssl
    message.encryption = account.encryption.message
    message.authentication = account.authentication.message
    if let oauth = account.oauth {
      message.oauth.authority = oauth.authority
      message.oauth.clientID = oauth.clientID
      message.oauth.scopes = oauth.scopes
    }
    message.trustedCertificates = account.trustedCertificates
    let named = profile ?? MailProfile(company: code)
    message.profileName = named.name
    message.profileDescription = named.description
    message.profileExists = profile != nil
    if let stored {
      message.passwordSet = stored.secretsSet.contains(Secret.password.rawValue)
      message.signedIn = stored.secretsSet.contains(Secret.oauthRefreshToken.rawValue)
      message.revision = stored.revision
    }
    return message
  }
}

extension MailAccount.Transport {
  var message: Dms_Settings_V1_MailTransport {
    switch self {
    case .component: .component
    case .databaseProfile: .databaseProfile
    }
  }
}

extension MailAccount.Encryption {
  var message: Dms_Settings_V1_MailEncryption {
    switch self {
    case .none: .none
    case .automatic: .automatic
    case .tls: .tls
    case .startTLS: .starttls
    }
  }
}

extension MailAccount.Authentication {
  var message: Dms_Settings_V1_MailAuthentication {
    switch self {
    case .password: .password
    case .oauth2: .oauth2
    }
  }
}

extension MailPreset {
  var message: Dms_Settings_V1_MailPreset {
    var message = Dms_Settings_V1_MailPreset()
    message.id = id
    message.name = name
    message.server = server
    message.port = Int32(port)
    message.encryption = encryption.message
    message.authentication = authentication.message
    message.login = login.rawValue
    message.note = note
    return message
  }
}

extension Validator {
  /// Records an enumeration value this release does not know; `fallback`, to go on.
  fileprivate mutating func unknown<Value>(_ field: String, _ rule: String, _ value: Int, _ fallback: Value) -> Value {
    add(field, rule, "holds \(value), which this server does not know")
    return fallback
  }
}
