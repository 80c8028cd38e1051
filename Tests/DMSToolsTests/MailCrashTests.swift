import Foundation
import Testing

/// The mail queue across a crash (MAIL-2): `kill -9` of `dms-settingsd` while its worker
/// is sending loses no queued message; the one in flight is sent again with the same
/// Message-ID once its lease ends (at least once).
@Suite(
  "mail queue across kill -9",
  .enabled(
    if: FileManager.default.fileExists(atPath: "/usr/lib/python3/dist-packages/aiosmtpd"),
    "python3-aiosmtpd is not installed"))
struct MailCrashTests {
  /// `scripts/lib/smtp_server.py` on a port of its own; its folder.
  final class SMTPServer: @unchecked Sendable {  // immutable after init, but for the process
    let port: Int
    let folder: String
    private let process = Process()
    private let input = Pipe()

    init() throws {
      folder = Tools.temporaryDirectory()
      try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
      process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
      process.arguments = [
        Tools.packageRoot.appendingPathComponent("scripts/lib/smtp_server.py").path, "--folder", folder,
      ]
      let output = Pipe()
      process.standardInput = input
      process.standardOutput = output
      process.standardError = FileHandle.nullDevice
      try process.run()
      var line = Data()
      while !line.contains(10) {
        let chunk = output.fileHandleForReading.availableData
        if chunk.isEmpty { break }
        line.append(chunk)
      }
      let text = String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
      guard text.hasPrefix("READY "), let port = Int(text.dropFirst(6)) else {
        throw Daemon.DaemonFailure(description: "the SMTP server did not start: \(text)")
      }
      self.port = port
    }

    deinit {
      try? input.fileHandleForWriting.close()
      for _ in 0..<300 where process.isRunning { usleep(10_000) }
      if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }

    /// The Message-ID of each message taken.
    func messageIDs() throws -> [String] {
      try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.hasSuffix(".eml") }.map { name in
        let text = try String(contentsOfFile: folder + "/" + name, encoding: .utf8)
        return text.split(separator: "\r\n").first { $0.hasPrefix("Message-ID:") }.map(String.init) ?? ""
      }
    }
  }

  @Test(
    "MAIL-2: kill -9 while sending: after a restart every acknowledged message is sent, the interrupted one again under its Message-ID"
  )
  func killNine() async throws {
    let smtp = try SMTPServer()
    // The first message is taken but answered only after 4 s: the server dies meanwhile.
    try "stall 4\n".write(toFile: smtp.folder + "/faults", atomically: true, encoding: .utf8)
    let options = [
      "--settings-multi-company", "true", "--mail-lease-seconds", "10", "--mail-send-timeout-seconds", "5",
      "--mail-poll-seconds", "1",
    ]
    let daemon = try await Daemon.start(options)
    var run = try await Tools.ctl(
      daemon, "companies", "add", "ACME", "--name", "Acme", "--db-server", "sql01", "--db-name", "XL", "--db-user",
      "dms", "--operator-password-file", "-", input: "Op-Passw0rd\n")
    #expect(run.status == 0, "\(run)")
    run = try await Tools.ctl(
      daemon, "mail", "set", "--company", "ACME", "--enabled", "true", "--account-name", "DMS", "--sender",
      "dms@acme.example", "--smtp-server", "127.0.0.1", "--port", String(smtp.port))
    #expect(run.status == 0, "\(run)")
    var queued: [String] = []
    for n in 1...3 {
      run = try await Tools.ctl(
        daemon, "mail", "send", "--company", "ACME", "--to", "anna@acme.example", "--subject", "Wiadomość \(n)",
        "--json")
      #expect(run.status == 0, "\(run)")
      if let id = run.stdout.firstMatch(of: /"message_id":\s*"([^"]+)"/)?.1 { queued.append(String(id)) }
    }
    #expect(queued.count == 3)
    try await Task.sleep(for: .seconds(1.5))
    try await daemon.kill()
    #expect(try smtp.messageIDs().isEmpty, "the first message was still being answered")

    let again = try await Daemon.start(
      options, port: daemon.port, dataDirectory: daemon.dataDirectory, signIn: false)
    defer { Task { try? await again.stop() } }
    let deadline = ContinuousClock.now + .seconds(30)
    while try smtp.messageIDs().count < 3, ContinuousClock.now < deadline {
      try await Task.sleep(for: .milliseconds(100))
    }
    #expect(Set(try smtp.messageIDs()) == Set(queued.map { "Message-ID: <\($0)>" }))
    let listed = try await Tools.ctl(again, "mail", "queue", "--company", "ACME", "--state", "sent", "--json")
    let states = listed.stdout.matches(of: /"state":\s*"([A-Z_]+)"/).map { String($0.1) }
    #expect(states.count == 3 && states.allSatisfy { $0.hasSuffix("SENT") }, "\(listed)")
    try await again.stop()
  }
}
