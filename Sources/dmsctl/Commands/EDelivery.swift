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
      In multi-company mode name the company with --company; its mailbox address, system name and private key \
      (dmsctl companies) are used.
      """,
    subcommands: [Test.self]
  )

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
