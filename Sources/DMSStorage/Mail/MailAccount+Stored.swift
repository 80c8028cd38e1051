import DMSDomain
import Foundation

extension MailAccount: SettingsDocument {
  public static let area = "mail.account"
  public static let storedFormat = 1

  public static func encodeStored(_ value: MailAccount) throws -> Data {
    try StoredJSON.encode(MailAccountRecordV1(value))
  }

  public static func decodeStored(_ data: Data, format: Int) throws -> MailAccount {
    switch format {
    case 1: return try StoredJSON.decode(MailAccountRecordV1.self, data, area: area, format: format).account()
    default: throw StoreError.unreadable(area: area, format: format, reason: "this release reads format 1")
    }
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
