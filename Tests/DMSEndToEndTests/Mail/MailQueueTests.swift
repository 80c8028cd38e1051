import DMSClient
import DMSDomain
import DMSMessages
import DMSRPC
import DMSServices
import DMSStorage
import DMSStubs
import Foundation
import Testing

/// The queue over the wire (MAIL-2, MAIL-3, CFG-3) and the test message (MAIL-26 … 28),
/// sent by the server's worker to a real SMTP server on loopback, on the backend the run
/// tests (`DMS_TEST_BACKEND`).
@Suite("Mail queue", .enabled(if: SMTPTestServer.available, "python3-aiosmtpd is not installed"))
struct MailQueueTests {
  static let acme = MailTests.acting(for: "ACME")

  /// ACME with an account on `smtp`, signing in as dms / hasło.
  static func setUp(
    _ server: TestServer, smtp: SMTPTestServer, encryption: Dms_Settings_V1_MailEncryption = .none,
    createCompany: Bool = true
  ) async throws -> Dms_Settings_V1_Mail.Client<RPCClient> {
    let client = server.client()
    if createCompany {
      var create = Dms_Settings_V1_CreateCompanyRequest()
      create.company = companyMessage("ACME")
      _ = try await Dms_Settings_V1_Companies.Client(client).create(create)
    }
    let mail = Dms_Settings_V1_Mail.Client(client)
    var update = Dms_Settings_V1_UpdateMailAccountRequest()
    update.account = MailTests.account()
    update.account.server = "127.0.0.1"
    update.account.port = Int32(smtp.port)
    update.account.login = "dms"
    update.account.encryption = encryption
    update.account.trustedCertificates = smtp.certificatePEM
    update.account.replyTo = "biuro@acme.example"
    update.password = secret("hasło")
    _ = try await mail.updateAccount(update, options: acme)
    return mail
  }

  static func outgoing(_ subject: String, attachment: [UInt8] = []) -> Dms_Settings_V1_OutgoingMail {
    var message = Dms_Settings_V1_OutgoingMail()
    message.to = ["anna@acme.example"]
    message.bcc = ["archiwum@acme.example"]
    message.subject = subject
    message.text = "Treść: \(subject)"
    message.html = "<p>\(subject)</p>"
    if !attachment.isEmpty {
      var file = Dms_Settings_V1_MailAttachment()
      file.fileName = "umowa końcowa.pdf"
      file.contentType = "application/pdf"
      file.content = Data(attachment)
      message.attachments = [file]
    }
    return message
  }

  static func enqueue(_ mail: Dms_Settings_V1_Mail.Client<RPCClient>, _ message: Dms_Settings_V1_OutgoingMail)
    async throws
    -> Dms_Settings_V1_QueuedMail
  {
    var request = Dms_Settings_V1_EnqueueMailRequest()
    request.mail = message
    return try await mail.enqueue(request, options: acme)
  }

  static func queue(_ mail: Dms_Settings_V1_Mail.Client<RPCClient>, _ states: [Dms_Settings_V1_MailDeliveryState] = [])
    async throws -> [Dms_Settings_V1_QueuedMail]
  {
    var request = Dms_Settings_V1_ListMailQueueRequest()
    request.states = states
    return try await mail.listQueue(request, options: acme).mails
  }

  /// What enqueueing `message` threw.
  static func enqueueError(_ mail: Dms_Settings_V1_Mail.Client<RPCClient>, _ message: Dms_Settings_V1_OutgoingMail)
    async -> RPCError?
  {
    do {
      _ = try await enqueue(mail, message)
      return nil
    } catch {
      return error as? RPCError
    }
  }

  /// Waits until `predicate` holds for the queue (10 s at most).
  static func waitFor(
    _ mail: Dms_Settings_V1_Mail.Client<RPCClient>,
    _ predicate: @escaping @Sendable ([Dms_Settings_V1_QueuedMail]) -> Bool
  ) async throws -> [Dms_Settings_V1_QueuedMail] {
    let deadline = Date().addingTimeInterval(10)
    while true {
      let mails = try await queue(mail)
      if predicate(mails) || Date() > deadline { return mails }
      try await Task.sleep(for: .milliseconds(50))
    }
  }

  @Test(
    "MAIL-2, CFG-3 false: queued messages are sent by the worker over one reused connection, byte for byte with their attachments, and kept as sent"
  )
  func sent() async throws {
    let smtp = try await SMTPTestServer.start(mode: .starttls, user: "dms", password: "hasło")
    try await withTestServer { server async throws in
      let mail = try await Self.setUp(server, smtp: smtp, encryption: .starttls)
      let pdf = (0..<100 * 1024).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
      var ids: [Int64] = []
      for n in 1...3 {
        let queued = try await Self.enqueue(mail, Self.outgoing("Wiadomość \(n)", attachment: n == 2 ? pdf : []))
        #expect(queued.id > 0 && queued.to == ["anna@acme.example"] && queued.bcc == ["archiwum@acme.example"])
        #expect(queued.messageID.hasSuffix("@acme.example"))
        ids.append(queued.id)
      }
      let received = try await smtp.waitForMessages(3)
      try #require(received.count == 3)
      #expect(received.allSatisfy { $0.tls && $0.login == "dms" && $0.mailFrom == "dms@acme.example" })
      #expect(received.map(\.recipients) == Array(repeating: ["anna@acme.example", "archiwum@acme.example"], count: 3))
      #expect(Set(received.map(\.headers["Subject"])) == ["Wiadomość 1", "Wiadomość 2", "Wiadomość 3"])
      let second = try #require(received.first { $0.headers["Subject"] == "Wiadomość 2" })
      #expect(second.headers["From"] == "DMS – powiadomienia <dms@acme.example>")
      #expect(second.headers["Reply-To"] == "biuro@acme.example")
      #expect(second.parts.map(\.contentType) == ["text/plain", "text/html", "application/pdf"])
      #expect(second.parts[2].fileName == "umowa końcowa.pdf" && second.parts[2].bytes == Data(pdf))
      #expect(String(decoding: second.parts[0].bytes, as: UTF8.self) == "Treść: Wiadomość 2")
      // Kept as sent (CFG-3 false), the Message-ID the one sent.
      let mails = try await Self.waitFor(mail) { $0.allSatisfy { $0.state == .sent } }
      #expect(
        mails.map(\.id) == ids && mails.allSatisfy { $0.state == .sent && $0.sentAtUnixMs > 0 && $0.attempts == 1 })
      #expect(Set(received.compactMap { $0.headers["Message-ID"] }) == Set(mails.map { "<\($0.messageID)>" }))
      #expect(mails[1].attachmentNames == ["umowa końcowa.pdf"])
      let key = try #require(try await server.store.registry.company(code: "ACME"))
      #expect(server.mail.connectionsOpened(company: key) <= 2, "the connection is reused")
      #expect(try await server.store.inspectCount(#"SELECT count(*) FROM "ProcessMailsAttachment""#) == 1)
      await server.client().close()
    }
  }

  @Test("CFG-3 true: a sent message is deleted with its attachments")
  func deletedAfterSending() async throws {
    let smtp = try await SMTPTestServer.start(user: "dms", password: "hasło")
    try await withTestServer(deployment: DeploymentConfiguration(mode: .multiCompany, deleteMailsAfterSending: true)) {
      server async throws in
      let mail = try await Self.setUp(server, smtp: smtp)
      _ = try await Self.enqueue(mail, Self.outgoing("Usuwana", attachment: [1, 2, 3]))
      #expect(try await smtp.waitForMessages(1).count == 1)
      #expect(try await Self.waitFor(mail) { $0.isEmpty }.isEmpty)
      #expect(try await server.store.inspectCount(#"SELECT count(*) FROM "ProcessMails""#) == 0)
      #expect(try await server.store.inspectCount(#"SELECT count(*) FROM "ProcessMailsAttachment""#) == 0)
    }
  }

  @Test(
    "MAIL-3: a 4xx reply is tried again with backoff, a 5xx fails at once; each failure in the work log with the server's reply; a failed message is retried or deleted by an administrator"
  )
  func failures() async throws {
    let smtp = try await SMTPTestServer.start(user: "dms", password: "hasło")
    try await withTestServer { server async throws in
      let mail = try await Self.setUp(server, smtp: smtp)
      try smtp.fault(["451 4.3.0 Mailbox busy, try later"])
      let busy = try await Self.enqueue(mail, Self.outgoing("Zajęta skrzynka"))
      #expect(try await smtp.waitForMessages(1).count == 1)
      let afterRetry = try await Self.waitFor(mail) { $0.first?.state == .sent }
      #expect(afterRetry.first?.id == busy.id && afterRetry.first?.attempts == 2 && afterRetry.first?.state == .sent)

      try smtp.fault(["550 5.1.1 No such user here"])
      let refused = try await Self.enqueue(mail, Self.outgoing("Nieznany adresat"))
      let failed = try await Self.waitFor(mail) { $0.last?.state == .failed }
      #expect(failed.last?.id == refused.id && failed.last?.attempts == 1)
      #expect(
        failed.last?.lastError.contains("550 5.1.1 No such user here") == true, "\(String(describing: failed.last))")

      let log = try await mail.listWorkLog(Dms_Settings_V1_ListMailWorkLogRequest(), options: Self.acme).entries
      #expect(log.map(\.outcome) == ["permanent", "transient"])
      #expect(log.map(\.replyCode) == [550, 451])
      #expect(log[0].mailID == refused.id && log[0].messageID == refused.messageID && log[0].attempt == 1)
      #expect(log[1].message.contains("451 4.3.0 Mailbox busy, try later"))

      // Only a failed message is retried; it is then sent.
      var which = Dms_Settings_V1_MailMessageRequest()
      which.id = busy.id
      #expect(
        await rpcError { _ = try await mail.retryMessage(which, options: Self.acme) }?.code == .failedPrecondition)
      which.id = refused.id
      let retried = try await mail.retryMessage(which, options: Self.acme)
      #expect(retried.state == .queued && retried.attempts == 0)
      #expect(try await smtp.waitForMessages(2).count == 2)
      #expect(try await Self.waitFor(mail) { $0.last?.state == .sent }.last?.state == .sent)
      // Deleted by an administrator, audited; another company's id is not found.
      try await mail.deleteMessage(which, options: Self.acme)
      #expect(try await Self.queue(mail).map(\.id) == [busy.id])
      #expect(await rpcError { _ = try await mail.deleteMessage(which, options: Self.acme) }?.code == .notFound)
      let audit = try await server.store.registry.auditRecords(company: nil, after: 0, limit: 100)
      #expect(audit.filter { $0.area == "mail.queue" }.map(\.action) == ["retry", "delete"])
    }
  }

  @Test("a transient failure on every attempt gives up after the last one (mail.max-attempts)")
  func givesUp() async throws {
    let smtp = try await SMTPTestServer.start(user: "dms", password: "hasło")
    try await withTestServer { server async throws in
      let mail = try await Self.setUp(server, smtp: smtp)
      try smtp.fault(["421 4.7.0 closing", "451 4.3.0 again", "drop"])
      _ = try await Self.enqueue(mail, Self.outgoing("Bez szans"))
      let failed = try await Self.waitFor(mail) { $0.first?.state == .failed }
      #expect(failed.first?.state == .failed && failed.first?.attempts == 3)
      let log = try await mail.listWorkLog(Dms_Settings_V1_ListMailWorkLogRequest(), options: Self.acme).entries
      #expect(log.map(\.outcome) == ["gave_up", "transient", "transient"])
      #expect(try smtp.received().isEmpty)
    }
  }

  @Test(
    "MAIL-2: a message is checked when queued: every broken rule and size limit named, nothing queued; sending off or no account is a failed precondition"
  )
  func refused() async throws {
    let smtp = try await SMTPTestServer.start()
    var configuration = TestServer.testMail
    configuration.limits.maxMessageBytes = 64 << 10
    let limited = configuration
    try await withTestServer(mail: limited) { server async throws in
      let client = server.client()
      var create = Dms_Settings_V1_CreateCompanyRequest()
      create.company = companyMessage("ACME")
      _ = try await Dms_Settings_V1_Companies.Client(client).create(create)
      let mail = Dms_Settings_V1_Mail.Client(client)
      // No account yet.
      #expect(
        await Self.enqueueError(mail, Self.outgoing("x"))?.code == .failedPrecondition)
      var message = Self.outgoing("Dwie\nlinie")
      message.to = ["anna@acme.example", "nie adres"]
      var file = Dms_Settings_V1_MailAttachment()
      file.fileName = "../etc/passwd"
      file.contentType = "pdf"
      file.content = Data(repeating: 1, count: 70 << 10)
      message.attachments = [file]
      let refused = await Self.enqueueError(mail, message)
      #expect(refused?.code == .invalidArgument)
      #expect(
        rules(refused) == [
          "mail.to[1]:MAIL-2", "mail.subject:MAIL-2", "mail.attachments[0].file_name:MAIL-2",
          "mail.attachments[0].content_type:MAIL-2", "mail:MAIL-2",
        ])
      #expect(refused?.violations.last?.description.contains("mail.max-message-bytes") == true)
      // Sending off (MAIL-7).
      _ = try await Self.setUp(server, smtp: smtp, createCompany: false)
      var update = Dms_Settings_V1_UpdateMailAccountRequest()
      update.account = try await mail.getAccount(options: Self.acme)
      update.account.enabled = false
      _ = try await mail.updateAccount(update, options: Self.acme)
      let off = await Self.enqueueError(mail, Self.outgoing("x"))
      #expect(off?.code == .failedPrecondition && off?.message.contains("MAIL-7") == true)
      #expect(try await Self.queue(mail).isEmpty)
      // Which company: the metadata.
      let unnamed = await rpcError { _ = try await mail.enqueue(Dms_Settings_V1_EnqueueMailRequest()) }
      #expect(unnamed?.code == .invalidArgument)
      await client.close()
    }
  }

  @Test(
    "access: an API system queues a message (SYSTEM); an operator who is not an administrator neither queues nor lists")
  func access() async throws {
    let smtp = try await SMTPTestServer.start(user: "dms", password: "hasło")
    try await withTestServer { server async throws in
      _ = try await Self.setUp(server, smtp: smtp)
      let crm = try await ApiSystemsTests.add(server.client(), "CRM")
      let session = try await ApiSystemsTests.loginSystem(
        SignInTests.anonymous(server), crm.system.identifier, crm.secret)
      let system = Dms_Settings_V1_Mail.Client(SignInTests.signedIn(server, session.token))
      let queued = try await Self.enqueue(system, Self.outgoing("Od systemu CRM"))
      #expect(try await smtp.waitForMessages(1).first?.headers["Subject"] == "Od systemu CRM")
      let clerk = try await server.session(of: Operator(login: "clerk", fullName: "Clerk", administrator: false))
      let operatorMail = Dms_Settings_V1_Mail.Client(SignInTests.signedIn(server, clerk))
      #expect(await Self.enqueueError(operatorMail, Self.outgoing("x"))?.code == .permissionDenied)
      let listed = await rpcError { _ = try await Self.queue(operatorMail) }
      #expect(listed?.code == .permissionDenied)
      let audit = try await server.store.registry.auditRecords(company: nil, after: 0, limit: 100)
      #expect(!audit.contains { $0.area == "mail.queue" }, "queueing is not a settings change")
      #expect(queued.id > 0)
    }
  }

  @Test(
    "MAIL-26 … MAIL-28: the test message is sent at once and says so, or returns the server's error text; MAIL-27's preconditions refused"
  )
  func testMessage() async throws {
    let smtp = try await SMTPTestServer.start(mode: .tls, user: "dms", password: "hasło")
    try await withTestServer { server async throws in
      let client = server.client()
      let mail = Dms_Settings_V1_Mail.Client(client)
      var request = Dms_Settings_V1_SendTestMailRequest()
      request.recipient = "admin@acme.example"
      request.subject = "Test konfiguracji"
      request.body = "Działa?"
      var create = Dms_Settings_V1_CreateCompanyRequest()
      create.company = companyMessage("ACME")
      _ = try await Dms_Settings_V1_Companies.Client(client).create(create)
      // MAIL-27: saved account settings first.
      #expect(
        await rpcError { _ = try await mail.sendTestMessage(request, options: Self.acme) }?.code == .failedPrecondition)
      _ = try await Self.setUp(server, smtp: smtp, encryption: .tls, createCompany: false)
      var file = Dms_Settings_V1_MailAttachment()
      file.fileName = "test.txt"
      file.content = Data("załącznik".utf8)
      request.attachments = [file]
      let sent = try await mail.sendTestMessage(request, options: Self.acme)
      #expect(sent.sent && sent.replyCode == 250 && sent.reply.hasPrefix("250"))
      let received = try smtp.received()
      #expect(
        received.count == 1 && received.first?.tls == true && received.first?.recipients == ["admin@acme.example"])
      #expect(received.first?.parts.last?.bytes == Data("załącznik".utf8))
      #expect(try await Self.queue(mail).isEmpty, "not through the queue")
      // MAIL-27: a recipient and a subject.
      var bad = request
      bad.recipient = ""
      bad.subject = " "
      let refused = await rpcError { _ = try await mail.sendTestMessage(bad, options: Self.acme) }
      #expect(rules(refused) == ["recipient:MAIL-27", "subject:MAIL-27"])
      // A wrong password: not sent, with the server's answer.
      var update = Dms_Settings_V1_UpdateMailAccountRequest()
      update.account = try await mail.getAccount(options: Self.acme)
      update.password = secret("złe hasło")
      _ = try await mail.updateAccount(update, options: Self.acme)
      let denied = try await mail.sendTestMessage(request, options: Self.acme)
      #expect(!denied.sent && denied.replyCode == 535 && denied.reply.contains("535"))
      #expect(!denied.reply.contains("złe hasło"))
      await client.close()
    }
  }
}
