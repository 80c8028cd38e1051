import DMSClient
import DMSDomain
import DMSMessages
import DMSRPC
import DMSStorage
import DMSStubs
import Foundation
import Testing

/// The database profile (MAIL-1, MAIL-5, MAIL-6, MAIL-19) over the wire, on the backend the
/// run tests (`DMS_TEST_BACKEND`): on SQLite the test server's storage administrator is
/// checked (its scrypt hash), on PostgreSQL a real role of the test cluster, signed in as
/// with its password (scripts/postgres: scram-sha-256 for it).
@Suite("Mail database profile")
struct MailDatabaseProfileTests {
  static let acme = MailTests.acting(for: "ACME")

  static func administrator(_ login: String, _ password: String) -> Dms_Settings_V1_DatabaseAdministrator {
    var administrator = Dms_Settings_V1_DatabaseAdministrator()
    administrator.login = login
    administrator.password = password
    return administrator
  }

  /// The database administrator of the run's backend.
  static let dba = administrator(
    PostgresScratch.databaseAdministrator.login, PostgresScratch.databaseAdministrator.password)

  /// A profile account: SSL, a login and password.
  static func profileAccount() -> Dms_Settings_V1_MailAccount {
    var account = MailTests.account()
    account.transport = .databaseProfile
    account.encryption = .unspecified
    account.ssl = true
    return account
  }

  static func createACME(_ client: RPCClient) async throws {
    var create = Dms_Settings_V1_CreateCompanyRequest()
    create.company = companyMessage("ACME")
    _ = try await Dms_Settings_V1_Companies.Client(client).create(create)
  }

  static func delete(
    _ mail: Dms_Settings_V1_Mail.Client<RPCClient>, revision: Int64,
    _ administrator: Dms_Settings_V1_DatabaseAdministrator? = nil
  ) async throws {
    var request = Dms_Settings_V1_DeleteMailAccountRequest()
    request.revision = revision
    if let administrator { request.databaseAdministrator = administrator }
    _ = try await mail.deleteAccount(request, options: acme)
  }

  @Test(
    "MAIL-5, MAIL-6: the profile is saved and deleted only with the database administrator's login and password, checked for real; refused ones save nothing"
  )
  func savedAndDeleted() async throws {
    try await withTestServer { server async throws in
      let client = server.client()
      let mail = Dms_Settings_V1_Mail.Client(client)
      try await Self.createACME(client)
      // MAIL-5: the name and description are the server's, shown before the profile exists.
      let empty = try await mail.getAccount(options: Self.acme)
      #expect(empty.profileName == "DMS ACME" && empty.profileDescription.contains("ACME") && !empty.profileExists)

      var update = Dms_Settings_V1_UpdateMailAccountRequest()
      update.account = Self.profileAccount()
      update.password = secret("hasło")
      let missing = await rpcError { _ = try await mail.updateAccount(update, options: Self.acme) }
      #expect(missing?.code == .invalidArgument)
      #expect(rules(missing) == ["database_administrator.login:MAIL-6", "database_administrator.password:MAIL-6"])
      // The account's rules are named before the administrator is checked.
      update.account.encryption = .tls
      update.databaseAdministrator = Self.administrator(Self.dba.login, "not the password")
      #expect(
        rules(await rpcError { _ = try await mail.updateAccount(update, options: Self.acme) }) == [
          "account.encryption:MAIL-20"
        ])
      update.account.encryption = .unspecified
      // Wrong: a wrong password; a role that signs in but is no administrator (SQLite: not
      // the storage administrator's login); a login that does not exist.
      let wrongOnes = [
        Self.administrator(Self.dba.login, "not the password"),
        Self.administrator(PostgresScratch.clerk.login, PostgresScratch.clerk.password),
        Self.administrator("nobody_here", "whatever it is"),
      ]
      // Why, as the backend says it: PostgreSQL signs the role in, then asks its rights.
      let reasons =
        TestBackend.current == .postgres
        ? ["refused the sign-in", "not the database's administrator", "refused the sign-in"]
        : Array(repeating: "storage administrator's login or password is wrong", count: 3)
      for (wrong, reason) in zip(wrongOnes, reasons) {
        update.databaseAdministrator = wrong
        let refused = await rpcError { _ = try await mail.updateAccount(update, options: Self.acme) }
        #expect(refused?.code == .permissionDenied, "\(wrong.login)")
        #expect(refused?.message.contains(reason) == true, "\(refused?.message ?? "")")
        #expect(refused?.message.contains("MAIL-6") == true && refused?.message.contains(wrong.password) == false)
      }
      let unchanged = try await mail.getAccount(options: Self.acme)
      #expect(unchanged.revision == 0 && !unchanged.profileExists, "nothing saved")

      // Right: the account and the profile, in one change.
      update.databaseAdministrator = Self.dba
      let saved = try await mail.updateAccount(update, options: Self.acme)
      #expect(saved.revision == 1 && saved.transport == .databaseProfile && saved.ssl && saved.passwordSet)
      #expect(saved.profileExists && saved.profileName == "DMS ACME")
      #expect(try await mail.getAccount(options: Self.acme) == saved)
      let key = try #require(try await server.store.registry.company(code: "ACME"))
      let profile = try #require(try await server.store.read(MailProfile.self, of: key))
      #expect(profile.value.savedBy == Self.dba.login)
      let audit = try await server.store.registry.auditRecords(company: key, after: 0, limit: 100)
      #expect(audit.map { "\($0.action) \($0.area)" }.contains("create mail.profile"))

      // Every later save with the profile asks again; the mail component's takes none.
      update.account = saved
      update.account.displayName = "DMS"
      update.clearPassword()
      update.clearDatabaseAdministrator()
      #expect(rules(await rpcError { _ = try await mail.updateAccount(update, options: Self.acme) }).count == 2)
      update.account.transport = .component
      update.account.ssl = false
      update.databaseAdministrator = Self.dba
      #expect(
        rules(await rpcError { _ = try await mail.updateAccount(update, options: Self.acme) }) == [
          "database_administrator:MAIL-25"
        ])
      update.clearDatabaseAdministrator()
      let component = try await mail.updateAccount(update, options: Self.acme)
      #expect(component.revision == 2 && component.transport == .component)
      #expect(component.profileExists, "a switch to the component leaves the profile")

      // MAIL-6: deleting asks for the administrator too, while a profile exists.
      let noAdministrator = await rpcError { try await Self.delete(mail, revision: 2) }
      #expect(
        rules(noAdministrator) == ["database_administrator.login:MAIL-6", "database_administrator.password:MAIL-6"])
      let wrongDelete = await rpcError {
        try await Self.delete(mail, revision: 2, Self.administrator(Self.dba.login, "guess"))
      }
      #expect(wrongDelete?.code == .permissionDenied)
      let stale = await rpcError { try await Self.delete(mail, revision: 1, Self.dba) }
      #expect(stale?.code == .aborted)
      #expect(try await mail.getAccount(options: Self.acme).revision == 2, "still there")
      try await Self.delete(mail, revision: 2, Self.dba)
      let gone = try await mail.getAccount(options: Self.acme)
      #expect(gone.revision == 0 && !gone.profileExists && !gone.passwordSet && !gone.enabled)
      #expect(try await server.store.read(MailProfile.self, of: key) == nil)
      #expect(await rpcError { try await Self.delete(mail, revision: 0, Self.dba) }?.code == .notFound)

      // Without a profile, an account is deleted without the administrator (and not with one).
      update.account = MailTests.account()
      let plain = try await mail.updateAccount(update, options: Self.acme)
      #expect(
        rules(await rpcError { try await Self.delete(mail, revision: plain.revision, Self.dba) }) == [
          "database_administrator:MAIL-6"
        ])
      try await Self.delete(mail, revision: plain.revision)
      #expect(try await mail.getAccount(options: Self.acme).revision == 0)
      await client.close()
    }
  }

  @Test(
    "MAIL-2, MAIL-19: the profile sends queued and test messages, without attachments; SSL yes is TLS required, no is plain",
    .enabled(if: SMTPTestServer.available, "python3-aiosmtpd is not installed"))
  func sends() async throws {
    let tls = try await SMTPTestServer.start(mode: .starttls, user: "dms", password: "hasło")
    let plain = try await SMTPTestServer.start(mode: .plain)
    try await withTestServer { server async throws in
      let client = server.client()
      let mail = Dms_Settings_V1_Mail.Client(client)
      try await Self.createACME(client)
      var update = Dms_Settings_V1_UpdateMailAccountRequest()
      update.account = Self.profileAccount()
      update.account.server = "127.0.0.1"
      update.account.port = Int32(tls.port)
      update.account.login = "dms"
      update.account.trustedCertificates = tls.certificatePEM
      update.password = secret("hasło")
      update.databaseAdministrator = Self.dba
      let saved = try await mail.updateAccount(update, options: Self.acme)

      // MAIL-2: no attachments, refused when queued, naming the field.
      let withFile = await MailQueueTests.enqueueError(
        mail, MailQueueTests.outgoing("Z plikiem", attachment: [1, 2, 3]))
      #expect(withFile?.code == .invalidArgument && rules(withFile) == ["mail.attachments:MAIL-2"])
      _ = try await MailQueueTests.enqueue(mail, MailQueueTests.outgoing("Przez profil"))
      let received = try await tls.waitForMessages(1)
      try #require(received.count == 1)
      #expect(received[0].tls && received[0].login == "dms" && received[0].headers["Subject"] == "Przez profil")
      #expect(received[0].parts.map(\.contentType) == ["text/plain", "text/html"])
      let sent = try await MailQueueTests.waitFor(mail) { $0.first?.state == .sent }
      #expect(sent.map(\.state) == [.sent])

      // MAIL-26, MAIL-27: the test message, without attachments.
      var test = Dms_Settings_V1_SendTestMailRequest()
      test.recipient = "anna@acme.example"
      test.subject = "Test profilu"
      var file = Dms_Settings_V1_MailAttachment()
      file.fileName = "a.txt"
      file.content = Data("a".utf8)
      test.attachments = [file]
      #expect(
        rules(await rpcError { _ = try await mail.sendTestMessage(test, options: Self.acme) }) == ["attachments:MAIL-2"]
      )
      test.attachments = []
      let answer = try await mail.sendTestMessage(test, options: Self.acme)
      #expect(answer.sent && answer.replyCode == 250, "\(answer.reply)")

      // SSL no: plain SMTP, to a server without TLS.
      update.account = saved
      update.account.ssl = false
      update.account.trustedCertificates = ""
      update.account.port = Int32(plain.port)
      update.account.login = ""
      update.password.clear = true
      let plainAccount = try await mail.updateAccount(update, options: Self.acme)
      #expect(!plainAccount.ssl && !plainAccount.passwordSet && plainAccount.profileExists)
      _ = try await MailQueueTests.enqueue(mail, MailQueueTests.outgoing("Bez SSL"))
      let overPlain = try await plain.waitForMessages(1)
      #expect(overPlain.map(\.tls) == [false] && overPlain.first?.headers["Subject"] == "Bez SSL")
      await client.close()
    }
  }

  @Test(
    "MAIL-2: a message queued with attachments while the account was the component's fails, not sent, once the profile would send it",
    .enabled(if: SMTPTestServer.available, "python3-aiosmtpd is not installed"))
  func attachmentsQueuedBefore() async throws {
    let smtp = try await SMTPTestServer.start()
    var configuration = TestServer.testMail
    // A retry late enough for the switch to the profile to come first.
    // Attempts enough that the last is the profile's however long the switch takes.
    configuration.retry = MailRetryPolicy(maxAttempts: 20, firstDelay: 2, maxDelay: 2)
    let slowRetry = configuration
    try await withTestServer(mail: slowRetry) { server async throws in
      let client = server.client()
      let mail = Dms_Settings_V1_Mail.Client(client)
      try await Self.createACME(client)
      var update = Dms_Settings_V1_UpdateMailAccountRequest()
      update.account = MailTests.account()
      update.account.server = "127.0.0.1"
      update.account.port = Int32(try freePort())  // nothing listens: a transient failure
      update.account.encryption = .none
      update.account.login = ""
      let component = try await mail.updateAccount(update, options: Self.acme)
      let queued = try await MailQueueTests.enqueue(
        mail, MailQueueTests.outgoing("Z plikiem", attachment: [1, 2, 3]))
      _ = try await MailQueueTests.waitFor(mail) { $0.first?.attempts == 1 && $0.first?.state == .queued }
      update.account = component
      update.account.transport = .databaseProfile
      update.account.port = Int32(smtp.port)
      update.databaseAdministrator = Self.dba
      _ = try await mail.updateAccount(update, options: Self.acme)
      let failed = try await MailQueueTests.waitFor(mail) { $0.first?.state == .failed }
      #expect(failed.map(\.id) == [queued.id] && failed.first?.state == .failed)
      #expect(failed.first?.lastError.contains("sends no attachments") == true, "\(failed)")
      #expect(try smtp.received().isEmpty, "nothing sent")
      await client.close()
    }
  }
}
