import DMSDomain
import Foundation

/// The mail queue (MAIL-2, MAIL-3, CFG-3): messages waiting to be sent, their
/// attachments, and the work log of failures; per company, in the store's database, so
/// that a queued message survives a crash and is sent at least once.
public protocol MailQueue: Sendable {
  /// Queues `mail` (already checked) for `company`, due now.
  func enqueue(_ mail: OutgoingMail, messageID: String, for company: CompanyKey, by actor: AuditActor) async throws
    -> QueuedMail

  /// The company's messages after `afterID`, oldest first, at most `limit`; of `states`
  /// (all when empty).
  func queuedMails(of company: CompanyKey, states: Set<MailDeliveryState>, afterID: Int64, limit: Int)
    async throws -> [QueuedMail]

  /// Claims up to `limit` messages due at `now` (queued and due, or sending with a lease
  /// that ran out), of every company, for `lease` seconds: they turn `sending`, their
  /// attempts counted. On a database several instances share, two never claim the same.
  func claimDueMails(now: Date, lease: Double, limit: Int) async throws -> [ClaimedMail]

  /// The earliest time a message falls due (a queued one's next attempt, a sending one's
  /// lease end); nil when none waits.
  func nextDueDate() async throws -> Date?

  /// Records messages sent: deleted with their attachments (`delete`, CFG-3 true) or kept
  /// as sent. A claim whose lease was taken over since changes nothing.
  func recordSent(_ claims: [ClaimedMail], at: Date, delete: Bool) async throws

  /// Records a failed attempt in the work log (MAIL-3) and queues the message again at
  /// `retryAt`, or fails it when nil.
  func recordFailure(_ claim: ClaimedMail, outcome: MailFailureOutcome, at: Date, retryAt: Date?) async throws

  /// Puts a failed message back in the queue, due now, its attempts counted afresh
  /// (audited). Throws `StoreError` notFound, or failedPrecondition when it is not failed.
  func retryMail(_ id: Int64, of company: CompanyKey, by actor: AuditActor) async throws -> QueuedMail

  /// Deletes a message with its attachments (audited); not one being sent
  /// (failedPrecondition), notFound when there is none.
  func deleteMail(_ id: Int64, of company: CompanyKey, by actor: AuditActor) async throws

  /// The company's work log before `beforeID` (0: from the newest), newest first.
  func workLog(of company: CompanyKey, beforeID: Int64, limit: Int) async throws -> [MailWorkLogEntry]
}

/// A queued message as listed: everything but the bodies and the attachments' bytes.
public struct QueuedMail: Sendable, Hashable {
  public var id: Int64
  public var company: CompanyKey
  public var messageID: String
  public var state: MailDeliveryState
  public var to: [String]
  public var cc: [String]
  public var bcc: [String]
  public var subject: String
  public var attachmentNames: [String]
  public var sizeBytes: Int64
  public var attempts: Int
  public var nextAttemptAt: Date
  public var lastError: String
  public var createdAt: Date
  public var sentAt: Date?
}

/// A message a worker claimed: the whole of it, and the claim.
public struct ClaimedMail: Sendable, Hashable {
  public var queued: QueuedMail
  public var mail: OutgoingMail
  /// The claim's token: only its holder records the outcome.
  public var lease: String
}

/// A failed attempt, as the work log keeps it (MAIL-3).
public struct MailFailureOutcome: Sendable, Hashable {
  /// `transient` (tried again later), `permanent` (failed), `gave_up` (out of attempts).
  public var outcome: String
  public var replyCode: Int
  /// The server's reply or what failed; never a secret.
  public var message: String

  public init(outcome: String, replyCode: Int, message: String) {
    self.outcome = outcome
    self.replyCode = replyCode
    self.message = message
  }
}

/// One row of the work log (`DF_WorkLogEntries`).
public struct MailWorkLogEntry: Sendable, Hashable {
  public var id: Int64
  public var at: Date
  public var mailID: Int64?
  public var messageID: String
  public var attempt: Int
  public var outcome: MailFailureOutcome
}
