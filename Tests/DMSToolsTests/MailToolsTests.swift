import DMSTestSupport
import Foundation
import Testing

/// A helper process (`scripts/lib/*.py`) that prints "READY <port>" and stops when its
/// stdin closes.
final class PythonServer: @unchecked Sendable {  // immutable after init, but for the process
  let port: Int
  let folder: String
  private let process = ChildProcess()
  private let input = Pipe()

  init(_ script: String, _ arguments: [String] = []) throws {
    folder = Tools.temporaryDirectory()
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
    process.arguments =
      [Tools.packageRoot.appendingPathComponent("scripts/lib/" + script).path, "--folder", folder] + arguments
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
      throw Daemon.DaemonFailure(description: "\(script) did not start: \(text)")
    }
    self.port = port
  }

  deinit {
    try? input.fileHandleForWriting.close()
    process.end(waitingUpTo: 3)
  }
}

/// Mail through the real executables: `kill -9` of `dms-settingsd` while its worker is
/// sending loses no queued message, the one in flight sent again with the same Message-ID
/// once its lease ends (MAIL-2, at least once); `dmsctl mail sign-in` (MAIL-22, MAIL-23).
@Suite(
  "mail through the tools: kill -9, sign-in",
  .enabled(
    if: FileManager.default.fileExists(atPath: "/usr/lib/python3/dist-packages/aiosmtpd"),
    "python3-aiosmtpd is not installed"))
struct MailToolsTests {
  /// Adds the company ACME.
  func addACME(_ daemon: Daemon) async throws {
    let run = try await Tools.ctl(
      daemon, "companies", "add", "ACME", "--name", "Acme", "--db-server", "sql01", "--db-name", "XL", "--db-user",
      "dms", "--operator-password-file", "-", input: "Op-Passw0rd\n")
    #expect(run.status == 0, "\(run)")
  }

  /// The Message-ID of each message the SMTP server in `folder` took.
  func messageIDs(_ folder: String) throws -> [String] {
    try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.hasSuffix(".eml") }.map { name in
      let text = try String(contentsOfFile: folder + "/" + name, encoding: .utf8)
      return text.split(separator: "\r\n").first { $0.hasPrefix("Message-ID:") }.map(String.init) ?? ""
    }
  }

  @Test(
    "MAIL-2: kill -9 while sending: after a restart every acknowledged message is sent, the interrupted one again under its Message-ID"
  )
  func killNine() async throws {
    let smtp = try PythonServer("smtp_server.py")
    // The first message is taken but answered only after 20 s: the server dies meanwhile
    // (however slow the machine; a closed connection cancels the answer).
    try "stall 20\n".write(toFile: smtp.folder + "/faults", atomically: true, encoding: .utf8)
    let options = [
      "--settings-multi-company", "true", "--mail-lease-seconds", "10", "--mail-send-timeout-seconds", "5",
      "--mail-poll-seconds", "1",
    ]
    let daemon = try await Daemon.start(options)
    try await addACME(daemon)
    var run: Tools.Run
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
    #expect(try messageIDs(smtp.folder).isEmpty, "the first message was still being answered")

    let again = try await Daemon.start(
      options, port: daemon.port, dataDirectory: daemon.dataDirectory, signIn: false)
    defer { Task { try? await again.stop() } }
    let deadline = ContinuousClock.now + .seconds(30)
    while try messageIDs(smtp.folder).count < 3, ContinuousClock.now < deadline {
      try await Task.sleep(for: .milliseconds(100))
    }
    #expect(Set(try messageIDs(smtp.folder)) == Set(queued.map { "Message-ID: <\($0)>" }))
    let listed = try await Tools.ctl(again, "mail", "queue", "--company", "ACME", "--state", "sent", "--json")
    let states = listed.stdout.matches(of: /"state":\s*"([A-Z_]+)"/).map { String($0.1) }
    #expect(states.count == 3 && states.allSatisfy { $0.hasSuffix("SENT") }, "\(listed)")
    try await again.stop()
  }

  @Test(
    "MAIL-22, MAIL-23: dmsctl mail sign-in prints the URL, takes the browser's redirect on its loopback port and signs in"
  )
  func signIn() async throws {
    // The provider's certificate, made for the test, is trusted through the account.
    let keys = Tools.temporaryDirectory()
    try FileManager.default.createDirectory(atPath: keys, withIntermediateDirectories: true)
    let made = try await Tools.run(
      "/usr/bin/openssl",
      [
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", keys + "/key.pem",
        "-out", keys + "/cert.pem", "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1",
      ])
    #expect(made.status == 0)
    let provider = try PythonServer("oauth_server.py", ["--cert", keys + "/cert.pem", "--key", keys + "/key.pem"])
    let daemon = try await Daemon.start()
    defer { Task { try? await daemon.stop() } }
    try await addACME(daemon)
    let run = try await Tools.ctl(
      daemon, "mail", "set", "--company", "ACME", "--enabled", "true", "--account-name", "DMS", "--sender",
      "dms@acme.example", "--smtp-server", "smtp.office365.com", "--port", "587", "--encryption", "starttls",
      "--login", "dms@acme.example", "--authentication", "oauth2", "--oauth-client-id", "app-1", "--oauth-authority",
      "https://127.0.0.1:\(provider.port)", "--trusted-certificates", keys + "/cert.pem")
    #expect(run.status == 0, "\(run)")
    let port = try freeLoopbackPort()
    let signIn = Tools.startCtl(
      ["mail", "sign-in", "--company", "ACME", "--port", String(port), "--wait", "30"], server: daemon)
    let url = try await signIn.lines.waitForLines(1).first ?? ""
    #expect(url.hasPrefix("https://127.0.0.1:\(provider.port)/oauth2/v2.0/authorize?"))
    // The browser: follows the provider's redirect to dmsctl's loopback port.
    let browser = try await Tools.run("/usr/bin/curl", ["-s", "-k", "-L", url])
    #expect(browser.stdout.contains("return to dmsctl"), "\(browser)")
    #expect(try await signIn.exit.value == 0)
    #expect(signIn.lines.all.last == "Signed in user dms@acme.example")
    let shown = try await Tools.ctl(daemon, "mail", "show", "--company", "ACME")
    #expect(
      shown.stdout.split(separator: "\n").contains { $0.hasPrefix("signed in (MAIL-23)") && $0.hasSuffix(" yes") },
      "\(shown)")
  }

  /// A loopback port free now.
  func freeLoopbackPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
    }
    _ = withUnsafeMutablePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    return Int(UInt16(bigEndian: address.sin_port))
  }
}

/// The database profile through the real executables (MAIL-5, MAIL-6), on SQLite: the
/// storage administrator made with `dms-settingsd hash-password` and configured, as an
/// operator would.
@Suite("mail database profile through the tools")
struct MailProfileToolsTests {
  @Test(
    "MAIL-6 on SQLite: without a storage administrator the profile is refused naming the keys; with one from hash-password, dmsctl saves and deletes it with the password, and a wrong one saves nothing"
  )
  func storageAdministrator() async throws {
    let hashed = try await Tools.run(
      "dms-settingsd", ["hash-password", "--security-password-hash-log-n", "10"], input: "Dba-Passw0rd\n")
    #expect(hashed.status == 0 && hashed.stdout.hasPrefix("$scrypt$ln=10,r=8,p=1$"), "\(hashed)")
    let hash = hashed.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    #expect(!hashed.stdout.contains("Dba-Passw0rd"))
    let empty = try await Tools.run("dms-settingsd", ["hash-password"], input: "")
    #expect(empty.status == 65 && empty.stderr.contains("no password"), "\(empty)")
    let broken = try await Tools.run(
      "dms-settingsd", ["--storage-administrator", "dba", "--storage-administrator-password-hash", "plain"])
    #expect(broken.status == 78 && broken.stderr.contains("hash-password"), "\(broken)")

    let set = [
      "mail", "set", "--company", "ACME", "--transport", "database-profile", "--ssl", "true", "--enabled", "true",
      "--account-name", "DMS", "--sender", "dms@acme.example", "--smtp-server", "smtp.acme.example", "--port", "587",
      "--dba-login", "dba", "--dba-password-file", "-",
    ]
    let bare = try await Daemon.start()
    try await MailToolsTests().addACME(bare)
    let unconfigured = try await Tools.run("dmsctl", set, environment: bare.environment, input: "Dba-Passw0rd\n")
    #expect(unconfigured.status != 0 && unconfigured.stderr.contains("storage.administrator"), "\(unconfigured)")
    try await bare.stop()

    let daemon = try await Daemon.start(
      [
        "--settings-multi-company", "true", "--storage-administrator", "dba", "--storage-administrator-password-hash",
        hash,
      ], dataDirectory: bare.dataDirectory)
    let wrong = try await Tools.run("dmsctl", set, environment: daemon.environment, input: "not it\n")
    #expect(wrong.status != 0 && wrong.stderr.contains("MAIL-6"), "\(wrong)")
    #expect(!wrong.stderr.contains("not it"))
    let shown = try await Tools.ctl(daemon, "mail", "show", "--company", "ACME")
    #expect(shown.stdout.contains("revision") && !shown.stdout.contains("profile exists"), "\(shown)")
    let saved = try await Tools.run("dmsctl", set, environment: daemon.environment, input: "Dba-Passw0rd\n")
    #expect(saved.status == 0, "\(saved)")
    #expect(saved.stdout.contains("DMS ACME") && saved.stdout.contains("SSL (MAIL-19)"), "\(saved)")
    let json = try await Tools.ctl(daemon, "mail", "show", "--company", "ACME", "--json")
    #expect(json.stdout.contains("\"profile_exists\":true"), "\(json)")
    // The log says who, never the password.
    #expect(daemon.log.contains("database-administrator") && !daemon.log.contains("Dba-Passw0rd"))

    let keep = try await Tools.ctl(daemon, "mail", "delete-account", "--company", "ACME")
    #expect(keep.status != 0 && keep.stderr.contains("--dba-login"), "\(keep)")
    let deleted = try await Tools.ctl(
      daemon, "mail", "delete-account", "--company", "ACME", "--dba-login", "dba", "--dba-password-file", "-",
      input: "Dba-Passw0rd\n")
    #expect(deleted.status == 0 && deleted.stdout.contains("database profile"), "\(deleted)")
    let after = try await Tools.ctl(daemon, "mail", "show", "--company", "ACME", "--json")
    #expect(after.stdout.contains("\"profile_exists\":false") && after.stdout.contains("\"revision\":0"), "\(after)")
    try await daemon.stop()
  }
}
