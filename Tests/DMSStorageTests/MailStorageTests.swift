import DMSDomain
import DMSStorage
import Foundation
import Testing

/// An account with every field set.
private let mailAccount = MailAccount(
  enabled: true, accountName: "DMS", senderAddress: "dms@example.com", displayName: "DMS – powiadomienia",
  replyTo: "biuro@example.com", description: "opis \"konta\"", server: "smtp.office365.com", port: 587,
  login: "dms@example.com", encryption: .startTLS, authentication: .oauth2,
  oauth: MailAccount.OAuth(clientID: "00000000-aaaa-bbbb-cccc-000000000000"))

@Suite("Mail account storage")
struct MailStorageTests {
  @Test("mail.account format 1: the stored bytes stay as released, and read back")
  func format1() throws {
    let expected = """
      {"accountName":"DMS","authentication":"oauth2","description":"opis \\"konta\\"",\
      "displayName":"DMS – powiadomienia","enabled":true,"encryption":"starttls","login":"dms@example.com",\
      "oauth":{"authority":"https:\\/\\/login.microsoftonline.com\\/common",\
      "clientID":"00000000-aaaa-bbbb-cccc-000000000000",\
      "scopes":"https:\\/\\/outlook.office.com\\/SMTP.Send offline_access"},"port":587,\
      "replyTo":"biuro@example.com","senderAddress":"dms@example.com","server":"smtp.office365.com",\
      "ssl":false,"transport":"component"}
      """
    let stored = try MailAccount.encodeStored(mailAccount)
    #expect(String(decoding: stored, as: UTF8.self) == expected)
    #expect(try MailAccount.decodeStored(Data(expected.utf8), format: 1) == mailAccount)
    let unknown = Data(expected.replacingOccurrences(of: "\"starttls\"", with: "\"ssl3\"").utf8)
    #expect {
      _ = try MailAccount.decodeStored(unknown, format: 1)
    } throws: { error in
      (error as? StoreError).map { "\($0)".contains("mail.account") && "\($0)".contains("ssl3") } ?? false
    }
  }

  @Test(
    "a company's mail account with its password: stored, read, revealed and audited, on every backend",
    arguments: Backend.all)
  func roundTrip(backend: Backend) async throws {
    let (store, reopen) = try await backend.make()
    let (key, _) = try await store.create("MAIL", company("MAIL"))
    var account = mailAccount
    account.authentication = .password
    account.oauth = nil
    let field = MailAccount.Secret.password.rawValue
    let written = try await store.write(
      account, to: key, secrets: [field: .set("hasło aplikacji")], expectedRevision: 0)
    #expect(written.revision == 1 && written.secretsSet == [field])
    let reopened = try await reopen()
    let read = try #require(try await reopened.read(MailAccount.self, of: key))
    #expect(read.value == account && read.revision == 1 && read.secretsSet == [field])
    #expect(try await reopened.reveal(MailAccount.self, field, of: key) == "hasło aplikacji")
    #expect(try await reopened.inspectSecretFree(key))
    let audit = try await reopened.registry.auditRecords(company: key, after: 0, limit: 10)
    #expect(
      audit.map { "\($0.action) \($0.area) \($0.field)" }.suffix(2) == [
        "create mail.account set password", "reveal mail.account password",
      ])
  }
}

extension SettingsStore {
  /// Whether no stored document of the company holds the password in plain text.
  fileprivate func inspectSecretFree(_ key: CompanyKey) async throws -> Bool {
    guard let database = self as? DatabaseStore else { return true }
    let bodies =
      try await database.inspectData("SELECT body FROM company_document")
      + database.inspectData("SELECT ciphertext FROM company_secret")
    return !bodies.contains { String(decoding: $0, as: UTF8.self).contains("hasło aplikacji") }
  }
}
