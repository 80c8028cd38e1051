import ArgumentParser
import DMSClient
import DMSMessages
import DMSRPC
import DMSStubs
import Foundation

/// `dmsctl edelivery`: e-Delivery, the registered electronic mail (INT-5 … INT-7a).
struct EDelivery: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "edelivery",
    abstract: "e-Delivery (e-Doręczenia): the system's login (INT-5 … INT-7a).",
    discussion: """
      In multi-company mode name the company with --company: the section is its mailbox address, system name and \
      private key (ERP-15 … ERP-17, as dmsctl companies shows them); in single-company mode the single company's.
      """,
    subcommands: [Show.self, Set.self, DownloadKey.self, Test.self]
  )

  static let flags = FlagNames(byField: [
    "settings.address": "--address", "address": "--address", "settings.system_name": "--system-name",
    "system_name": "--system-name", "private_key": "--private-key-file", "settings.revision": "--revision",
    "reason": "--reason",
  ])

  static func printSettings(_ settings: Dms_Settings_V1_EDeliverySettings, json: Bool) {
    if json { return Output.message(settings) }
    Output.fields([
      ("company", settings.company),
      ("environment (CFG-8)", settings.environment),
      ("mailbox address (INT-5)", settings.address),
      ("system name (INT-6)", settings.systemName),
      ("private key (INT-7)", settings.privateKeySet ? settings.keyFingerprint : Output.secret(false)),
      ("revision", String(settings.revision)),
    ])
  }

  struct Show: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show the e-Delivery section.")
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var company: Mail.CompanyOption

    func run() async throws {
      try await connection.withClient(flags: EDelivery.flags) { client in
        printSettings(
          try await Dms_Settings_V1_EDelivery.Client(client).get(options: company.options(connection)),
          json: connection.json)
      }
    }
  }

  struct Set: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Save the e-Delivery section (INT-8): what is given changes, the rest stays as read.")
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var company: Mail.CompanyOption
    @Option(help: "INT-5: the mailbox address, AE:PL-NNNNN-NNNNN-XXXXX-NN.") var address: String?
    @Option(help: "INT-6: the system name registered in the mailbox.") var systemName: String?
    @Option(help: "INT-7: a PEM file of the private key (secret; - for stdin).") var privateKeyFile: String?
    @Flag(help: "INT-7: remove the private key.") var clearPrivateKey = false

    func run() async throws {
      var stdinTaken = false
      let key = try SecretSource(
        name: "private-key", label: "private key", prompt: false, file: privateKeyFile, insecureValue: nil
      ).value(stdinTaken: &stdinTaken)
      if key != nil && clearPrivateKey {
        throw ValidationError("--private-key-file and --clear-private-key: choose one")
      }
      try await connection.withClient(flags: EDelivery.flags) { client in
        let edelivery = Dms_Settings_V1_EDelivery.Client(client)
        let options = company.options(connection)
        var request = Dms_Settings_V1_UpdateEDeliverySettingsRequest()
        request.settings = try await edelivery.get(options: options)
        if let address { request.settings.address = address }
        if let systemName { request.settings.systemName = systemName }
        if let key { request.privateKey.set = key }
        if clearPrivateKey { request.privateKey.clear = true }
        let saved = try await edelivery.update(request, options: options)
        Output.noteUnchanged(before: request.settings.revision, after: saved.revision, json: connection.json)
        printSettings(saved, json: connection.json)
      }
    }
  }

  struct DownloadKey: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "download-key",
      abstract: "Print the private key in PEM (INT-7's save to disk; audited, with the reason).",
      discussion: "No key saved: NOT_FOUND, exit 1. Redirect it to a file to save it.")
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var company: Mail.CompanyOption
    @Option(help: "Why, for the audit (required).") var reason: String

    func run() async throws {
      try await connection.withClient(flags: EDelivery.flags) { client in
        var request = Dms_Settings_V1_DownloadEDeliveryPrivateKeyRequest()
        request.reason = reason
        let response = try await Dms_Settings_V1_EDelivery.Client(client).downloadPrivateKey(
          request, options: company.options(connection))
        if connection.json { return Output.message(response) }
        Output.line(response.value.hasSuffix("\n") ? String(response.value.dropLast()) : response.value)
      }
    }
  }

  struct Test: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract:
        "Sign the client assertion with the private key, verify it, and log in at the token endpoint of CFG-8 (INT-7a).",
      discussion: """
        Nothing is kept. Exit code 0 when the endpoint took the assertion, 1 when not (where it stopped, and the \
        endpoint's error and description, are printed).
        """)
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var company: Mail.CompanyOption
    @Option(help: "INT-5: the mailbox address to try (default: the saved one).") var address: String?
    @Option(help: "INT-6: the system name to try (default: the saved one).") var systemName: String?
    @Option(help: "INT-7: a PEM file of the private key to try (default: the saved one; - for stdin).")
    var privateKeyFile: String?

    func run() async throws {
      var stdinTaken = false
      let key = try SecretSource(
        name: "private-key", label: "private key", prompt: false, file: privateKeyFile, insecureValue: nil
      ).value(stdinTaken: &stdinTaken)
      var request = Dms_Settings_V1_TestEDeliveryConnectionRequest()
      request.address = address ?? ""
      request.systemName = systemName ?? ""
      request.privateKey = key ?? ""
      let flags = FlagNames(byField: [
        "address": "--address", "system_name": "--system-name", "private_key": "--private-key-file",
      ])
      try await connection.withClient(flags: flags) { client in
        let result = try await Dms_Settings_V1_EDelivery.Client(client).testConnection(
          request, options: company.options(connection))
        if connection.json {
          Output.message(result)
        } else {
          var fields: [(String, String)] = [
            ("result", result.ok ? "signed in" : "failed at \(result.step)"),
            ("environment (CFG-8)", "\(result.environment) \(result.tokenURL)"),
            ("client (iss, sub)", result.clientID), ("algorithm", result.algorithm),
          ]
          if result.ok {
            fields += [
              ("token type", result.tokenType), ("expires in", "\(result.expiresInSeconds) s"),
            ]
          } else {
            if result.httpStatus != 0 { fields.append(("HTTP status", String(result.httpStatus))) }
            if !result.error.isEmpty { fields.append(("error", result.error)) }
            fields.append(("description", result.description_p))
          }
          fields.append(("took", "\(result.elapsedMs) ms"))
          Output.fields(fields)
        }
        if !result.ok { throw Output.Exit.rpcError }
      }
    }
  }
}
