import ArgumentParser
import DMSClient
import DMSMessages
import DMSStubs
import Foundation

/// `dmsctl operators`: the people who sign in (administrators only).
struct Operators: AsyncParsableCommand {
  static let flags = FlagNames(byField: [
    "operator.login": "--login", "login": "login", "operator.full_name": "--full-name", "operator.email": "--email",
    "operator.companies": "--company", "operator.domain_account": "--domain-account",
    "operator.cooperating_system": "--cooperating-system", "password": "--password", "operator.revision": "revision",
  ])

  static let configuration = CommandConfiguration(
    abstract: "Operators: the people who sign in (administrators only).",
    subcommands: [List.self, Show.self, Add.self, Set.self, Passwd.self, Remove.self]
  )

  /// The fields of an operator, as flags; unset flags leave a field as it is.
  struct Fields: ParsableArguments {
    @Option(help: "The name shown to people.") var fullName: String?
    @Option(help: "An e-mail address (name@domain).") var email: String?
    @Option(help: "true: may call every method.") var administrator: Bool?
    @Option(help: "true: cannot sign in; its sessions end.") var disabled: Bool?
    @Option(
      name: .customLong("company"),
      help: "A company the operator belongs to (multi-company mode). Repeatable; replaces the list.")
    var companies: [String] = []
    @Flag(help: "Remove the operator from every company.") var noCompanies = false
    @Option(help: "DOM-4: true to sign in through the domain.") var domainLogin: Bool?
    @Option(help: "DOM-4: the domain account.") var domainAccount: String?
    @Option(help: "APISYS-4: the cooperating system.") var cooperatingSystem: String?
    @Option(help: "STORE-2: true if it may be the repository operator.") var repositoryPermission: Bool?

    func apply(to value: inout Dms_Settings_V1_Operator) {
      if let fullName { value.fullName = fullName }
      if let email { value.email = email }
      if let administrator { value.administrator = administrator }
      if let disabled { value.disabled = disabled }
      if !companies.isEmpty { value.companies = companies }
      if noCompanies { value.companies = [] }
      if let domainLogin { value.domainLogin = domainLogin }
      if let domainAccount { value.domainAccount = domainAccount }
      if let cooperatingSystem { value.cooperatingSystem = cooperatingSystem }
      if let repositoryPermission { value.repositoryPermission = repositoryPermission }
    }
  }

  static func printOperator(_ value: Dms_Settings_V1_Operator, json: Bool) {
    if json { return Output.message(value) }
    Output.fields([
      ("login", value.login),
      ("full name", value.fullName),
      ("e-mail", value.email),
      ("administrator", value.administrator ? "yes" : "no"),
      ("disabled", value.disabled ? "yes" : "no"),
      ("companies", value.companies.joined(separator: ", ")),
      ("domain login (DOM-4)", value.domainLogin ? "yes: \(value.domainAccount)" : "no"),
      ("cooperating system (APISYS-4)", value.cooperatingSystem),
      ("repository permission (STORE-2)", value.repositoryPermission ? "yes" : "no"),
      ("password", value.passwordSet ? (value.mustChangePassword ? "(set, must be changed)" : "(set)") : "(not set)"),
      ("revision", String(value.revision)),
    ])
  }

  static func get(_ login: String, _ client: RPCClient, _ connection: ConnectionOptions) async throws
    -> Dms_Settings_V1_Operator
  {
    var request = Dms_Settings_V1_GetOperatorRequest()
    request.login = login
    return try await Dms_Settings_V1_Operators.Client(client).get(request, options: connection.callOptions)
  }

  struct List: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the operators.")
    @OptionGroup var connection: ConnectionOptions

    func run() async throws {
      try await connection.withClient(flags: Operators.flags) { client in
        let list = try await Dms_Settings_V1_Operators.Client(client).list(options: connection.callOptions)
        if connection.json { return Output.message(list) }
        Output.table(
          ["LOGIN", "FULL NAME", "ADMINISTRATOR", "DISABLED", "COMPANIES"],
          list.operators.map {
            [
              $0.login, $0.fullName, $0.administrator ? "yes" : "no", $0.disabled ? "yes" : "no",
              $0.companies.joined(separator: ","),
            ]
          })
      }
    }
  }

  struct Show: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show one operator.")
    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "The login.") var login: String

    func run() async throws {
      try await connection.withClient(flags: Operators.flags) { client in
        printOperator(try await get(login, client, connection), json: connection.json)
      }
    }
  }

  struct Add: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Add an operator.",
      discussion: """
        Give a first password with --password (asked without echo) or --password-file
        (- for stdin), usually with --must-change-password; without one the operator
        cannot sign in with a password until `operators passwd` sets one.
        """)
    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "The login: unique ignoring case, no spaces.") var login: String
    @OptionGroup var fields: Fields
    @Flag(name: .customLong("password"), help: "Ask for the first password (no echo).") var passwordPrompt = false
    @Option(help: "Read the first password from a file (- for stdin).") var passwordFile: String?
    @Flag(help: "The first sign-in may only change the password.") var mustChangePassword = false

    func run() async throws {
      var stdinTaken = false
      let password = try SecretSource(
        name: "password", label: "First password for \(login)", prompt: passwordPrompt, file: passwordFile
      ).value(stdinTaken: &stdinTaken)
      var request = Dms_Settings_V1_CreateOperatorRequest()
      request.operator.login = login
      fields.apply(to: &request.operator)
      request.password = password ?? ""
      request.mustChangePassword = mustChangePassword
      try await connection.withClient(flags: Operators.flags) { client in
        printOperator(
          try await Dms_Settings_V1_Operators.Client(client).create(request, options: connection.callOptions),
          json: connection.json)
      }
    }
  }

  struct Set: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Change an operator (the fields given; the rest stay as they are).")
    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "The login.") var login: String
    @Option(help: "A new login.") var newLogin: String?
    @OptionGroup var fields: Fields

    func run() async throws {
      try await connection.withClient(flags: Operators.flags) { client in
        var request = Dms_Settings_V1_UpdateOperatorRequest()
        request.login = login
        request.operator = try await get(login, client, connection)
        if let newLogin { request.operator.login = newLogin }
        fields.apply(to: &request.operator)
        let saved = try await Dms_Settings_V1_Operators.Client(client).update(request, options: connection.callOptions)
        Output.noteUnchanged(before: request.operator.revision, after: saved.revision, json: connection.json)
        printOperator(saved, json: connection.json)
      }
    }
  }

  struct Passwd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Set another operator's password (a reset: its sessions end).")
    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "The login.") var login: String
    @Option(help: "Read the password from a file (- for stdin); default: asked without echo.") var passwordFile: String?
    @Flag(help: "The next sign-in may only change the password.") var mustChangePassword = false

    func run() async throws {
      var stdinTaken = false
      let password =
        try SecretSource(
          name: "password", label: "New password for \(login)", prompt: passwordFile == nil, file: passwordFile
        ).value(stdinTaken: &stdinTaken) ?? ""
      try await connection.withClient(flags: Operators.flags) { client in
        var request = Dms_Settings_V1_SetOperatorPasswordRequest()
        request.login = login
        request.password = password
        request.mustChangePassword = mustChangePassword
        let saved = try await Dms_Settings_V1_Operators.Client(client).setPassword(
          request, options: connection.callOptions)
        if connection.json { return Output.message(saved) }
        Output.line("password of \(saved.login) set; its sessions have ended")
      }
    }
  }

  struct Remove: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "rm",
      abstract: "Delete an operator (its sessions end).",
      discussion: "Asks for confirmation on a terminal; scripts (no terminal) must give --yes.")
    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "The login.") var login: String
    @Flag(help: "Delete without asking.") var yes = false

    func run() async throws {
      try await connection.withClient(flags: Operators.flags) { client in
        let found = try await get(login, client, connection)
        if !yes {
          try Confirmation.ask(
            "Delete operator \(found.login) (\(found.fullName))?",
            refusal: "operators rm deletes operator \(found.login): give --yes to confirm")
        }
        var request = Dms_Settings_V1_DeleteOperatorRequest()
        request.login = found.login
        _ = try await Dms_Settings_V1_Operators.Client(client).delete(request, options: connection.callOptions)
        if connection.json { return Output.json(.object([("deleted", .string(found.login))])) }
        Output.line("deleted \(found.login)")
      }
    }
  }
}
