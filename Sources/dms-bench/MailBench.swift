import ArgumentParser
import DMSClient
import DMSMessages
import DMSRPC
import DMSStubs
import Foundation

/// `dms-bench mail`: the mail queue end to end (MAIL-2): a company whose account sends to
/// an SMTP server (Postfix's smtp-sink in scripts/bench), --count messages with a
/// --attachment-kib attachment queued as fast as the server takes them, then timed until
/// the worker has sent the last one. Prints one JSON record.
struct MailBench: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "mail", abstract: "Queue messages and time until the worker has sent them all (MAIL-2).")
  @OptionGroup var target: Target
  @Option(help: "The SMTP server the account sends to, as host:port.") var smtp: String
  @Option(help: "How many messages.") var count = 2000
  @Option(help: "The attachment's size in KiB (0: none).") var attachmentKib = 100
  @Option(help: "Enqueue calls in flight at once.") var inFlight = 16
  @Option(help: "The company's short name (created when missing).") var company = "MAILB"
  @Option(help: "A label for the record.") var label = "mail"

  func run() async throws {
    guard let colon = smtp.lastIndex(of: ":"), let smtpPort = Int32(smtp[smtp.index(after: colon)...]) else {
      throw ValidationError("--smtp must be host:port")
    }
    let client = try target.client(token: try await target.token())
    var create = Dms_Settings_V1_CreateCompanyRequest()
    create.company = benchCompany(company)
    do {
      _ = try await Dms_Settings_V1_Companies.Client(client).create(create)
    } catch let error as RPCError where error.code == .alreadyExists {}
    let options = CallOptions(metadata: [MetadataKey.company: company])
    let mail = Dms_Settings_V1_Mail.Client(client)
    var update = Dms_Settings_V1_UpdateMailAccountRequest()
    update.account = try await mail.getAccount(options: options)
    update.account.enabled = true
    update.account.accountName = "bench"
    update.account.senderAddress = "dms@bench.example"
    update.account.server = String(smtp[..<colon])
    update.account.port = smtpPort
    update.account.encryption = .none
    _ = try await mail.updateAccount(update, options: options)

    var message = Dms_Settings_V1_OutgoingMail()
    message.to = ["recipient@bench.example"]
    message.subject = "Benchmark message"
    message.text = "A message of the mail benchmark."
    if attachmentKib > 0 {
      var file = Dms_Settings_V1_MailAttachment()
      file.fileName = "attachment.bin"
      file.content = Data((0..<(attachmentKib * 1024)).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 13) })
      message.attachments = [file]
    }
    var request = Dms_Settings_V1_EnqueueMailRequest()
    request.mail = message
    let enqueue = request
    let start = ContinuousClock.now
    let total = count
    let workers = inFlight
    try await withThrowingTaskGroup(of: Void.self) { group in
      for worker in 0..<workers {
        group.addTask {
          var index = worker
          while index < total {
            _ = try await mail.enqueue(enqueue, options: options)
            index += workers
          }
        }
      }
      try await group.waitForAll()
    }
    let queued = ContinuousClock.now
    // Until nothing is queued or being sent.
    var pending = Dms_Settings_V1_ListMailQueueRequest()
    pending.states = [.queued, .sending]
    pending.limit = 1
    while try await !mail.listQueue(pending, options: options).mails.isEmpty {
      try await Task.sleep(for: .milliseconds(20))
    }
    let done = ContinuousClock.now
    var failedRequest = Dms_Settings_V1_ListMailQueueRequest()
    failedRequest.states = [.failed]
    failedRequest.limit = 500
    let failed = try await mail.listQueue(failedRequest, options: options).mails.count
    await client.close()
    let seconds = Self.seconds(start.duration(to: done))
    let record: [String: Any] = [
      "label": label, "messages": total, "attachment_kib": attachmentKib, "failed": failed,
      "enqueue_seconds": Self.seconds(start.duration(to: queued)), "seconds": seconds,
      "messages_per_second": Double(total) / seconds,
    ]
    let data = try JSONSerialization.data(withJSONObject: record, options: [.sortedKeys])
    print(String(decoding: data, as: UTF8.self))
  }

  static func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
  }
}
