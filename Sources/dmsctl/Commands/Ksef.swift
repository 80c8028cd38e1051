import ArgumentParser
import DMSClient
import DMSMessages
import DMSRPC
import DMSStubs
import Foundation

/// `dmsctl ksef`: KSeF, the national e-invoice system (INT-1 … INT-4b, ERP-13, ERP-14).
struct Ksef: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "ksef",
    abstract: "KSeF, the national e-invoice system (INT-1 … INT-4b).",
    discussion: """
      In multi-company mode name the company with --company: the section is its NIP (ERP-13), KSeF token (ERP-14) \
      and certificate, as dmsctl companies shows them; in single-company mode it is the single company's.
      """,
    subcommands: [Show.self, Set.self, Reveal.self, Test.self]
  )

  /// The flag that sets each field, for messages to people.
  static let flags = FlagNames(byField: [
    "settings.nip": "--nip", "nip": "--nip", "token": "--token", "settings.revision": "--revision",
    "settings.certificate.pem": "--certificate-file", "settings.certificate.thumbprint": "--certificate-thumbprint",
    "certificate_key": "--certificate-key-file", "field": "<secret>", "reason": "--reason",
  ])

  static func printSettings(_ settings: Dms_Settings_V1_KsefSettings, json: Bool) {
    if json { return Output.message(settings) }
    let certificate = settings.certificate
    var fields: [(String, String)] = [
      ("company", settings.company),
      ("environment (CFG-2)", settings.environment),
      ("NIP (INT-1)", settings.nip),
      ("KSeF token (INT-2)", Output.secret(settings.tokenSet)),
    ]
    if certificate.pem.isEmpty && certificate.thumbprint.isEmpty {
      fields.append(("certificate (INT-4a)", "(not set)"))
    } else if certificate.pem.isEmpty {
      fields.append(("certificate (INT-4a)", "thumbprint \(certificate.thumbprint), installed where the DMS runs"))
    } else {
      fields += [
        ("certificate (INT-4a)", certificate.subject),
        ("  issuer", certificate.issuer),
        ("  valid", "\(certificate.validFrom) to \(certificate.validUntil)"),
        ("  thumbprint (SHA-1)", certificate.thumbprint),
        ("  private key", Output.secret(certificate.privateKeySet)),
      ]
    }
    fields.append(("revision", String(settings.revision)))
    Output.fields(fields + settings.warnings.map { ("warning", $0) })
  }

  struct Show: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show the KSeF section, with its warnings.")
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var company: Mail.CompanyOption

    func run() async throws {
      try await connection.withClient(flags: Ksef.flags) { client in
        printSettings(
          try await Dms_Settings_V1_Ksef.Client(client).get(options: company.options(connection)),
          json: connection.json)
      }
    }
  }

  struct Set: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Save the KSeF section (INT-8): what is given changes, the rest stays as read.",
      discussion: """
        The certificate (INT-4a) is the token's fallback: a PEM file with its private key, or only the thumbprint \
        of one installed where the DMS runs. --clear certificate removes the certificate and its key.
        """)
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var company: Mail.CompanyOption
    @Option(help: "INT-1: the company's NIP (10 digits; a PL prefix, spaces and dashes are removed).") var nip: String?
    @Flag(name: .customLong("token"), help: "INT-2: ask for the KSeF token (no echo).") var tokenPrompt = false
    @Option(help: "INT-2: read the KSeF token from a file (- for stdin).") var tokenFile: String?
    @Option(help: ArgumentHelp("INT-2: the token itself, seen by ps and the shell history."))
    var insecureToken: String?
    @Option(
      help: ArgumentHelp(
        "INT-4a: the KSeF certificate, PEM or DER (with --certificate-key-file, unless its private key is in this file too, as openssl pkcs12 -nodes writes it)."
      ))
    var certificateFile: String?
    @Option(help: "INT-4a: a PEM file of the certificate's private key (secret; - for stdin).")
    var certificateKeyFile: String?
    @Option(help: "INT-4a: instead of a PEM, the SHA-1 thumbprint of a certificate installed where the DMS runs.")
    var certificateThumbprint: String?
    @Option(name: .customLong("clear"), help: "Remove: token, certificate. Repeatable.") var clear: [String] = []

    func run() async throws {
      for name in clear where !["token", "certificate"].contains(name) {
        throw ValidationError("--clear takes token or certificate (got \(name))")
      }
      var stdinTaken = false
      let token = try SecretSource(
        name: "token", label: "KSeF token (INT-2)", prompt: tokenPrompt, file: tokenFile, insecureValue: insecureToken
      ).value(stdinTaken: &stdinTaken)
      var key = try SecretSource(
        name: "certificate-key", label: "certificate's private key", prompt: false, file: certificateKeyFile,
        insecureValue: nil
      ).value(stdinTaken: &stdinTaken)
      var certificate: String?
      if let certificateFile {
        let file = try PEMFile.certificate(certificateFile, option: "--certificate-file")
        certificate = file.certificate
        if key == nil { key = file.key }
      }
      try await connection.withClient(flags: Ksef.flags) { client in
        let ksef = Dms_Settings_V1_Ksef.Client(client)
        let options = company.options(connection)
        var request = Dms_Settings_V1_UpdateKsefSettingsRequest()
        request.settings = try await ksef.get(options: options)
        if let nip { request.settings.nip = nip }
        if clear.contains("certificate") { request.settings.certificate = Dms_Settings_V1_KsefCertificate() }
        if let certificate {
          request.settings.certificate.pem = certificate
          request.settings.certificate.thumbprint = ""
        }
        if let certificateThumbprint {
          request.settings.certificate = Dms_Settings_V1_KsefCertificate()
          request.settings.certificate.thumbprint = certificateThumbprint
        }
        if let token { request.token.set = token }
        if clear.contains("token") { request.token.clear = true }
        if let key { request.certificateKey.set = key }
        let saved = try await ksef.update(request, options: options)
        Output.noteUnchanged(before: request.settings.revision, after: saved.revision, json: connection.json)
        printSettings(saved, json: connection.json)
      }
    }
  }

  struct Reveal: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Print the token or the certificate's private key (PEM; audited, with the reason).",
      discussion: "Not set: NOT_FOUND, exit 1. Redirect the key to a file to save it.")
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var company: Mail.CompanyOption
    @Argument(help: ArgumentHelp("token or certificate-key.", valueName: "secret")) var secret: String
    @Option(help: "Why, for the audit (required).") var reason: String

    func validate() throws {
      guard ["token", "certificate-key"].contains(secret) else {
        throw ValidationError("the secret must be token or certificate-key (got \(secret))")
      }
    }

    func run() async throws {
      try await connection.withClient(flags: Ksef.flags) { client in
        var request = Dms_Settings_V1_RevealKsefSecretRequest()
        request.field = secret == "token" ? .ksefSecretToken : .ksefSecretCertificateKey
        request.reason = reason
        let response = try await Dms_Settings_V1_Ksef.Client(client).revealSecret(
          request, options: company.options(connection))
        if connection.json { return Output.message(response) }
        Output.line(response.value.hasSuffix("\n") ? String(response.value.dropLast()) : response.value)
      }
    }
  }

  struct Test: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Sign in to KSeF with the token (INT-4b) against the environment of CFG-2; nothing is kept.",
      discussion: """
        Exit code 0 when KSeF signed the token in, 1 when it did not (where it stopped and KSeF's code, \
        description and details are printed).
        """)
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var company: Mail.CompanyOption
    @Option(help: "INT-1: the NIP to try (default: the saved one).")
    var nip: String?
    @Flag(name: .customLong("token"), help: "INT-2: ask for a token to try instead of the saved one (no echo).")
    var tokenPrompt = false
    @Option(help: "INT-2: read the token to try from a file (- for stdin).") var tokenFile: String?

    func run() async throws {
      var stdinTaken = false
      let token = try SecretSource(
        name: "token", label: "KSeF token (INT-2)", prompt: tokenPrompt, file: tokenFile, insecureValue: nil
      ).value(stdinTaken: &stdinTaken)
      var request = Dms_Settings_V1_TestKsefConnectionRequest()
      request.nip = nip ?? ""
      request.token = token ?? ""
      try await connection.withClient(flags: FlagNames(byField: ["nip": "--nip", "token": "--token-file"])) {
        client in
        let result = try await Dms_Settings_V1_Ksef.Client(client).testConnection(
          request, options: company.options(connection))
        if connection.json {
          Output.message(result)
        } else {
          var fields: [(String, String)] = [
            ("result", result.ok ? "signed in" : "failed at \(result.step)"),
            ("environment (CFG-2)", "\(result.environment) \(result.baseURL)"),
          ]
          if result.ok {
            fields += [
              ("reference number", result.referenceNumber),
              ("access token valid until", result.accessTokenValidUntil),
              ("refresh token valid until", result.refreshTokenValidUntil),
            ]
          } else {
            if result.httpStatus != 0 { fields.append(("HTTP status", String(result.httpStatus))) }
            fields.append(("code", result.code))
            fields.append(("description", result.description_p))
            for detail in result.details { fields.append(("detail", detail)) }
          }
          fields.append(("took", "\(result.elapsedMs) ms"))
          fields += result.warnings.map { ("warning", $0) }
          Output.fields(fields)
        }
        if !result.ok { throw Output.Exit.rpcError }
      }
    }
  }
}
