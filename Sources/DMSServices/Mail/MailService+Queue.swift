import DMSDomain
import DMSMailTransport
import DMSMessages
import DMSRPC
import DMSStorage
import DMSStubs
import Foundation

/// The queue's calls (MAIL-2, MAIL-3, CFG-3) and the test message (MAIL-26 … MAIL-28).
extension MailService {
  /// The company's saved account, required to send: saved, sending on (MAIL-7); the mail
  /// component or the database profile (MAIL-1). `rule`: the rule a missing account breaks.
  private func sendingAccount(_ context: ServerContext, rule: String) async throws -> (CompanyKey, MailAccount) {
    let noAccount = RPCError(
      code: .failedPrecondition,
      message: "the company has no saved mail account: save one with sending on first (\(rule))")
    guard let key = try await company(context), let account = try await store.read(MailAccount.self, of: key)?.value
    else { throw noAccount }
    guard account.enabled else {
      throw RPCError(code: .failedPrecondition, message: "sending e-mail is off in the mail account (MAIL-7, \(rule))")
    }
    return (key, account)
  }

  /// The company of a queue call (none saved yet: nothing queued).
  private func queueCompany(_ context: ServerContext, id: Int64? = nil) async throws -> CompanyKey {
    guard let key = try await company(context) else {
      throw RPCError(code: .notFound, message: id.map { "no message \($0) in the queue" } ?? "the queue is empty")
    }
    return key
  }

  /// A page's size: 1 … 500, 0 for 100.
  private static func pageSize(_ limit: Int32) throws -> Int {
    guard (0...500).contains(limit) else {
      throw ValidationFailure([RuleViolation(field: "limit", rule: "", message: "must be between 1 and 500 (0: 100)")])
    }
    return limit == 0 ? 100 : Int(limit)
  }

  public func enqueue(
    request: Dms_Settings_V1_EnqueueMailRequest, context: ServerContext
  ) async throws -> Dms_Settings_V1_QueuedMail {
    let given = OutgoingMail(message: request.mail)
    var mail = try given.validated(limits: delivery.limits, rule: "MAIL-2")
    let (key, account) = try await sendingAccount(context, rule: "MAIL-2")
    if account.transport != .component && !mail.attachments.isEmpty {
      // MAIL-2: only the mail component sends attachments.
      mail = try given.validated(limits: delivery.limits, attachmentsAllowed: false, rule: "MAIL-2")
    }
    let queued = try await store.mailQueue.enqueue(
      mail, messageID: MIMEMessage.newMessageID(sender: account.senderAddress), for: key, by: context.auditActor)
    delivery.messageQueued()
    return queued.message
  }

  public func listQueue(
    request: Dms_Settings_V1_ListMailQueueRequest, context: ServerContext
  ) async throws -> Dms_Settings_V1_ListMailQueueResponse {
    let limit = try Self.pageSize(request.limit)
    var states = Set<MailDeliveryState>()
    for state in request.states {
      guard let value = MailDeliveryState(message: state) else {
        throw ValidationFailure([
          RuleViolation(field: "states", rule: "MAIL-2", message: "holds \(state.rawValue), which is not a state")
        ])
      }
      states.insert(value)
    }
    var response = Dms_Settings_V1_ListMailQueueResponse()
    guard let key = try await company(context) else { return response }
    response.mails = try await store.mailQueue.queuedMails(
      of: key, states: states, afterID: request.afterID, limit: limit
    ).map(\.message)
    return response
  }

  public func retryMessage(
    request: Dms_Settings_V1_MailMessageRequest, context: ServerContext
  ) async throws -> Dms_Settings_V1_QueuedMail {
    let key = try await queueCompany(context, id: request.id)
    let queued = try await store.mailQueue.retryMail(request.id, of: key, by: context.auditActor)
    delivery.messageQueued()
    return queued.message
  }

  public func deleteMessage(
    request: Dms_Settings_V1_MailMessageRequest, context: ServerContext
  ) async throws -> Dms_Settings_V1_DeleteMailMessageResponse {
    let key = try await queueCompany(context, id: request.id)
    try await store.mailQueue.deleteMail(request.id, of: key, by: context.auditActor)
    return Dms_Settings_V1_DeleteMailMessageResponse()
  }

  public func listWorkLog(
    request: Dms_Settings_V1_ListMailWorkLogRequest, context: ServerContext
  ) async throws -> Dms_Settings_V1_ListMailWorkLogResponse {
    let limit = try Self.pageSize(request.limit)
    var response = Dms_Settings_V1_ListMailWorkLogResponse()
    guard let key = try await company(context) else { return response }
    response.entries = try await store.mailQueue.workLog(
      of: key, beforeID: request.beforeID, limit: limit
    ).map(\.message)
    return response
  }

  public func sendTestMessage(
    request: Dms_Settings_V1_SendTestMailRequest, context: ServerContext
  ) async throws -> Dms_Settings_V1_SendTestMailResponse {
    // MAIL-26, MAIL-27: a recipient and a subject; attachments with the component only.
    let given = OutgoingMail(
      to: [request.recipient], subject: request.subject, text: request.body,
      attachments: request.attachments.map(OutgoingMail.Attachment.init(message:)))
    let checked = { (attachmentsAllowed: Bool) throws -> OutgoingMail in
      do throws(ValidationFailure) {
        return try given.validated(
          limits: self.delivery.limits, attachmentsAllowed: attachmentsAllowed, rule: "MAIL-27", message: "")
      } catch {
        // The request names its one recipient `recipient`.
        throw ValidationFailure(
          error.violations.map {
            RuleViolation(
              field: $0.field.hasPrefix("to") ? "recipient" : $0.field, rule: $0.rule, message: $0.message)
          })
      }
    }
    var mail = try checked(true)
    // MAIL-27: a saved account; with the database profile, its profile, saved with it in
    // one transaction (MAIL-6) and deleted only with it.
    let (key, account) = try await sendingAccount(context, rule: "MAIL-27")
    if account.transport != .component && !mail.attachments.isEmpty { mail = try checked(false) }
    let timeout = context.seconds(atMost: 60, reserve: 0.2, floor: 0.5)
    var response = Dms_Settings_V1_SendTestMailResponse()
    switch await delivery.sendNow(mail, of: key, timeout: timeout) {
    case .success(let reply):
      response.sent = true  // MAIL-28
      response.reply = reply
      response.replyCode = Int32(reply.prefix(3)) ?? 0
    case .failure(let failure):
      response.reply = failure.message
      response.replyCode = Int32(failure.replyCode)
    }
    return response
  }
}
