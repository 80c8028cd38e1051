import DMSDomain
import DMSMessages
import DMSStorage
import Foundation

extension OutgoingMail {
  /// The message a request sends (checked afterwards, `validated`).
  init(message: Dms_Settings_V1_OutgoingMail) {
    self.init(
      to: message.to, cc: message.cc, bcc: message.bcc, subject: message.subject, text: message.text,
      html: message.html, attachments: message.attachments.map(Attachment.init(message:)))
  }
}

extension OutgoingMail.Attachment {
  init(message: Dms_Settings_V1_MailAttachment) {
    self.init(fileName: message.fileName, contentType: message.contentType, content: Array(message.content))
  }
}

extension MailDeliveryState {
  init?(message: Dms_Settings_V1_MailDeliveryState) {
    switch message {
    case .queued: self = .queued
    case .sending: self = .sending
    case .sent: self = .sent
    case .failed: self = .failed
    case .unspecified, .UNRECOGNIZED: return nil
    }
  }

  var message: Dms_Settings_V1_MailDeliveryState {
    switch self {
    case .queued: .queued
    case .sending: .sending
    case .sent: .sent
    case .failed: .failed
    }
  }
}

extension Date {
  var unixMilliseconds: Int64 { Int64((timeIntervalSince1970 * 1000).rounded()) }
}

extension QueuedMail {
  var message: Dms_Settings_V1_QueuedMail {
    var message = Dms_Settings_V1_QueuedMail()
    message.id = id
    message.messageID = messageID
    message.state = state.message
    message.to = to
    message.cc = cc
    message.bcc = bcc
    message.subject = subject
    message.attachmentNames = attachmentNames
    message.sizeBytes = sizeBytes
    message.attempts = Int32(clamping: attempts)
    if state == .queued { message.nextAttemptAtUnixMs = nextAttemptAt.unixMilliseconds }
    message.lastError = lastError
    message.createdAtUnixMs = createdAt.unixMilliseconds
    message.sentAtUnixMs = sentAt?.unixMilliseconds ?? 0
    return message
  }
}

extension MailWorkLogEntry {
  var message: Dms_Settings_V1_MailWorkLogEntry {
    var message = Dms_Settings_V1_MailWorkLogEntry()
    message.id = id
    message.atUnixMs = at.unixMilliseconds
    message.mailID = mailID ?? 0
    message.messageID = messageID
    message.attempt = Int32(clamping: attempt)
    message.outcome = outcome.outcome
    message.replyCode = Int32(clamping: outcome.replyCode)
    message.message = outcome.message
    return message
  }
}
