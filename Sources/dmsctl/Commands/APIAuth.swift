import ArgumentParser
import DMSClient
import DMSMessages
import DMSStubs

/// `dmsctl api-auth`: the default ERP operator (single-company mode).
struct APIAuth: AsyncParsableCommand {
  /// The flag that sets each field, for messages to people.
  static let flags = FlagNames(byField: [
    "settings.company_name": "--company-name", "settings.operator_login": "--operator-login", "password": "--password",
    "settings.revision": "revision",
  ])

  static let configuration = CommandConfiguration(
    commandName: "api-auth",
    abstract: "API authorization of single-company mode (APIAUTH-1 … 5).",
    subcommands: [Show.self, Set.self]
  )

  static func printSettings(_ settings: Dms_Settings_V1_ApiAuthorizationSettings, json: Bool) throws {
    if json { return Output.message(settings) }
    Output.fields([
      ("company name (APIAUTH-1)", settings.companyName),
      ("operator login (APIAUTH-2)", settings.operatorLogin),
      ("password (APIAUTH-3)", Output.secret(settings.passwordSet)),
      ("revision", String(settings.revision)),
    ])
  }

  struct Show: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show the API authorization.")
    @OptionGroup var connection: ConnectionOptions

    func run() async throws {
      try await connection.withClient(flags: APIAuth.flags) { client in
        try printSettings(
          try await Dms_Settings_V1_ApiAuthorization.Client(client).get(options: connection.callOptions),
          json: connection.json)
      }
    }
  }

  struct Set: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Save the API authorization (APIAUTH-5: the three values together, with the revision read).")
    @OptionGroup var connection: ConnectionOptions
    @Option(help: "APIAUTH-1: the ERP company name.") var companyName: String?
    @Option(help: "APIAUTH-2: the default ERP operator's login.") var operatorLogin: String?
    @Flag(name: .customLong("password"), help: "APIAUTH-3: ask for the operator's password (no echo).")
    var passwordPrompt = false
    @Option(help: "APIAUTH-3: read the operator's password from a file (- for stdin).") var passwordFile: String?
    @Option(help: ArgumentHelp("APIAUTH-3: the password itself, seen by ps and the shell history."))
    var insecurePassword: String?

    func run() async throws {
      var stdinTaken = false
      let password = try SecretSource(
        name: "password", label: "ERP operator's password (APIAUTH-3)", prompt: passwordPrompt, file: passwordFile,
        insecureValue: insecurePassword
      ).value(stdinTaken: &stdinTaken)
      try await connection.withClient(flags: APIAuth.flags) { client in
        let auth = Dms_Settings_V1_ApiAuthorization.Client(client)
        var request = Dms_Settings_V1_UpdateApiAuthorizationRequest()
        request.settings = try await auth.get(options: connection.callOptions)
        if let companyName { request.settings.companyName = companyName }
        if let operatorLogin { request.settings.operatorLogin = operatorLogin }
        if let password {
          var input = Dms_Settings_V1_SecretInput()
          input.set = password
          request.password = input
        }
        let saved = try await auth.update(request, options: connection.callOptions)
        Output.noteUnchanged(before: request.settings.revision, after: saved.revision, json: connection.json)
        try printSettings(saved, json: connection.json)
      }
    }
  }
}
