import DMSDomain
import Foundation

extension MailAccount: SettingsDocument {
  public static let area = "mail.account"
  public static let storedFormat = 2

  public static func encodeStored(_ value: MailAccount) throws -> Data {
    try StoredJSON.encode(MailAccountRecordV2(value))
  }

  public static func decodeStored(_ data: Data, format: Int) throws -> MailAccount {
    switch format {
    case 1: return try StoredJSON.decode(MailAccountRecordV1.self, data, area: area, format: format).account()
    case 2: return try StoredJSON.decode(MailAccountRecordV2.self, data, area: area, format: format).account()
    default: throw StoreError.unreadable(area: area, format: format, reason: "this release reads formats 1 and 2")
    }
  }
}

/// `mail.account`, format 2: format 1's fields and the trusted certificates (MAIL-20).
/// Never change it: add `MailAccountRecordV3` and upgrade from this.
struct MailAccountRecordV2: Codable {
  var transport: String
  var enabled: Bool
  var accountName: String
  var senderAddress: String
  var displayName: String
  var replyTo: String
  var description: String
  var server: String
  var port: Int
  var login: String
  var ssl: Bool
  var encryption: String
  var authentication: String
  var oauth: MailAccountRecordV1.OAuth?
  var trustedCertificates: String

  init(_ account: MailAccount) {
    let v1 = MailAccountRecordV1(account)
    transport = v1.transport
    enabled = v1.enabled
    accountName = v1.accountName
    senderAddress = v1.senderAddress
    displayName = v1.displayName
    replyTo = v1.replyTo
    description = v1.description
    server = v1.server
    port = v1.port
    login = v1.login
    ssl = v1.ssl
    encryption = v1.encryption
    authentication = v1.authentication
    oauth = v1.oauth
    trustedCertificates = account.trustedCertificates
  }

  func account() throws -> MailAccount {
    var account = try MailAccountRecordV1(
      transport: transport, enabled: enabled, accountName: accountName, senderAddress: senderAddress,
      displayName: displayName, replyTo: replyTo, description: description, server: server, port: port, login: login,
      ssl: ssl, encryption: encryption, authentication: authentication, oauth: oauth
    ).account()
    account.trustedCertificates = trustedCertificates
    return account
  }
}

/// `mail.account`, format 1. Never change it: add `MailAccountRecordV2` and upgrade from
/// this.
struct MailAccountRecordV1: Codable {
  struct OAuth: Codable {
    var authority: String
    var clientID: String
    var scopes: String
  }

  var transport: String
  var enabled: Bool
  var accountName: String
  var senderAddress: String
  var displayName: String
  var replyTo: String
  var description: String
  var server: String
  var port: Int
  var login: String
  var ssl: Bool
  var encryption: String
  var authentication: String
  var oauth: OAuth?

  init(
    transport: String, enabled: Bool, accountName: String, senderAddress: String, displayName: String,
    replyTo: String, description: String, server: String, port: Int, login: String, ssl: Bool, encryption: String,
    authentication: String, oauth: OAuth?
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
  }

  init(_ account: MailAccount) {
    transport = account.transport.rawValue
    enabled = account.enabled
    accountName = account.accountName
    senderAddress = account.senderAddress
    displayName = account.displayName
    replyTo = account.replyTo
    description = account.description
    server = account.server
    port = account.port
    login = account.login
    ssl = account.ssl
    encryption = account.encryption.rawValue
    authentication = account.authentication.rawValue
    oauth = account.oauth.map { OAuth(authority: $0.authority, clientID: $0.clientID, scopes: $0.scopes) }
  }

  func account() throws -> MailAccount {
    let area = MailAccount.area
    return MailAccount(
      transport: try StoredJSON.value(
        MailAccount.Transport.self, transport, field: "transport", area: area, format: 1),
      enabled: enabled, accountName: accountName, senderAddress: senderAddress, displayName: displayName,
      replyTo: replyTo, description: description, server: server, port: port, login: login, ssl: ssl,
      encryption: try StoredJSON.value(
        MailAccount.Encryption.self, encryption, field: "encryption", area: area, format: 1),
      authentication: try StoredJSON.value(
        MailAccount.Authentication.self, authentication, field: "authentication", area: area, format: 1),
      oauth: oauth.map { MailAccount.OAuth(authority: $0.authority, clientID: $0.clientID, scopes: $0.scopes) })
  }
}
