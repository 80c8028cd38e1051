import DMSDomain
import Foundation
import Testing

@testable import DMSMailTransport

@Suite("Outgoing mail, retries and MIME rendering")
struct OutgoingMailTests {
  @Test("MAIL-2: recipients, subject, attachments and the size limit, each broken rule named; texts trimmed")
  func rules() throws {
    let good = OutgoingMail(to: [" anna@acme.example "], subject: " Faktura ", text: "x")
    let checked = try good.validated(limits: .init(), rule: "MAIL-2")
    #expect(checked.to == ["anna@acme.example"] && checked.subject == "Faktura")
    var bad = OutgoingMail(to: [], subject: "a\nb", text: "")
    bad.attachments = [
      .init(fileName: "", content: []), .init(fileName: "a/b.txt", contentType: "text", content: []),
    ]
    #expect {
      _ = try bad.validated(limits: .init(maxAttachments: 1), rule: "MAIL-2")
    } throws: { error in
      (error as? ValidationFailure)?.violations.map { "\($0.field):\($0.rule)" } == [
        "mail.to:MAIL-2", "mail.subject:MAIL-2", "mail.attachments:MAIL-2",
        "mail.attachments[0].file_name:MAIL-2", "mail.attachments[1].file_name:MAIL-2",
        "mail.attachments[1].content_type:MAIL-2",
      ]
    }
    // The database profile sends no attachments (MAIL-2); the size is the encoded one.
    let file = OutgoingMail(
      to: ["a@b.pl"], subject: "s", text: "",
      attachments: [.init(fileName: "f", content: Array(repeating: 0, count: 3000))])
    #expect(throws: ValidationFailure.self) {
      _ = try file.validated(limits: .init(), attachmentsAllowed: false, rule: "MAIL-2")
    }
    #expect(file.encodedSize > 4000)
    #expect(throws: ValidationFailure.self) {
      _ = try file.validated(limits: .init(maxMessageBytes: 4000), rule: "MAIL-2")
    }
    #expect(
      try file.validated(limits: .init(), rule: "MAIL-2").attachments[0].contentType == "application/octet-stream")
  }

  @Test("retries: the wait doubles from the first up to the longest, jitter spreads it over its upper half, then none")
  func backoff() {
    let policy = MailRetryPolicy(maxAttempts: 5, firstDelay: 30, maxDelay: 100)
    #expect(policy.delay(afterAttempts: 1, jitter: 1) == 30)
    #expect(policy.delay(afterAttempts: 1, jitter: 0) == 15)
    #expect(policy.delay(afterAttempts: 2, jitter: 1) == 60)
    #expect(policy.delay(afterAttempts: 3, jitter: 1) == 100)
    #expect(policy.delay(afterAttempts: 4, jitter: 0.5) == 75)
    #expect(policy.delay(afterAttempts: 5, jitter: 1) == nil)
  }

  @Test("MIME: the same message renders to the same bytes; headers encoded (RFC 2047), no Bcc header, CRLF lines")
  func rendering() {
    let mail = OutgoingMail(
      to: ["anna@acme.example"], bcc: ["ukryty@acme.example"], subject: "Zażółć gęślą jaźń", text: "Treść",
      attachments: [.init(fileName: "plik ą.txt", contentType: "text/plain", content: Array("x".utf8))])
    let from = MIMEMessage.From(address: "dms@acme.example", displayName: "DMS \"Powiadomienia\"")
    let date = Date(timeIntervalSince1970: 1_800_000_000)
    let one = MIMEMessage(mail, from: from, messageID: "id@acme.example", date: date, boundarySeed: "s")
    let two = MIMEMessage(mail, from: from, messageID: "id@acme.example", date: date, boundarySeed: "s")
    #expect(one.bytes == two.bytes)
    #expect(one.recipients == ["anna@acme.example", "ukryty@acme.example"] && one.sender == "dms@acme.example")
    let text = String(decoding: one.bytes, as: UTF8.self)
    #expect(text.hasPrefix("Date: Fri, 15 Jan 2027 08:00:00 +0000\r\n"))
    #expect(text.contains("From: \"DMS \\\"Powiadomienia\\\"\" <dms@acme.example>\r\n"))
    #expect(text.contains("Subject: =?UTF-8?B?"))
    #expect(!text.contains("Bcc") && !text.contains("ukryty"))
    #expect(text.contains("filename*=UTF-8''plik%20%C4%85.txt"))
    #expect(!text.replacingOccurrences(of: "\r\n", with: "").contains("\n"))
    #expect(text.allSatisfy { $0.isASCII })
  }

  @Test("the Date header's text, made by hand, matches RFC 5322's form across leap years and centuries")
  func dates() {
    let expected: [(Double, String)] = [
      (0, "Thu, 01 Jan 1970 00:00:00 +0000"), (951_782_400, "Tue, 29 Feb 2000 00:00:00 +0000"),
      (1_735_689_599, "Tue, 31 Dec 2024 23:59:59 +0000"), (1_800_000_000, "Fri, 15 Jan 2027 08:00:00 +0000"),
      (4_102_444_800, "Fri, 01 Jan 2100 00:00:00 +0000"),
    ]
    for (seconds, text) in expected {
      #expect(MIMEMessage.dateText(Date(timeIntervalSince1970: seconds)) == text)
    }
  }
}
