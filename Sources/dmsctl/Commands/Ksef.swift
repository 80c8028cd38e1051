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
      In multi-company mode name the company with --company; its NIP and KSeF token (dmsctl companies) are used.
      """,
    subcommands: [Test.self]
  )

  struct Test: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Sign in to KSeF with the token (INT-4b) against the environment of CFG-2; nothing is kept.",
      discussion: """
        Exit code 0 when KSeF signed the token in, 1 when it did not (where it stopped and KSeF's code, \
        description and details are printed).
        """)
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var company: Mail.CompanyOption
    @Option(help: "INT-1: the NIP (default: the company's saved one; required in single-company mode).")
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
