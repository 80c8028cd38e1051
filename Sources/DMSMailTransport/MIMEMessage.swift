import DMSDomain
import Foundation

/// A message as it goes over SMTP: RFC 5322 headers and a MIME body (RFC 2045 …
/// 2047, 2231), rendered once, so that every attempt sends the same bytes under the
/// same Message-ID (receivers may deduplicate a message sent twice: at-least-once).
public struct MIMEMessage: Sendable, Hashable {
  /// The envelope sender (MAIL FROM).
  public let sender: String
  /// The envelope recipients (RCPT TO): to, cc and bcc.
  public let recipients: [String]
  /// The message's bytes, CRLF line ends.
  public let bytes: Data

  /// Who the message is from: the account's sender address, display name and reply-to
  /// (MAIL-9 … MAIL-11).
  public struct From: Sendable, Hashable {
    public var address: String
    public var displayName: String
    public var replyTo: String

    public init(address: String, displayName: String = "", replyTo: String = "") {
      self.address = address
      self.displayName = displayName
      self.replyTo = replyTo
    }
  }

  /// Renders `mail` from `from`, with `messageID` (without angle brackets) and `date`;
  /// `boundarySeed` makes the MIME boundaries (random when nil).
  public init(_ mail: OutgoingMail, from: From, messageID: String, date: Date, boundarySeed: String? = nil) {
    sender = from.address
    recipients = mail.recipients
    let seed = boundarySeed ?? UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
    var out = MIMEWriter()
    out.header("Date", Self.dateText(date))
    out.header("From", Self.mailbox(from.displayName, from.address))
    if !mail.to.isEmpty { out.header("To", mail.to.joined(separator: ", ")) }
    if !mail.cc.isEmpty { out.header("Cc", mail.cc.joined(separator: ", ")) }
    if !from.replyTo.isEmpty { out.header("Reply-To", from.replyTo) }
    out.header("Subject", Self.encodedWords(mail.subject))
    out.header("Message-ID", "<\(messageID)>")
    out.header("MIME-Version", "1.0")

    let textPart: (inout MIMEWriter) -> Void = { out in
      out.header("Content-Type", "text/plain; charset=utf-8")
      out.header("Content-Transfer-Encoding", "base64")
      out.line("")
      out.base64(Data(mail.text.utf8))
    }
    let bodyPart: (inout MIMEWriter) -> Void
    if mail.html.isEmpty {
      bodyPart = textPart
    } else {
      bodyPart = { out in
        let boundary = "=_alt_\(seed)"
        out.header("Content-Type", "multipart/alternative; boundary=\"\(boundary)\"")
        out.line("")
        out.line("--\(boundary)")
        textPart(&out)
        out.line("--\(boundary)")
        out.header("Content-Type", "text/html; charset=utf-8")
        out.header("Content-Transfer-Encoding", "base64")
        out.line("")
        out.base64(Data(mail.html.utf8))
        out.line("--\(boundary)--")
      }
    }
    if mail.attachments.isEmpty {
      bodyPart(&out)
    } else {
      let boundary = "=_mixed_\(seed)"
      out.header("Content-Type", "multipart/mixed; boundary=\"\(boundary)\"")
      out.line("")
      out.line("This is a message in MIME format.")
      out.line("--\(boundary)")
      bodyPart(&out)
      for attachment in mail.attachments {
        out.line("--\(boundary)")
        let type = attachment.contentType.isEmpty ? "application/octet-stream" : attachment.contentType
        out.header("Content-Type", "\(type); name=\(Self.quoted(Self.encodedWords(attachment.fileName)))")
        out.header("Content-Transfer-Encoding", "base64")
        out.header("Content-Disposition", "attachment; \(Self.fileNameParameter(attachment.fileName))")
        out.line("")
        out.base64(Data(attachment.content))
      }
      out.line("--\(boundary)--")
    }
    bytes = out.data
  }

  /// A new Message-ID's text for a message from `sender` (without angle brackets).
  public static func newMessageID(sender: String) -> String {
    let domain = sender.split(separator: "@").last.map(String.init) ?? ""
    return "\(UUID().uuidString.lowercased())@\(domain.isEmpty ? "dms-settings.invalid" : domain)"
  }

  /// RFC 5322's date-time, in UTC ("Fri, 15 Jan 2027 08:00:00 +0000"); made by hand: a
  /// DateFormatter per message costs more than the rest of the headers.
  static func dateText(_ date: Date) -> String {
    let days = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"]
    let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    let seconds = Int64(date.timeIntervalSince1970.rounded(.down))
    let day = Int64((Double(seconds) / 86_400).rounded(.down))
    let time = seconds - day * 86_400
    // Days to a civil date (Howard Hinnant's algorithm), in the proleptic Gregorian calendar.
    let z = day + 719_468
    let era = (z >= 0 ? z : z - 146_096) / 146_097
    let doe = z - era * 146_097
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
    let mp = (5 * doy + 2) / 153
    let dayOfMonth = doy - (153 * mp + 2) / 5 + 1
    let month = mp < 10 ? mp + 3 : mp - 9
    let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
    let weekday = days[Int(((day % 7) + 7) % 7)]
    func two(_ value: Int64) -> String { value < 10 ? "0\(value)" : "\(value)" }
    return
      "\(weekday), \(two(dayOfMonth)) \(months[Int(month - 1)]) \(year) \(two(time / 3600)):\(two(time / 60 % 60)):\(two(time % 60)) +0000"
  }

  /// `name <address>`, the name quoted or encoded as needed.
  static func mailbox(_ name: String, _ address: String) -> String {
    guard !name.isEmpty else { return address }
    let encoded = encodedWords(name)
    return "\(encoded == name ? quoted(name) : encoded) <\(address)>"
  }

  static func quoted(_ text: String) -> String {
    "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
  }

  /// `text` itself when it is printable ASCII, else RFC 2047 encoded words (UTF-8,
  /// base64), each whole characters and at most 75 characters long, folded.
  static func encodedWords(_ text: String) -> String {
    if text.unicodeScalars.allSatisfy({ $0.value >= 32 && $0.value < 127 }) && text.utf8.count <= 900 {
      return text
    }
    var words: [String] = []
    var chunk = ""
    for character in text {
      if chunk.utf8.count + character.utf8.count > 45 {
        words.append(chunk)
        chunk = ""
      }
      chunk.append(character)
    }
    if !chunk.isEmpty { words.append(chunk) }
    return words.map { "=?UTF-8?B?\(Data($0.utf8).base64EncodedString())?=" }.joined(separator: "\r\n ")
  }

  /// `filename="…"`, or RFC 2231's `filename*=UTF-8''…` for other than plain ASCII.
  static func fileNameParameter(_ name: String) -> String {
    if name.unicodeScalars.allSatisfy({ $0.value >= 32 && $0.value < 127 }) && name.utf8.count <= 900 {
      return "filename=\(quoted(name))"
    }
    let unreserved = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~".utf8)
    let escaped = name.utf8.map { unreserved.contains($0) ? String(UnicodeScalar($0)) : String(format: "%%%02X", $0) }
    return "filename*=UTF-8''\(escaped.joined())"
  }
}

/// Appends lines with CRLF ends.
private struct MIMEWriter {
  var data = Data()

  mutating func line(_ text: String) {
    data.append(contentsOf: text.utf8)
    data.append(contentsOf: [13, 10])
  }

  mutating func header(_ name: String, _ value: String) {
    line("\(name): \(value)")
  }

  /// `bytes` in base64, 76-character lines.
  mutating func base64(_ bytes: Data) {
    let encoded = bytes.base64EncodedData(options: [
      .lineLength76Characters, .endLineWithCarriageReturn, .endLineWithLineFeed,
    ])
    data.append(encoded)
    if !encoded.isEmpty { data.append(contentsOf: [13, 10]) }
  }
}
