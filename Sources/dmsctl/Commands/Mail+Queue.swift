import ArgumentParser
import DMSClient
import DMSMessages
import DMSRPC
import DMSStubs
import Foundation

#if canImport(Glibc)
  import Glibc
#endif

/// `dmsctl mail test|send|queue|retry|delete|worklog`: the test message (MAIL-26 … 28)
/// and the queue (MAIL-2, MAIL-3).
extension Mail {
  static let states: [String: Dms_Settings_V1_MailDeliveryState] = [
    "queued": .queued, "sending": .sending, "sent": .sent, "failed": .failed,
  ]

  /// The files named as attachments.
  static func attachments(_ paths: [String]) throws -> [Dms_Settings_V1_MailAttachment] {
    try paths.map { path in
      guard let data = FileManager.default.contents(atPath: path) else {
        throw ValidationError("--attach: cannot read \(path)")
      }
      var file = Dms_Settings_V1_MailAttachment()
      file.fileName = (path as NSString).lastPathComponent
      file.content = data
      return file
    }
  }

  struct Test: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Send a test message now with the saved account (MAIL-26 … 28): sent, or the server's error.",
      discussion: "Exit code 0 when the server took the message, 1 when it did not (its answer is printed).")
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var company: CompanyOption
    @Option(help: "MAIL-26: the recipient's address.") var to: String
    @Option(help: "MAIL-27: the subject.") var subject = "DMS test message"
    @Option(help: "The body.") var body = "A test message from the DMS settings."
    @Option(help: "A file to attach (repeat for more; the mail component only).") var attach: [String] = []

    func run() async throws {
      var request = Dms_Settings_V1_SendTestMailRequest()
      request.recipient = to
      request.subject = subject
      request.body = body
      request.attachments = try Mail.attachments(attach)
      try await connection.withClient(flags: FlagNames(byField: ["recipient": "--to", "subject": "--subject"])) {
        client in
        let response = try await Dms_Settings_V1_Mail.Client(client).sendTestMessage(
          request, options: company.options(connection))
        if connection.json {
          Output.message(response)
        } else if response.sent {
          print("sent (MAIL-28): \(response.reply)")
        } else {
          print("not sent: \(response.reply)")
        }
        if !response.sent { throw Output.Exit.rpcError }
      }
    }
  }

  struct Send: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Queue a message for the worker to send (MAIL-2), as another service would.")
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var company: CompanyOption
    @Option(help: "A recipient (repeat for more).") var to: [String] = []
    @Option(help: "A copy's recipient (repeat for more).") var cc: [String] = []
    @Option(help: "A blind copy's recipient (repeat for more).") var bcc: [String] = []
    @Option(help: "The subject.") var subject: String
    @Option(help: "The plain-text body.") var text = ""
    @Option(help: "A file whose content is the HTML body.") var htmlFile: String?
    @Option(help: "A file to attach (repeat for more).") var attach: [String] = []

    func run() async throws {
      var request = Dms_Settings_V1_EnqueueMailRequest()
      request.mail.to = to
      request.mail.cc = cc
      request.mail.bcc = bcc
      request.mail.subject = subject
      request.mail.text = text
      if let htmlFile {
        guard let html = FileManager.default.contents(atPath: htmlFile) else {
          throw ValidationError("--html-file: cannot read \(htmlFile)")
        }
        request.mail.html = String(decoding: html, as: UTF8.self)
      }
      request.mail.attachments = try Mail.attachments(attach)
      try await connection.withClient(flags: FlagNames(byField: ["mail.to": "--to", "mail.subject": "--subject"])) {
        client in
        let queued = try await Dms_Settings_V1_Mail.Client(client).enqueue(
          request, options: company.options(connection))
        if connection.json { return Output.message(queued) }
        print("queued as \(queued.id) (Message-ID <\(queued.messageID)>)")
      }
    }
  }

  struct Queue: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "List the queue: each message's state, attempts, next attempt and last error (MAIL-2).")
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var company: CompanyOption
    @Option(help: "Only these states: queued, sending, sent, failed (repeat for more).") var state: [String] = []
    @Option(help: "Messages after this id.") var after: Int64 = 0
    @Option(help: "At most this many (1-500).") var limit: Int32 = 100

    func validate() throws {
      for name in state where Mail.states[name.lowercased()] == nil {
        throw ValidationError("--state must be queued, sending, sent or failed (not \(name))")
      }
    }

    func run() async throws {
      var request = Dms_Settings_V1_ListMailQueueRequest()
      request.states = state.compactMap { Mail.states[$0.lowercased()] }
      request.afterID = after
      request.limit = limit
      try await connection.withClient(flags: FlagNames(byField: ["limit": "--limit"])) { client in
        let response = try await Dms_Settings_V1_Mail.Client(client).listQueue(
          request, options: company.options(connection))
        if connection.json { return Output.message(response) }
        Output.table(
          ["ID", "STATE", "ATTEMPTS", "WHEN", "TO", "SUBJECT", "LAST ERROR"],
          response.mails.map { mail in
            let when =
              switch mail.state {
              case .queued: "next " + Session.time(mail.nextAttemptAtUnixMs)
              case .sent: "sent " + Session.time(mail.sentAtUnixMs)
              default: "queued " + Session.time(mail.createdAtUnixMs)
              }
            return [
              String(mail.id), Mail.name(mail.state, in: Mail.states, default: "?"), String(mail.attempts), when,
              (mail.to + mail.cc + mail.bcc).joined(separator: ", "), mail.subject, mail.lastError,
            ]
          })
      }
    }
  }

  struct Retry: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Put a failed message back in the queue (audited).")
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var company: CompanyOption
    @Argument(help: "The message's id (dmsctl mail queue).") var id: Int64

    func run() async throws {
      var request = Dms_Settings_V1_MailMessageRequest()
      request.id = id
      try await connection.withClient(flags: FlagNames(byField: [:])) { client in
        let queued = try await Dms_Settings_V1_Mail.Client(client).retryMessage(
          request, options: company.options(connection))
        if connection.json { return Output.message(queued) }
        print("message \(queued.id) queued again")
      }
    }
  }

  struct Delete: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Delete a message and its attachments from the queue (audited).")
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var company: CompanyOption
    @Argument(help: "The message's id (dmsctl mail queue).") var id: Int64

    func run() async throws {
      var request = Dms_Settings_V1_MailMessageRequest()
      request.id = id
      try await connection.withClient(flags: FlagNames(byField: [:])) { client in
        let response = try await Dms_Settings_V1_Mail.Client(client).deleteMessage(
          request, options: company.options(connection))
        if connection.json { return Output.message(response) }
        print("message \(id) deleted")
      }
    }
  }

  struct WorkLog: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "worklog", abstract: "The work log: each failed attempt with the server's reply (MAIL-3).")
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var company: CompanyOption
    @Option(help: "Entries before this id (0: from the newest).") var before: Int64 = 0
    @Option(help: "At most this many (1-500).") var limit: Int32 = 100

    func run() async throws {
      var request = Dms_Settings_V1_ListMailWorkLogRequest()
      request.beforeID = before
      request.limit = limit
      try await connection.withClient(flags: FlagNames(byField: ["limit": "--limit"])) { client in
        let response = try await Dms_Settings_V1_Mail.Client(client).listWorkLog(
          request, options: company.options(connection))
        if connection.json { return Output.message(response) }
        Output.table(
          ["ID", "AT", "MESSAGE", "ATTEMPT", "OUTCOME", "REPLY"],
          response.entries.map {
            [
              String($0.id), Session.time($0.atUnixMs), String($0.mailID), String($0.attempt), $0.outcome,
              $0.message,
            ]
          })
      }
    }
  }
}

extension Mail {
  struct SignIn: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "sign-in",
      abstract: "Sign the OAuth2 account in (MAIL-22, MAIL-23): open the printed URL in a browser on this machine.",
      discussion: """
        Listens on 127.0.0.1:--port for the provider's redirect (register http://127.0.0.1:PORT/ as a redirect URI of
        the application), prints the sign-in URL, waits for the browser to come back, and completes the sign-in.
        """)
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var company: CompanyOption
    @Option(help: "The loopback port the redirect comes to.") var port: Int = 53682
    @Option(help: "Seconds to wait for the browser.") var wait: Int = 300

    func run() async throws {
      let listener = try LoopbackListener(port: port)
      try await connection.withClient(flags: FlagNames(byField: ["redirect_uri": "--port"])) { client in
        let mail = Dms_Settings_V1_Mail.Client(client)
        let options = company.options(connection)
        var begin = Dms_Settings_V1_BeginMailOAuthRequest()
        begin.redirectUri = "http://127.0.0.1:\(port)/"
        let started = try await mail.beginOauthSignIn(begin, options: options)
        FileHandle.standardError.write(Data("open this URL in a browser to sign in (MAIL-22):\n".utf8))
        // Written at once (print buffers on a pipe): whoever reads it needs it now.
        FileHandle.standardOutput.write(Data((started.authorizationURL + "\n").utf8))
        let query = try await listener.awaitRedirect(seconds: wait)
        var complete = Dms_Settings_V1_CompleteMailOAuthRequest()
        complete.state = query["state"] ?? ""
        complete.code = query["code"] ?? ""
        if complete.code.isEmpty {
          throw ValidationError(
            "the provider sent no code: \(query["error"] ?? "") \(query["error_description"] ?? "")")
        }
        let result = try await mail.completeOauthSignIn(complete, options: options)
        if connection.json { return Output.message(result) }
        print(result.message)
        if !result.signedIn { throw Output.Exit.rpcError }
      }
    }
  }
}

/// One HTTP request on a loopback port: the OAuth2 redirect (RFC 8252 §7.3).
final class LoopbackListener: Sendable {
  private let socket: Int32

  init(port: Int) throws {
    socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var yes: Int32 = 1
    setsockopt(socket, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    let bound = withUnsafePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        bind(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
      }
    }
    guard bound == 0, listen(socket, 4) == 0 else {
      close(socket)
      throw ValidationError("--port \(port): cannot listen on 127.0.0.1:\(port)")
    }
  }

  deinit { close(socket) }

  /// The query of the first request that carries a code or an error.
  func awaitRedirect(seconds: Int) async throws -> [String: String] {
    let socket = self.socket
    return try await withCheckedThrowingContinuation { continuation in
      Thread {
        var timeout = timeval(tv_sec: seconds, tv_usec: 0)
        setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        while true {
          let peer = accept(socket, nil, nil)
          guard peer >= 0 else {
            continuation.resume(throwing: ValidationError("no redirect came back within \(seconds) s"))
            return
          }
          var buffer = [UInt8](repeating: 0, count: 8192)
          let count = read(peer, &buffer, buffer.count)
          let request = String(decoding: buffer.prefix(max(count, 0)), as: UTF8.self)
          let target = request.split(separator: " ").dropFirst().first.map(String.init) ?? ""
          let items = URLComponents(string: "http://127.0.0.1" + target)?.queryItems ?? []
          let query = Dictionary(items.map { ($0.name, $0.value ?? "") }, uniquingKeysWith: { a, _ in a })
          let page = "You may close this window and return to dmsctl."
          let answer =
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: \(page.utf8.count)\r\nConnection: close\r\n\r\n\(page)"
          _ = answer.withCString { write(peer, $0, strlen($0)) }
          close(peer)
          if query["code"] != nil || query["error"] != nil {
            continuation.resume(returning: query)
            return
          }
        }
      }.start()
    }
  }
}
