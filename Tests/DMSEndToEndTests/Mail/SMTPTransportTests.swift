import DMSDomain
import DMSMailTransport
import Foundation
import Testing

/// Sending through libcurl to a real SMTP server on loopback (aiosmtpd): the message as
/// it arrives, TLS, sign-in, connection reuse and how each failure is classed.
@Suite("SMTP through libcurl", .enabled(if: SMTPTestServer.available, "python3-aiosmtpd is not installed"))
struct SMTPTransportTests {
  static let pdf = (0..<100 * 1024).map { UInt8(truncatingIfNeeded: $0 &* 7919 &+ $0 >> 8) }

  static func mail(_ subject: String = "Dokument przekazany do etapu „Akceptacja”") -> OutgoingMail {
    OutgoingMail(
      to: ["anna@acme.example", "jan@acme.example"], cc: ["biuro@acme.example"], bcc: ["archiwum@acme.example"],
      subject: subject, text: "Dzień dobry,\ndokument FV/1/2026 czeka.\n.\nKropka wyżej.",
      html: "<p>Dzień dobry, <b>FV/1/2026</b> czeka.</p>",
      attachments: [
        .init(fileName: "faktura.pdf", contentType: "application/pdf", content: pdf),
        .init(fileName: "zażółć gęślą jaźń.txt", contentType: "text/plain", content: Array("zażółć\r\n.\r\n".utf8)),
      ])
  }

  static func message(_ mail: OutgoingMail = mail(), id: String = "m1@acme.example") -> MIMEMessage {
    MIMEMessage(
      mail, from: .init(address: "dms@acme.example", displayName: "DMS – powiadomienia", replyTo: "biuro@acme.example"),
      messageID: id, date: Date(timeIntervalSince1970: 1_800_000_000), boundarySeed: "fixed")
  }

  @Test(
    "MAIL-2, MAIL-9 … MAIL-11: a message with HTML and attachments arrives byte for byte, signed in, over one reused connection"
  )
  func arrives() async throws {
    let server = try await SMTPTestServer.start(user: "dms@acme.example", password: "hasło")
    let pool = SMTPSenderPool(threadCount: 2)
    let endpoint = SMTPEndpoint(
      host: "127.0.0.1", port: server.port, security: .none,
      credential: .password(login: "dms@acme.example", password: "hasło"))
    for n in 1...3 {
      let reply = try await pool.send(Self.message(id: "m\(n)@acme.example"), endpoint: endpoint, key: "ACME")
      #expect(reply.hasPrefix("250"))
    }
    #expect(pool.connectionsOpened(key: "ACME") == 1)
    let received = try server.received()
    try #require(received.count == 3)
    #expect(Set(received.map(\.peerPort)).count == 1, "one connection for the three")
    let first = received[0]
    #expect(first.mailFrom == "dms@acme.example" && first.login == "dms@acme.example" && first.auth == "password")
    #expect(
      first.recipients == ["anna@acme.example", "jan@acme.example", "biuro@acme.example", "archiwum@acme.example"])
    #expect(first.defects.isEmpty)
    #expect(first.headers["Subject"] == "Dokument przekazany do etapu „Akceptacja”")
    #expect(first.headers["From"] == "DMS – powiadomienia <dms@acme.example>")
    #expect(first.headers["To"] == "anna@acme.example, jan@acme.example")
    #expect(first.headers["Cc"] == "biuro@acme.example" && first.headers["Bcc"] == nil)
    #expect(first.headers["Reply-To"] == "biuro@acme.example")
    #expect(first.headers["Message-ID"] == "<m1@acme.example>")
    #expect(first.raw == Self.message(id: "m1@acme.example").bytes, "the bytes as rendered (dots unstuffed)")
    #expect(first.parts.map(\.contentType) == ["text/plain", "text/html", "application/pdf", "text/plain"])
    #expect(String(decoding: first.parts[0].bytes, as: UTF8.self) == Self.mail().text)
    #expect(String(decoding: first.parts[1].bytes, as: UTF8.self) == Self.mail().html)
    #expect(first.parts[2].fileName == "faktura.pdf" && first.parts[2].bytes == Data(Self.pdf))
    #expect(first.parts[3].fileName == "zażółć gęślą jaźń.txt" && first.parts[3].disposition == "attachment")
    #expect(first.parts[3].bytes == Data("zażółć\r\n.\r\n".utf8))
    // The account changed: its old connection is closed, a new one opened.
    var changed = endpoint
    changed.sendTimeout = 30
    _ = try await pool.send(Self.message(id: "m4@acme.example"), endpoint: changed, key: "ACME")
    #expect(pool.connectionsOpened(key: "ACME") == 1)
    #expect(Set(try server.received().map(\.peerPort)).count == 2)
    await pool.shutdown()
  }

  @Test(
    "MAIL-20: STARTTLS and implicit TLS verify the server against the trusted certificates; an unknown one is refused before anything is sent"
  )
  func tls() async throws {
    for mode in [SMTPTestServer.Mode.starttls, .tls] {
      let server = try await SMTPTestServer.start(mode: mode, user: "u", password: "p")
      let pool = SMTPSenderPool(threadCount: 1)
      var endpoint = SMTPEndpoint(
        host: "127.0.0.1", port: server.port, security: mode == .tls ? .implicitTLS : .startTLS(required: true),
        credential: .password(login: "u", password: "p"), trustedCertificates: server.certificatePEM)
      _ = try await pool.sendOnce(Self.message(), endpoint: endpoint)
      endpoint.trustedCertificates = ""
      let refused = await #expect(throws: SMTPFailure.self) {
        _ = try await pool.sendOnce(Self.message(), endpoint: endpoint)
      }
      #expect(refused?.kind == .permanent, "\(mode): \(refused?.message ?? "")")
      let received = try server.received()
      #expect(received.count == 1 && received[0].tls && received[0].login == "u", "\(mode)")
      await pool.shutdown()
    }
  }

  @Test(
    "MAIL-20: with a sign-in, STARTTLS is required (automatic too): a server without it gets no password in plain text")
  func noPlainTextSecrets() async throws {
    let server = try await SMTPTestServer.start(user: "u", password: "p")
    let pool = SMTPSenderPool(threadCount: 1)
    let account = MailAccount(
      enabled: true, accountName: "DMS", senderAddress: "dms@acme.example", server: "127.0.0.1", port: server.port,
      login: "u", encryption: .automatic)
    let signedIn = SMTPEndpoint(account: account, credential: .password(login: "u", password: "p"))
    #expect(signedIn.security == .startTLS(required: true))
    let refused = await #expect(throws: SMTPFailure.self) {
      _ = try await pool.sendOnce(Self.message(), endpoint: signedIn)
    }
    #expect(refused?.kind == .permanent)
    // Without a sign-in, automatic sends in plain text where STARTTLS is not offered.
    let relay = SMTPEndpoint(account: account, credential: .none)
    #expect(relay.security == .startTLS(required: false))
    _ = try await pool.sendOnce(Self.message(), endpoint: relay)
    #expect(try server.received().map(\.login) == [nil])
    await pool.shutdown()
  }

  @Test(
    "a 4xx reply, a dropped connection and a refused connection are transient; a 5xx reply and a wrong password permanent; each with the server's text"
  )
  func failures() async throws {
    let server = try await SMTPTestServer.start(user: "u", password: "p")
    let pool = SMTPSenderPool(threadCount: 1)
    let endpoint = SMTPEndpoint(
      host: "127.0.0.1", port: server.port, security: .none, credential: .password(login: "u", password: "p"))
    try server.fault(["451 4.3.0 Mailbox busy, try later", "550 5.1.1 No such user here", "drop"])
    func failure(_ endpoint: SMTPEndpoint) async -> SMTPFailure? {
      do {
        _ = try await pool.send(Self.message(), endpoint: endpoint, key: "K")
        return nil
      } catch {
        return error
      }
    }
    let busy = await failure(endpoint)
    #expect(busy?.kind == .transient && busy?.replyCode == 451)
    #expect(busy?.message.contains("451 4.3.0 Mailbox busy, try later") == true)
    let unknown = await failure(endpoint)
    #expect(unknown?.kind == .permanent && unknown?.replyCode == 550)
    #expect(unknown?.message.contains("No such user here") == true)
    let dropped = await failure(endpoint)
    #expect(dropped?.kind == .transient, "\(dropped?.message ?? "")")
    // After the faults, the same pool sends again.
    _ = try await pool.send(Self.message(), endpoint: endpoint, key: "K")
    var wrong = endpoint
    wrong.credential = .password(login: "u", password: "wrong")
    let denied = await failure(wrong)
    #expect(denied?.kind == .permanent && denied?.replyCode == 535)
    #expect(denied?.message.contains("wrong") == false, "no secret in the message")
    var closed = endpoint
    closed.port = try freePort()
    let refused = await failure(closed)
    #expect(refused?.kind == .transient && refused?.replyCode == 0)
    #expect(try server.received().count == 1)
    await pool.shutdown()
  }

  @Test("MAIL-24: XOAUTH2 with the access token; a refused token is a permanent failure")
  func xoauth2() async throws {
    let server = try await SMTPTestServer.start(bearer: "access-1")
    let pool = SMTPSenderPool(threadCount: 1)
    var endpoint = SMTPEndpoint(
      host: "127.0.0.1", port: server.port, security: .none,
      credential: .bearer(login: "dms@acme.example", token: "access-1"))
    _ = try await pool.sendOnce(Self.message(), endpoint: endpoint)
    endpoint.credential = .bearer(login: "dms@acme.example", token: "expired")
    let refused = await #expect(throws: SMTPFailure.self) {
      _ = try await pool.sendOnce(Self.message(), endpoint: endpoint)
    }
    #expect(refused?.kind == .permanent && refused?.replyCode == 535)
    let received = try server.received()
    #expect(received.map(\.auth) == ["XOAUTH2"] && received.map(\.login) == ["dms@acme.example"])
    await pool.shutdown()
  }
}

/// A loopback port nothing listens on (bound, then released).
func freePort() throws -> Int {
  let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
  defer { close(fd) }
  var address = sockaddr_in()
  address.sin_family = sa_family_t(AF_INET)
  address.sin_addr.s_addr = inet_addr("127.0.0.1")
  address.sin_port = 0
  var length = socklen_t(MemoryLayout<sockaddr_in>.size)
  _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
  _ = withUnsafeMutablePointer(to: &address) {
    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
  }
  return Int(UInt16(bigEndian: address.sin_port))
}
