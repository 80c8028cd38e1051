import DMSTestSupport
import Foundation
import Testing

/// A real SMTP server on loopback for the tests: `scripts/lib/smtp_server.py` (Debian's
/// python3-aiosmtpd), with TLS (implicit or STARTTLS) on a certificate made for the
/// test, AUTH PLAIN/LOGIN and XOAUTH2, a folder of the messages it took, and faults on
/// demand (a reply to DATA, or a dropped connection).
final class SMTPTestServer: @unchecked Sendable {  // immutable after start, but for the process
  enum Mode: String { case plain, starttls, tls }

  /// What arrived: the envelope, the sign-in and the message as parsed by Python's own
  /// e-mail package (`scripts/lib/mime_parts.py`).
  struct Received {
    let mailFrom: String
    let recipients: [String]
    let login: String?
    let auth: String?
    let tls: Bool
    let peerPort: Int
    let raw: Data
    let headers: [String: String]
    let parts: [Part]
    let defects: [String]

    struct Part {
      let contentType: String
      let fileName: String?
      let disposition: String?
      let bytes: Data
    }
  }

  static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
  static let available = FileManager.default.fileExists(atPath: "/usr/lib/python3/dist-packages/aiosmtpd")

  let port: Int
  let folder: URL
  /// The certificate the server presents (PEM), for TLS modes.
  let certificatePEM: String
  private let process: ChildProcess
  private let input: Pipe

  init(
    mode: Mode = .plain, user: String? = nil, password: String? = nil, bearer: String? = nil,
    bearerFile: String? = nil
  ) throws {
    folder = FileManager.default.temporaryDirectory.appendingPathComponent("dms-smtp-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    var arguments = [
      Self.packageRoot.appendingPathComponent("scripts/lib/smtp_server.py").path, "--folder", folder.path, "--mode",
      mode.rawValue,
    ]
    if mode != .plain {
      try Self.run(
        "/usr/bin/openssl",
        [
          "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
          folder.appendingPathComponent("key.pem").path, "-out", folder.appendingPathComponent("cert.pem").path,
          "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ])
      arguments += [
        "--cert", folder.appendingPathComponent("cert.pem").path, "--key",
        folder.appendingPathComponent("key.pem").path,
      ]
      certificatePEM = try String(contentsOf: folder.appendingPathComponent("cert.pem"), encoding: .utf8)
    } else {
      certificatePEM = ""
    }
    if let user { arguments += ["--user", user] }
    if let password { arguments += ["--password", password] }
    if let bearer { arguments += ["--bearer", bearer] }
    if let bearerFile { arguments += ["--bearer-file", bearerFile] }
    process = ChildProcess()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
    process.arguments = arguments
    input = Pipe()
    let output = Pipe()
    process.standardInput = input
    process.standardOutput = output
    process.standardError = FileHandle.nullDevice
    try process.run()
    port = try Self.readyPort(output)
  }

  struct SMTPTestServerFailed: Error { let output: String }

  /// The port of a helper's first line, "READY <port>".
  static func readyPort(_ output: Pipe) throws -> Int {
    var line = Data()
    while !line.contains(10) {
      let chunk = output.fileHandleForReading.availableData
      if chunk.isEmpty { break }
      line.append(chunk)
    }
    let text = String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    guard text.hasPrefix("READY "), let port = Int(text.dropFirst(6)) else { throw SMTPTestServerFailed(output: text) }
    return port
  }

  deinit { stop() }

  /// Stops the server: its stdin closed, it stops (SIGKILL after 3 s; a child of the
  /// test process may have SIGTERM blocked).
  func stop() {
    try? input.fileHandleForWriting.close()
    process.end(waitingUpTo: 3)
  }

  /// The next messages' DATA get these answers instead, in order ("451 4.3.0 later",
  /// "550 5.1.1 unknown", "drop").
  func fault(_ replies: [String]) throws {
    try Data(replies.map { $0 + "\n" }.joined().utf8).write(to: folder.appendingPathComponent("faults"))
  }

  /// Every message taken so far, oldest first.
  func received() throws -> [Received] {
    let names = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".eml") }
      .sorted { a, b in
        let (x, y) = (a.split(separator: "-"), b.split(separator: "-"))
        return (Int(x[0]) ?? 0, a) < (Int(y[0]) ?? 0, b)
      }
    return try names.map { name in
      let eml = folder.appendingPathComponent(name)
      let envelope =
        try JSONSerialization.jsonObject(
          with: Data(contentsOf: eml.deletingPathExtension().appendingPathExtension("json"))) as! [String: Any]
      let parsed =
        try JSONSerialization.jsonObject(
          with: Self.run(
            "/usr/bin/python3", [Self.packageRoot.appendingPathComponent("scripts/lib/mime_parts.py").path, eml.path]))
        as! [String: Any]
      return Received(
        mailFrom: envelope["mail_from"] as! String, recipients: envelope["rcpt_tos"] as! [String],
        login: envelope["login"] as? String, auth: envelope["auth"] as? String, tls: envelope["tls"] as! Bool,
        peerPort: envelope["peer_port"] as! Int, raw: try Data(contentsOf: eml),
        headers: parsed["headers"] as! [String: String],
        parts: (parsed["parts"] as! [[String: Any]]).map {
          Received.Part(
            contentType: $0["content_type"] as! String, fileName: $0["file_name"] as? String,
            disposition: $0["disposition"] as? String, bytes: Data(base64Encoded: $0["bytes"] as! String)!)
        },
        defects: parsed["defects"] as! [String])
    }
  }

  /// Waits until `count` messages arrived (or `seconds` passed); what arrived.
  func waitForMessages(_ count: Int, seconds: Double = 20) async throws -> [Received] {
    let deadline = Date().addingTimeInterval(seconds)
    while true {
      let messages = try received()
      if messages.count >= count || Date() > deadline { return messages }
      try await Task.sleep(for: .milliseconds(50))
    }
  }

  @discardableResult
  static func run(_ executable: String, _ arguments: [String]) throws -> Data {
    let process = ChildProcess()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = FileHandle.nullDevice
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return data
  }
}

/// A helper HTTPS server (`scripts/lib/<script>`) on a certificate made for the test, for
/// 127.0.0.1: it prints "READY <port>" and stops when its stdin closes.
final class HTTPSStandIn: @unchecked Sendable {  // immutable after start, but for the process
  let port: Int
  let folder: URL
  let certificatePEM: String
  private let process = ChildProcess()
  private let input = Pipe()

  var origin: String { "https://127.0.0.1:\(port)" }

  init(_ script: String, _ arguments: [String]) throws {
    folder = FileManager.default.temporaryDirectory.appendingPathComponent("dms-standin-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    let cert = folder.appendingPathComponent("cert.pem").path
    let key = folder.appendingPathComponent("key.pem").path
    try SMTPTestServer.run(
      "/usr/bin/openssl",
      [
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert,
        "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
      ])
    certificatePEM = try String(contentsOfFile: cert, encoding: .utf8)
    process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
    process.arguments =
      [
        SMTPTestServer.packageRoot.appendingPathComponent("scripts/lib/" + script).path, "--folder", folder.path,
        "--cert", cert, "--key", key,
      ] + arguments
    let output = Pipe()
    process.standardInput = input
    process.standardOutput = output
    process.standardError = FileHandle.nullDevice
    try process.run()
    port = try SMTPTestServer.readyPort(output)
  }

  deinit {
    try? input.fileHandleForWriting.close()
    process.end(waitingUpTo: 3)
  }

  /// The lines of the file `name` in its folder (none when it does not exist).
  func lines(_ name: String) -> [String] {
    ((try? String(contentsOf: folder.appendingPathComponent(name), encoding: .utf8)) ?? "")
      .split(separator: "\n").map(String.init)
  }

  /// Writes the file `name` in its folder (nil: removes it).
  func write(_ name: String, _ text: String?) throws {
    let path = folder.appendingPathComponent(name)
    if let text {
      try text.write(to: path, atomically: true, encoding: .utf8)
    } else {
      try? FileManager.default.removeItem(at: path)
    }
  }
}

/// A stand-in OAuth2 identity provider (`scripts/lib/oauth_server.py`).
final class OAuthTestServer: Sendable {
  let server: HTTPSStandIn

  var authority: String { server.origin }
  var certificatePEM: String { server.certificatePEM }
  var bearersFile: String { server.folder.appendingPathComponent("bearers").path }

  init(expiresIn: Int = 3600) async throws {
    server = try await HTTPSStandIn.start("oauth_server.py", ["--expires", String(expiresIn)])
  }

  /// Refuses refresh tokens from now on (or no longer).
  func refuseRefresh(_ refuse: Bool) throws {
    try server.write("refuse-refresh", refuse ? "" : nil)
  }

  /// The grant types of the token requests so far.
  func grants() -> [String] { server.lines("grants") }

  /// What the browser does at `authorizationURL`: the redirect's code and state (the
  /// provider signs in at once).
  func signIn(_ authorizationURL: String) throws -> (code: String, state: String) {
    let location = String(
      decoding: try SMTPTestServer.run(
        "/usr/bin/curl", ["-s", "-k", "-o", "/dev/null", "-w", "%{redirect_url}", authorizationURL]), as: UTF8.self)
    let items = URLComponents(string: location)?.queryItems ?? []
    return (
      items.first { $0.name == "code" }?.value ?? "", items.first { $0.name == "state" }?.value ?? ""
    )
  }
}

/// Runs blocking `body` (starting a helper process and waiting for its READY line,
/// openssl) on a thread of its own, not on Swift's cooperative pool: on a machine with
/// two cores that pool has two threads, and a test blocking one slows every other test
/// in the process (timing bounds were crossed by it).
func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
  try await withCheckedThrowingContinuation { continuation in
    let thread = Thread { continuation.resume(with: Result { try body() }) }
    thread.start()
  }
}

extension SMTPTestServer {
  /// `init` off the cooperative pool.
  static func start(
    mode: Mode = .plain, user: String? = nil, password: String? = nil, bearer: String? = nil,
    bearerFile: String? = nil
  ) async throws -> SMTPTestServer {
    try await offPool {
      try SMTPTestServer(mode: mode, user: user, password: password, bearer: bearer, bearerFile: bearerFile)
    }
  }
}

extension HTTPSStandIn {
  /// `init` off the cooperative pool.
  static func start(_ script: String, _ arguments: [String]) async throws -> HTTPSStandIn {
    try await offPool { try HTTPSStandIn(script, arguments) }
  }
}
