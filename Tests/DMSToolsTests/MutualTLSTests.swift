import Foundation
import Testing

/// Mutual TLS (docs/SECURITY.md#mutual-tls): the worked openssl example of the docs,
/// run as written, then a server that requires client certificates and clients with
/// none, one from another CA, and the right one.
@Suite("Mutual TLS")
struct MutualTLSTests {
  /// The `sh` block after `<!-- doc-test: mtls -->` in docs/SECURITY.md.
  static func example() throws -> String {
    let text = try String(
      contentsOf: Tools.packageRoot.appendingPathComponent("docs/SECURITY.md"), encoding: .utf8)
    let lines = text.components(separatedBy: "\n")
    guard let marker = lines.firstIndex(of: "<!-- doc-test: mtls -->"), lines[marker + 1] == "```sh",
      let end = lines[(marker + 2)...].firstIndex(of: "```")
    else { throw Daemon.DaemonFailure(description: "docs/SECURITY.md has no mtls example") }
    return lines[(marker + 2)..<end].joined(separator: "\n")
  }

  /// Runs the docs' example in a new folder: its path.
  static func makeCertificates() async throws -> String {
    let folder = Tools.temporaryDirectory()
    let made = try await Tools.run(
      "/bin/sh", ["-e", "-c", try example()], workingDirectory: folder, timeout: .seconds(120))
    guard made.status == 0 else { throw Daemon.DaemonFailure(description: "the mtls example failed: \(made)") }
    return folder
  }

  @Test("a client without a certificate, or with one from another CA, gets nothing; the right one signs in")
  func requiredClientCertificates() async throws {
    let pki = try await Self.makeCertificates()
    let other = try await Self.makeCertificates()
    let data = Tools.temporaryDirectory()
    let made = try await Tools.run(
      "dms-settingsd", ["bootstrap-admin", "--login", Daemon.login, "--data-directory", data] + Daemon.hashCost,
      input: Daemon.password + "\n")
    #expect(made.status == 0, "\(made)")
    let server = try await Daemon.start(
      [
        "--server-tls-certificate", pki + "/server.pem", "--server-tls-key", pki + "/server.key",
        "--server-tls-client-ca", pki + "/ca.pem",
      ], dataDirectory: data, signIn: false)
    let trust = ["--ca", pki + "/ca.pem", "--server-name", "settings.example.internal"]
    func ctl(_ arguments: [String], input: String? = nil) async throws -> Tools.Run {
      try await Tools.run("dmsctl", arguments, environment: server.environment, input: input)
    }

    let plain = try await ctl(["call", "/dms.rpc.v1.Health/Check"])
    let noCertificate = try await ctl(trust + ["call", "/dms.rpc.v1.Health/Check"])
    let otherCA = try await ctl(
      trust + ["--cert", other + "/client.pem", "--key", other + "/client.key", "call", "/dms.rpc.v1.Health/Check"])
    for refused in [plain, noCertificate, otherCA] {
      #expect(refused.status == 3 && refused.stdout.isEmpty, "\(refused)")
    }
    #expect(noCertificate.stderr.contains("requires a client certificate (mutual TLS): give --cert and --key"))
    #expect(otherCA.stderr.contains("does not accept this client certificate"), "\(otherCA)")
    let client = trust + ["--cert", pki + "/client.pem", "--key", pki + "/client.key"]
    let health = try await ctl(client + ["call", "/dms.rpc.v1.Health/Check"])
    #expect(health.status == 0 && health.stdout == "{\"status\":\"SERVING\"}\n", "\(health)")
    // The certificate admits the connection; calls still need a session.
    let anonymous = try await ctl(client + ["companies", "list"])
    #expect(anonymous.status == 1 && anonymous.stderr.contains("UNAUTHENTICATED"), "\(anonymous)")
    let login = try await ctl(client + ["login", Daemon.login, "--password-file", "-"], input: Daemon.password + "\n")
    #expect(login.status == 0, "\(login)")
    let whoami = try await ctl(client + ["whoami", "--json"])
    #expect(whoami.status == 0 && whoami.stdout.contains("\"login\":\"\(Daemon.login)\""), "\(whoami)")
    let half = try await ctl(trust + ["--cert", pki + "/client.pem", "ping"])
    #expect(half.status == 2 && half.stderr.contains("--cert and --key go together"), "\(half)")
    try await server.stop()

    let misconfigured = try await Tools.run(
      "dms-settingsd", ["--data-directory", data, "--server-tls-client-ca", pki + "/ca.pem"] + Daemon.hashCost)
    #expect(misconfigured.status == 78 && misconfigured.stderr.contains("server.tls.client-ca needs TLS"))
    // Another certificate's key, and a key under a passphrase: said at start-up (78), not
    // by every handshake failing later.
    let encrypted = try await Tools.run(
      "/usr/bin/openssl",
      ["pkey", "-in", pki + "/server.key", "-aes256", "-passout", "pass:x", "-out", pki + "/enc.key"])
    #expect(encrypted.status == 0, "\(encrypted)")
    for (key, words) in [
      (other + "/server.key", "is not the private key of server.tls.certificate"), (pki + "/enc.key", "is encrypted"),
    ] {
      let refused = try await Tools.run(
        "dms-settingsd",
        ["--data-directory", data, "--server-tls-certificate", pki + "/server.pem", "--server-tls-key", key]
          + Daemon.hashCost, timeout: .seconds(30))
      #expect(refused.status == 78 && refused.stderr.contains(words), "\(refused)")
    }
    for path in [pki, other, data] { try? FileManager.default.removeItem(atPath: path) }
  }
}
