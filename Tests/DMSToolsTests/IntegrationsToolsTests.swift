import Foundation
import Testing

/// `dmsctl ksef show|set|reveal` and `dmsctl edelivery show|set|download-key` through the
/// real executables, with a certificate and keys made by openssl as an administrator
/// would (INT-1 … INT-8).
@Suite("KSeF and e-Delivery through the tools")
struct IntegrationsToolsTests {
  /// `openssl req -x509` in `folder`: a certificate and its key (`key` options).
  static func certificate(_ folder: String, _ name: String, key: [String]) async throws {
    let run = try await Tools.run(
      "/usr/bin/openssl",
      ["req", "-x509", "-newkey"] + key + [
        "-nodes", "-keyout", "\(folder)/\(name).key", "-out", "\(folder)/\(name).crt", "-subj",
        "/C=PL/O=Firma/CN=\(name)", "-days", "365",
      ])
    #expect(run.status == 0, "\(run)")
  }

  @Test(
    "single-company mode: the NIP, the token from stdin, the certificate and its key from files (thumbprint as openssl's), reveal, --clear; e-Delivery's address, key and download; errors name the flag"
  )
  func singleCompany() async throws {
    let folder = Tools.temporaryDirectory()
    try await Self.certificate(folder, "ksef", key: ["rsa:2048"])
    try await Self.certificate(folder, "other", key: ["ec", "-pkeyopt", "ec_paramgen_curve:P-256"])
    let daemon = try await Daemon.start(["--settings-multi-company", "false"])
    let nip = try await Tools.ctl(daemon, "ksef", "set", "--nip", "PL 856-734-62-15")
    #expect(nip.status == 0 && nip.stdout.contains("NIP (INT-1)           8567346215"), "\(nip)")
    let badNIP = try await Tools.ctl(daemon, "ksef", "set", "--nip", "8567346216")
    #expect(badNIP.status == 1 && badNIP.stderr.contains("--nip [INT-1]"), "\(badNIP)")
    let token = try await Tools.ctl(daemon, "ksef", "set", "--token-file", "-", input: "2025|nip-8567346215|ab\n")
    #expect(token.status == 0 && token.stdout.contains("KSeF token (INT-2)    (set)"), "\(token)")
    #expect(token.stdout.contains("31.12.2026"), "the token-only warning")

    let wrongKey = try await Tools.ctl(
      daemon, "ksef", "set", "--certificate-file", "\(folder)/ksef.crt", "--certificate-key-file", "\(folder)/other.key"
    )
    #expect(wrongKey.status == 1 && wrongKey.stderr.contains("--certificate-key-file [INT-4a]"), "\(wrongKey)")
    let saved = try await Tools.ctl(
      daemon, "ksef", "set", "--certificate-file", "\(folder)/ksef.crt", "--certificate-key-file", "\(folder)/ksef.key")
    #expect(saved.status == 0, "\(saved)")
    let fingerprint = try await Tools.run(
      "/usr/bin/openssl", ["x509", "-in", "\(folder)/ksef.crt", "-noout", "-fingerprint", "-sha1"])
    let thumbprint = String(fingerprint.stdout.split(separator: "=").last ?? "")
      .trimmingCharacters(in: .whitespacesAndNewlines).replacingOccurrences(of: ":", with: "")
    #expect(thumbprint.count == 40 && saved.stdout.contains("thumbprint (SHA-1)  \(thumbprint)"), "\(saved)")
    #expect(saved.stdout.contains("CN=ksef,O=Firma,C=PL") && !saved.stdout.contains("warning"), "\(saved)")
    let key = try await Tools.ctl(daemon, "ksef", "reveal", "certificate-key", "--reason", "backup")
    #expect(key.stdout == (try String(contentsOfFile: "\(folder)/ksef.key", encoding: .utf8)), "\(key)")
    let json = try await Tools.ctl(daemon, "ksef", "show", "--json")
    #expect(
      json.stdout.contains("\"thumbprint\":\"\(thumbprint)\"") && json.stdout.contains("\"private_key_set\":true"))
    let cleared = try await Tools.ctl(daemon, "ksef", "set", "--clear", "certificate")
    #expect(cleared.status == 0 && cleared.stdout.contains("certificate (INT-4a)  (not set)"), "\(cleared)")
    let gone = try await Tools.ctl(daemon, "ksef", "reveal", "certificate-key", "--reason", "backup")
    #expect(gone.status == 1 && gone.stderr.contains("NOT_FOUND"), "\(gone)")

    let address = try await Tools.ctl(
      daemon, "edelivery", "set", "--address", "AE:PL-12345-67890-ABCDE-12", "--system-name", "DMS",
      "--private-key-file", "\(folder)/other.key")
    #expect(address.status == 0 && address.stdout.contains("private key (INT-7)      SHA256:"), "\(address)")
    let badAddress = try await Tools.ctl(daemon, "edelivery", "set", "--address", "AE:PL-1")
    #expect(badAddress.status == 1 && badAddress.stderr.contains("--address [INT-5]"), "\(badAddress)")
    let download = try await Tools.ctl(daemon, "edelivery", "download-key", "--reason", "new server")
    #expect(download.stdout == (try String(contentsOfFile: "\(folder)/other.key", encoding: .utf8)), "\(download)")
    #expect(try await daemon.stop() == 0)
  }

  @Test(
    "INT-4a: files as administrators have them: a .pfx turned into one PEM (certificate and key, with openssl's attributes), a DER certificate, CRLF line ends; the key stays a secret; a .pfx itself is refused saying how to convert it"
  )
  func filesAsTheyAre() async throws {
    let folder = Tools.temporaryDirectory()
    try await Self.certificate(folder, "ksef", key: ["ec", "-pkeyopt", "ec_paramgen_curve:P-256"])
    let openssl = { (arguments: [String]) async throws in
      let run = try await Tools.run("/usr/bin/openssl", arguments)
      #expect(run.status == 0, "\(arguments): \(run)")
    }
    try await openssl([
      "pkcs12", "-export", "-in", "\(folder)/ksef.crt", "-inkey", "\(folder)/ksef.key", "-out", "\(folder)/ksef.p12",
      "-passout", "pass:x",
    ])
    try await openssl([
      "pkcs12", "-in", "\(folder)/ksef.p12", "-passin", "pass:x", "-nodes", "-out", "\(folder)/both.pem",
    ])
    try await openssl(["x509", "-in", "\(folder)/ksef.crt", "-outform", "DER", "-out", "\(folder)/ksef.der"])
    let pem = try String(contentsOfFile: "\(folder)/ksef.crt", encoding: .utf8)
    let key = try String(contentsOfFile: "\(folder)/ksef.key", encoding: .utf8)
    try key.replacingOccurrences(of: "\n", with: "\r\n").write(
      toFile: "\(folder)/windows.key", atomically: true, encoding: .utf8)
    let daemon = try await Daemon.start(["--settings-multi-company", "false"])

    // The .pfx as openssl pkcs12 -nodes writes it: certificate and key in one file.
    let both = try await Tools.ctl(daemon, "ksef", "set", "--certificate-file", "\(folder)/both.pem")
    #expect(both.status == 0 && both.stdout.contains("private key         (set)"), "\(both)")
    let shown = try await Tools.ctl(daemon, "ksef", "show", "--json")
    #expect(shown.stdout.contains(pem.replacingOccurrences(of: "\n", with: "\\n")), "only the certificate: \(shown)")
    #expect(!shown.stdout.contains("PRIVATE KEY") && !shown.stdout.contains("Bag Attributes"), "\(shown)")
    let revealed = try await Tools.ctl(daemon, "ksef", "reveal", "certificate-key", "--reason", "backup")
    #expect(revealed.stdout == key, "\(revealed)")
    // A DER certificate, and a key saved on Windows.
    #expect(try await Tools.ctl(daemon, "ksef", "set", "--clear", "certificate").status == 0)
    let der = try await Tools.ctl(
      daemon, "ksef", "set", "--certificate-file", "\(folder)/ksef.der", "--certificate-key-file",
      "\(folder)/windows.key")
    #expect(der.status == 0 && der.stdout.contains("CN=ksef,O=Firma,C=PL"), "\(der)")
    let again = try await Tools.ctl(daemon, "ksef", "show", "--json")
    #expect(again.stdout.contains(pem.replacingOccurrences(of: "\n", with: "\\n")), "\(again)")
    // The .pfx itself, and the key given as the certificate.
    let pfx = try await Tools.ctl(daemon, "ksef", "set", "--certificate-file", "\(folder)/ksef.p12")
    #expect(pfx.status == 2 && pfx.stderr.contains("openssl pkcs12 -in FILE -nodes"), "\(pfx)")
    let swapped = try await Tools.ctl(daemon, "ksef", "set", "--certificate-file", "\(folder)/ksef.key")
    #expect(swapped.status == 2 && swapped.stderr.contains("holds a private key and no certificate"), "\(swapped)")
    #expect(try await daemon.stop() == 0)
  }
}
