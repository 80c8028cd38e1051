/// A message for the queue (MAIL-2) or the test message (MAIL-26): its recipients, subject,
/// bodies and attachments. The sender (MAIL-9, MAIL-10, MAIL-11) is the account's, taken when
/// the message is sent.
public struct OutgoingMail: Sendable, Hashable {
  /// A file sent with the message (the mail component only, MAIL-2).
  public struct Attachment: Sendable, Hashable {
    /// The name the recipient sees (one line, no folders).
    public var fileName: String
    /// A MIME type (`type/subtype`); empty reads as `application/octet-stream`.
    public var contentType: String
    /// The file's bytes.
    public var content: [UInt8]

    public init(fileName: String, contentType: String = "", content: [UInt8]) {
      self.fileName = fileName
      self.contentType = contentType
      self.content = content
    }
  }

  /// Size limits, checked when a message is queued, not when it is sent (configuration
  /// `mail.max-message-bytes`, `mail.max-attachments`, `mail.max-recipients`).
  public struct Limits: Sendable, Hashable {
    /// The message as sent (headers, bodies, attachments in base64), at most.
    public var maxMessageBytes: Int
    /// Attachments per message, at most.
    public var maxAttachments: Int
    /// Recipients (to, cc and bcc together), at most.
    public var maxRecipients: Int

    public init(maxMessageBytes: Int = 10 << 20, maxAttachments: Int = 20, maxRecipients: Int = 100) {
      self.maxMessageBytes = maxMessageBytes
      self.maxAttachments = maxAttachments
      self.maxRecipients = maxRecipients
    }
  }

  public var to: [String]
  public var cc: [String]
  public var bcc: [String]
  public var subject: String
  /// The plain-text body.
  public var text: String
  /// The HTML body (optional): sent as an alternative to the text.
  public var html: String
  public var attachments: [Attachment]

  public init(
    to: [String], cc: [String] = [], bcc: [String] = [], subject: String, text: String, html: String = "",
    attachments: [Attachment] = []
  ) {
    self.to = to
    self.cc = cc
    self.bcc = bcc
    self.subject = subject
    self.text = text
    self.html = html
    self.attachments = attachments
  }

  /// Every recipient, in order: to, cc, bcc.
  public var recipients: [String] { to + cc + bcc }

  /// The size of the message as sent, near enough for the limit: the bodies and the
  /// attachments in base64 (76-character lines), and room for the headers.
  public var encodedSize: Int {
    func base64(_ count: Int) -> Int {
      let encoded = (count + 2) / 3 * 4
      return encoded + (encoded + 75) / 76 * 2
    }
    let bodies = base64(text.utf8.count) + base64(html.utf8.count)
    let files = attachments.reduce(0) { $0 + base64($1.content.count) + 256 + $1.fileName.utf8.count * 3 }
    return 1024 + bodies + files + recipients.reduce(0) { $0 + $1.utf8.count + 4 } + subject.utf8.count * 3
  }

  /// The message with its texts trimmed, or every broken rule: at least one recipient,
  /// each an RFC 5322 addr-spec, a one-line subject, named attachments of a MIME type,
  /// within `limits`; `attachmentsAllowed` false (the database profile) refuses
  /// attachments (MAIL-2). `rule` names what the checks enforce (MAIL-2 for the queue,
  /// MAIL-27 for the test message); fields are named under `message` (`mail.to[1]`; the
  /// size as `message` itself), or alone when it is empty (`to[1]`; the size as `size`).
  public func validated(limits: Limits, attachmentsAllowed: Bool = true, rule: String, message: String = "mail")
    throws(ValidationFailure) -> OutgoingMail
  {
    var v = Validator()
    let prefix = message.isEmpty ? "" : message + "."
    var mail = self
    let trim: (String) -> String = {
      String($0.drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed())
    }
    mail.to = to.map(trim)
    mail.cc = cc.map(trim)
    mail.bcc = bcc.map(trim)
    mail.subject = trim(subject)
    if mail.recipients.isEmpty { v.add("\(prefix)to", rule, "name at least one recipient") }
    for (field, list) in [("to", mail.to), ("cc", mail.cc), ("bcc", mail.bcc)] {
      for (index, address) in list.enumerated() where !EmailAddress.isValid(address) {
        v.add("\(prefix)\(field)[\(index)]", rule, "is not an e-mail address (local@domain)")
      }
    }
    if mail.recipients.count > limits.maxRecipients {
      v.add("\(prefix)to", rule, "at most \(limits.maxRecipients) recipients (has \(mail.recipients.count))")
    }
    v.requireText(mail.subject, "\(prefix)subject", rule, maxLength: 998)
    v.require(!mail.subject.contains(where: \.isNewline), "\(prefix)subject", rule, "must be one line")
    if !attachmentsAllowed && !attachments.isEmpty {
      v.add("\(prefix)attachments", "MAIL-2", "only the mail component sends attachments (MAIL-1)")
    }
    if attachments.count > limits.maxAttachments {
      v.add("\(prefix)attachments", rule, "at most \(limits.maxAttachments) attachments (has \(attachments.count))")
    }
    for (index, attachment) in attachments.enumerated() {
      let field = "\(prefix)attachments[\(index)]"
      let name = attachment.fileName
      v.requireText(name, "\(field).file_name", rule)
      if name.contains(where: { $0.isNewline || $0 == "/" || $0 == "\\" || $0 == "\u{0}" }) {
        v.add("\(field).file_name", rule, "must be a file name: one line, no folders")
      }
      if !attachment.contentType.isEmpty && !Self.isMIMEType(attachment.contentType) {
        v.add("\(field).content_type", rule, "must be a MIME type (type/subtype)")
      }
    }
    let size = mail.encodedSize
    if size > limits.maxMessageBytes {
      v.add(
        message.isEmpty ? "size" : message, rule,
        "the message would be \(size) bytes as sent, over the limit of \(limits.maxMessageBytes) (mail.max-message-bytes)"
      )
    }
    try v.check()
    for index in mail.attachments.indices where mail.attachments[index].contentType.isEmpty {
      mail.attachments[index].contentType = "application/octet-stream"
    }
    return mail
  }

  /// `type/subtype`, of RFC 2045 token characters.
  static func isMIMEType(_ text: String) -> Bool {
    let parts = text.split(separator: "/", omittingEmptySubsequences: false)
    guard parts.count == 2, text.utf8.count <= 127 else { return false }
    return parts.allSatisfy { part in
      !part.isEmpty
        && part.unicodeScalars.allSatisfy {
          $0.isASCII && $0.value > 32 && !"()<>@,;:\\\"/[]?=".unicodeScalars.contains($0)
        }
    }
  }
}
