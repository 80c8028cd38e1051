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
  @Test("mail.account format 1 (as released) still reads; format 2 adds the trusted certificates, its bytes pinned")
  func formats() throws {
    let expected = """
      {"accountName":"DMS","authentication":"oauth2","description":"opis \\"konta\\"",\
      "displayName":"DMS – powiadomienia","enabled":true,"encryption":"starttls","login":"dms@example.com",\
      "oauth":{"authority":"https:\\/\\/login.microsoftonline.com\\/common",\
      "clientID":"00000000-aaaa-bbbb-cccc-000000000000",\
      "scopes":"https:\\/\\/outlook.office.com\\/SMTP.Send offline_access"},"port":587,\
      "replyTo":"biuro@example.com","senderAddress":"dms@example.com","server":"smtp.office365.com",\
      "ssl":false,"transport":"component"}
      """
    #expect(try MailAccount.decodeStored(Data(expected.utf8), format: 1) == mailAccount)
    var withCertificates = mailAccount
    withCertificates.trustedCertificates = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    let expected2 =
      String(expected.dropLast())
      + ",\"trustedCertificates\":\"-----BEGIN CERTIFICATE-----\\nMIIB\\n-----END CERTIFICATE-----\\n\"}"
    #expect(MailAccount.storedFormat == 2)
    let stored = try MailAccount.encodeStored(withCertificates)
    #expect(String(decoding: stored, as: UTF8.self) == expected2)
    #expect(try MailAccount.decodeStored(stored, format: 2) == withCertificates)
    let unknown = Data(expected.replacingOccurrences(of: "\"starttls\"", with: "\"ssl3\"").utf8)
    #expect {
      _ = try MailAccount.decodeStored(unknown, format: 1)
    } throws: { error in
      (error as? StoreError).map { "\($0)".contains("mail.account") && "\($0)".contains("ssl3") } ?? false
    }
  }

  @Test("mail.profile format 1 (MAIL-5), its bytes pinned")
  func profileFormat() throws {
    let profile = MailProfile(company: "ACME", savedBy: "dms_dba")
    let expected = """
      {"description":"Notifications of the DMS for company ACME, sent with its mail account settings \
      (no attachments)","name":"DMS ACME","savedBy":"dms_dba"}
      """
    #expect(MailProfile.storedFormat == 1)
    #expect(String(decoding: try MailProfile.encodeStored(profile), as: UTF8.self) == expected)
    #expect(try MailProfile.decodeStored(Data(expected.utf8), format: 1) == profile)
    #expect(throws: StoreError.self) { _ = try MailProfile.decodeStored(Data(expected.utf8), format: 2) }
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

@Suite("Mail queue storage")
struct MailQueueStorageTests {
  static let mail = OutgoingMail(
    to: ["anna@acme.example"], bcc: ["archiwum@acme.example"], subject: "Faktura „FV/1”", text: "Treść",
    html: "<p>Treść</p>",
    attachments: [.init(fileName: "f.bin", contentType: "application/octet-stream", content: [0, 1, 2, 255])])

  @Test(
    "MAIL-2: a claimed message is the worker's until its lease ends, then claimed again with the same Message-ID (at least once); a late worker's outcome changes nothing",
    arguments: Backend.all)
  func leases(backend: Backend) async throws {
    let (store, _) = try await backend.make()
    let queue = store.mailQueue
    let (key, _) = try await store.create("Q", company("Q"))
    let queued = try await queue.enqueue(Self.mail, messageID: "m1@acme.example", for: key, by: tester)
    #expect(queued.state == .queued && queued.attempts == 0 && queued.attachmentNames == ["f.bin"])
    let t0 = Date().addingTimeInterval(1)
    #expect(try await queue.nextDueDate().map { $0 <= t0 } == true)
    let first = try await queue.claimDueMails(now: t0, lease: 60, limit: 10)
    try #require(first.count == 1)
    #expect(first[0].mail == Self.mail && first[0].queued.attempts == 1 && first[0].queued.state == .sending)
    #expect(first[0].queued.company == key)
    // Held: no one else claims it; due again when the lease ends.
    #expect(try await queue.claimDueMails(now: t0.addingTimeInterval(30), lease: 60, limit: 10).isEmpty)
    #expect(try await queue.nextDueDate().map { $0 > t0.addingTimeInterval(59) } == true)
    let second = try await queue.claimDueMails(now: t0.addingTimeInterval(61), lease: 60, limit: 10)
    try #require(second.count == 1)
    #expect(second[0].queued.attempts == 2 && second[0].lease != first[0].lease)
    #expect(second[0].queued.messageID == "m1@acme.example" && second[0].mail == Self.mail)
    // The first worker comes back late: its outcome is not recorded.
    try await queue.recordSent(first, at: t0, delete: true)
    try await queue.recordFailure(
      first[0], outcome: MailFailureOutcome(outcome: "permanent", replyCode: 550, message: "late"), at: t0, retryAt: nil
    )
    #expect(try await queue.queuedMails(of: key, states: [], afterID: 0, limit: 10).map(\.state) == [.sending])
    #expect(try await queue.workLog(of: key, beforeID: 0, limit: 10).isEmpty)
    try await queue.recordSent(second, at: t0.addingTimeInterval(62), delete: false)
    let sent = try await queue.queuedMails(of: key, states: [.sent], afterID: 0, limit: 10)
    #expect(sent.map(\.id) == [queued.id] && sent[0].sentAt != nil)
    #expect(try await queue.nextDueDate() == nil)
  }

  @Test(
    "MAIL-3: a failure is logged and queued again or failed; only a failed message is retried; a deleted company takes its queue with it",
    arguments: Backend.all)
  func failures(backend: Backend) async throws {
    let (store, _) = try await backend.make()
    let queue = store.mailQueue
    let (key, _) = try await store.create("Q", company("Q"))
    let (other, _) = try await store.create("R", company("R"))
    let queued = try await queue.enqueue(Self.mail, messageID: "m1@acme.example", for: key, by: tester)
    _ = try await queue.enqueue(Self.mail, messageID: "m2@acme.example", for: other, by: tester)
    let now = Date().addingTimeInterval(1)
    let claims = try await queue.claimDueMails(now: now, lease: 60, limit: 10)
    #expect(Set(claims.map(\.queued.company.code)) == ["Q", "R"])
    let mine = try #require(claims.first { $0.queued.company == key })
    try await queue.recordFailure(
      mine, outcome: MailFailureOutcome(outcome: "transient", replyCode: 451, message: "451 4.3.0 later"), at: now,
      retryAt: now.addingTimeInterval(30))
    var listed = try await queue.queuedMails(of: key, states: [], afterID: 0, limit: 10)
    #expect(listed.map(\.state) == [.queued] && listed[0].lastError == "451 4.3.0 later")
    await #expect(throws: StoreError.self) { _ = try await queue.retryMail(queued.id, of: key, by: tester) }
    let again = try #require(try await queue.claimDueMails(now: now.addingTimeInterval(31), lease: 60, limit: 10).first)
    try await queue.recordFailure(
      again, outcome: MailFailureOutcome(outcome: "permanent", replyCode: 550, message: "550 5.1.1 unknown"),
      at: now.addingTimeInterval(31), retryAt: nil)
    listed = try await queue.queuedMails(of: key, states: [.failed], afterID: 0, limit: 10)
    #expect(listed.map(\.attempts) == [2])
    let log = try await queue.workLog(of: key, beforeID: 0, limit: 10)
    #expect(log.map(\.outcome.replyCode) == [550, 451] && log.allSatisfy { $0.mailID == queued.id })
    // Another company's message is not found from this one.
    let theirs = try await queue.queuedMails(of: other, states: [], afterID: 0, limit: 10)
    await #expect(throws: StoreError.self) { _ = try await queue.retryMail(theirs[0].id, of: key, by: tester) }
    await #expect(throws: StoreError.self) { try await queue.deleteMail(theirs[0].id, of: key, by: tester) }
    let retried = try await queue.retryMail(queued.id, of: key, by: tester)
    #expect(retried.state == .queued && retried.attempts == 0)
    // ERP-19: the company's queue goes with it, attachments and work log too.
    try await store.delete(key)
    guard let database = store as? DatabaseStore else { return }
    #expect(try await database.inspectCount(#"SELECT count(*) FROM "ProcessMails""#) == 1)
    #expect(try await database.inspectCount(#"SELECT count(*) FROM "ProcessMailsAttachment""#) == 1)
    #expect(try await database.inspectCount(#"SELECT count(*) FROM "DF_WorkLogEntries""#) == 0)
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
