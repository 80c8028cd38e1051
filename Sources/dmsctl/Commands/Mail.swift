import ArgumentParser
import DMSClient
import DMSMessages
import DMSRPC
import DMSStubs
import Foundation

/// `dmsctl mail`: the mail account notifications are sent from (MAIL-1 … MAIL-22).
struct Mail: AsyncParsableCommand {
  /// The flag that sets each field, for messages to people.
  static let flags = FlagNames(byField: [
    "account.transport": "--transport", "account.enabled": "--enabled", "account.account_name": "--account-name",
    "account.sender_address": "--sender", "account.display_name": "--display-name", "account.reply_to": "--reply-to",
    "account.description": "--description", "account.server": "--smtp-server", "account.port": "--port",
    "account.login": "--login", "password": "--password", "account.ssl": "--ssl", "account.encryption": "--encryption",
    "account.authentication": "--authentication", "account.oauth": "--oauth-client-id",
    "account.oauth.authority": "--oauth-authority", "account.oauth.client_id": "--oauth-client-id",
    "account.oauth.scopes": "--oauth-scopes", "account.revision": "revision", "preset": "<preset>",
    "sender_address": "<sender>", "account.trusted_certificates": "--trusted-certificates",
    "database_administrator": "--dba-login", "database_administrator.login": "--dba-login",
    "database_administrator.password": "--dba-password", "revision": "revision",
  ])

  static let configuration = CommandConfiguration(
    commandName: "mail",
    abstract: "The mail account notifications are sent from (MAIL-1 … MAIL-22, PRESET-1 … 3).",
    discussion: """
      In multi-company mode name the company with --company (its short name); in single-company mode leave it out.
      """,
    subcommands: [
      Show.self, Set.self, Presets.self, Preset.self, RevealPassword.self, Test.self, Send.self, Queue.self,
      Retry.self, Delete.self, WorkLog.self, SignIn.self, DeleteAccount.self,
    ]
  )

  /// MAIL-6: the database administrator's login and password, for the database profile.
  struct DatabaseAdministratorOption: ParsableArguments {
    @Option(
      help: ArgumentHelp(
        "MAIL-6: the database administrator's login, for the database profile (its password is asked for).",
        discussion: "On SQLite the server's storage.administrator; on PostgreSQL a role of the database server."))
    var dbaLogin: String?
    @Flag(name: .customLong("dba-password"), help: "MAIL-6: ask for its password (no echo; the default).")
    var dbaPasswordPrompt = false
    @Option(help: "MAIL-6: read the database administrator's password from a file (- for stdin).")
    var dbaPasswordFile: String?

    /// The credentials, the password asked for on the terminal unless a file gives it;
    /// nil without --dba-login.
    func value(stdinTaken: inout Bool) throws -> Dms_Settings_V1_DatabaseAdministrator? {
      guard let dbaLogin else {
        if dbaPasswordFile != nil || dbaPasswordPrompt {
          throw ValidationError("--dba-password and --dba-password-file go with --dba-login")
        }
        return nil
      }
      var administrator = Dms_Settings_V1_DatabaseAdministrator()
      administrator.login = dbaLogin
      administrator.password =
        try SecretSource(
          name: "dba-password", label: "database administrator's password (MAIL-6)",
          prompt: dbaPasswordPrompt || dbaPasswordFile == nil,
          file: dbaPasswordFile, insecureValue: nil
        ).value(stdinTaken: &stdinTaken) ?? ""
      return administrator
    }
  }

  /// The company option of the account's commands.
  struct CompanyOption: ParsableArguments {
    @Option(help: "The company's short name (multi-company mode).") var company: String?

    func options(_ connection: ConnectionOptions) -> CallOptions {
      var options = connection.callOptions
      if let company { options.metadata[MetadataKey.company] = company }
      return options
    }
  }

  static let encryptions: [String: Dms_Settings_V1_MailEncryption] = [
    "none": .none, "automatic": .automatic, "tls": .tls, "starttls": .starttls,
  ]
  static let authentications: [String: Dms_Settings_V1_MailAuthentication] = [
    "password": .password, "oauth2": .oauth2,
  ]
  static let transports: [String: Dms_Settings_V1_MailTransport] = [
    "component": .component, "database-profile": .databaseProfile,
  ]

  static func name<Value: Equatable>(_ value: Value, in names: [String: Value], default fallback: String) -> String {
    names.first { $0.value == value }?.key ?? fallback
  }

  static func printAccount(_ account: Dms_Settings_V1_MailAccount, json: Bool) throws {
    if json { return Output.message(account) }
    var fields: [(String, String)] = [
      ("transport (MAIL-1)", name(account.transport, in: transports, default: "component")),
      ("sending (MAIL-7)", account.enabled ? "on" : "off"),
      ("account name (MAIL-8)", account.accountName),
      ("sender (MAIL-9)", account.senderAddress),
      ("display name (MAIL-10)", account.displayName),
      ("reply-to (MAIL-11)", account.replyTo),
      ("description (MAIL-12)", account.description_p),
      ("server type (MAIL-13)", account.serverType),
      ("server (MAIL-14)", account.server),
      ("port (MAIL-15)", account.port == 0 ? "" : String(account.port)),
      ("login (MAIL-16)", account.login),
      ("password (MAIL-17)", Output.secret(account.passwordSet)),
    ]
    if account.transport == .databaseProfile {
      fields.append(("SSL (MAIL-19)", account.ssl ? "yes" : "no"))
      if !account.trustedCertificates.isEmpty { fields.append(("trusted CAs (MAIL-20)", "(set)")) }
    } else {
      fields.append(("encryption (MAIL-20)", name(account.encryption, in: encryptions, default: "none")))
      fields.append(
        ("authentication (MAIL-21)", name(account.authentication, in: authentications, default: "password")))
      fields.append(
        ("trusted CAs (MAIL-20)", account.trustedCertificates.isEmpty ? "(the system's)" : "(set)"))
    }
    if account.hasOauth {
      fields += [
        ("OAuth2 authority (MAIL-22)", account.oauth.authority), ("OAuth2 client id", account.oauth.clientID),
        ("OAuth2 scopes", account.oauth.scopes), ("signed in (MAIL-23)", account.signedIn ? "yes" : "no"),
      ]
    }
    if account.transport == .databaseProfile || account.profileExists {
      fields += [
        ("profile (MAIL-5)", account.profileName), ("profile description", account.profileDescription),
        ("profile exists", account.profileExists ? "yes" : "no"),
      ]
    }
    fields.append(("revision", String(account.revision)))
    Output.fields(fields)
  }

  struct Show: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show the mail account.")
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var company: CompanyOption

    func run() async throws {
      try await connection.withClient(flags: Mail.flags) { client in
        try printAccount(
          try await Dms_Settings_V1_Mail.Client(client).getAccount(options: company.options(connection)),
          json: connection.json)
      }
    }
  }

  struct Set: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Change the mail account: the fields given, the others as saved (MAIL-25).")
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var company: CompanyOption
    @Option(help: "MAIL-1: component (the default) or database-profile.") var transport: String?
    @Option(help: "MAIL-7: true or false.") var enabled: Bool?
    @Option(help: "MAIL-8.") var accountName: String?
    @Option(help: "MAIL-9: the sender address.") var sender: String?
    @Option(help: "MAIL-10: the sender name recipients see.") var displayName: String?
    @Option(help: "MAIL-11: the reply-to address (\"\" for none).") var replyTo: String?
    @Option(help: "MAIL-12.") var description: String?
    @Option(help: "MAIL-14: the SMTP server's host name.") var smtpServer: String?
    @Option(help: "MAIL-15: 1-65535.") var port: Int32?
    @Option(help: "MAIL-16: the mailbox login.") var login: String?
    @Flag(name: .customLong("password"), help: "MAIL-17: ask for the mailbox password (no echo).")
    var passwordPrompt = false
    @Option(help: "MAIL-17: read the mailbox password from a file (- for stdin).") var passwordFile: String?
    @Option(help: ArgumentHelp("MAIL-17: the password itself, seen by ps and the shell history."))
    var insecurePassword: String?
    @Flag(help: "MAIL-17: remove the stored password.") var clearPassword = false
    @Option(help: "MAIL-19 (database profile): true or false.") var ssl: Bool?
    @Option(help: "MAIL-20: none, automatic, tls or starttls.") var encryption: String?
    @Option(help: "MAIL-21: password or oauth2.") var authentication: String?
    @Option(help: "MAIL-22: the OAuth2 authority URL (default Microsoft's).") var oauthAuthority: String?
    @Option(help: "MAIL-22: the application (client) id.") var oauthClientId: String?
    @Option(help: "MAIL-22: the scopes, separated by spaces.") var oauthScopes: String?
    @Option(help: "MAIL-20: a PEM file of certificates to trust for the server's TLS (\"\" for the system's).")
    var trustedCertificates: String?
    @OptionGroup var administrator: DatabaseAdministratorOption

    func validate() throws {
      if clearPassword, passwordPrompt || passwordFile != nil || insecurePassword != nil {
        throw ValidationError("--clear-password cannot go with a new password")
      }
      if let transport, Mail.transports[transport.lowercased()] == nil {
        throw ValidationError("--transport must be component or database-profile")
      }
      if let encryption, Mail.encryptions[encryption.lowercased()] == nil {
        throw ValidationError("--encryption must be none, automatic, tls or starttls")
      }
      if let authentication, Mail.authentications[authentication.lowercased()] == nil {
        throw ValidationError("--authentication must be password or oauth2")
      }
    }

    func run() async throws {
      var stdinTaken = false
      let password = try SecretSource(
        name: "password", label: "mailbox password (MAIL-17)", prompt: passwordPrompt, file: passwordFile,
        insecureValue: insecurePassword
      ).value(stdinTaken: &stdinTaken)
      let databaseAdministrator = try administrator.value(stdinTaken: &stdinTaken)
      var certificates: String?
      if let trustedCertificates {
        if trustedCertificates.isEmpty {
          certificates = ""
        } else {
          certificates = try PEMFile.text(trustedCertificates, option: "--trusted-certificates", derCertificate: true)
        }
      }
      try await connection.withClient(flags: Mail.flags) { client in
        let mail = Dms_Settings_V1_Mail.Client(client)
        let options = company.options(connection)
        var request = Dms_Settings_V1_UpdateMailAccountRequest()
        request.account = try await mail.getAccount(options: options)
        apply(to: &request.account)
        if let certificates { request.account.trustedCertificates = certificates }
        if let password {
          request.password.set = password
        } else if clearPassword {
          request.password.clear = true
        }
        if let databaseAdministrator { request.databaseAdministrator = databaseAdministrator }
        let saved = try await mail.updateAccount(request, options: options)
        Output.noteUnchanged(before: request.account.revision, after: saved.revision, json: connection.json)
        try printAccount(saved, json: connection.json)
      }
    }

    private func apply(to account: inout Dms_Settings_V1_MailAccount) {
      if let transport { account.transport = Mail.transports[transport.lowercased()] ?? .unspecified }
      if let enabled { account.enabled = enabled }
      if let accountName { account.accountName = accountName }
      if let sender { account.senderAddress = sender }
      if let displayName { account.displayName = displayName }
      if let replyTo { account.replyTo = replyTo }
      if let description { account.description_p = description }
      if let smtpServer { account.server = smtpServer }
      if let port { account.port = port }
      if let login { account.login = login }
      if let ssl { account.ssl = ssl }
      if let encryption { account.encryption = Mail.encryptions[encryption.lowercased()] ?? .unspecified }
      if let authentication {
        account.authentication = Mail.authentications[authentication.lowercased()] ?? .unspecified
        if account.authentication == .password { account.clearOauth() }
      }
      if let oauthAuthority { account.oauth.authority = oauthAuthority }
      if let oauthClientId { account.oauth.clientID = oauthClientId }
      if let oauthScopes { account.oauth.scopes = oauthScopes }
    }
  }

  struct Presets: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the providers' presets (PRESET-1 … 3).")
    @OptionGroup var connection: ConnectionOptions

    func run() async throws {
      try await connection.withClient(flags: Mail.flags) { client in
        let response = try await Dms_Settings_V1_Mail.Client(client).listPresets(options: connection.callOptions)
        if connection.json { return Output.message(response) }
        Output.table(
          ["PRESET", "NAME", "SERVER", "PORT", "ENCRYPTION", "SIGN-IN", "LOGIN"],
          response.presets.map {
            [
              $0.id, $0.name, $0.server, String($0.port),
              Mail.name($0.encryption, in: Mail.encryptions, default: "none"),
              Mail.name($0.authentication, in: Mail.authentications, default: "password"), $0.login,
            ]
          })
      }
    }
  }

  struct Preset: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Fill the account from a provider's preset for a sender address, and save it.",
      discussion: """
        The preset sets the server, port, encryption, sign-in and login (from the address); give the password (or, \
        for microsoft365, --oauth-client-id) to complete it. Without --save the draft is only shown.
        """)
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var company: CompanyOption
    @Argument(help: "wp, onet, gmail or microsoft365 (dmsctl mail presets).") var preset: String
    @Argument(help: "MAIL-9: the sender address (the mailbox).") var sender: String
    @Flag(help: "Save the draft (with the password or client id given).") var save = false
    @Flag(name: .customLong("password"), help: "MAIL-17: ask for the mailbox password (no echo).")
    var passwordPrompt = false
    @Option(help: "MAIL-17: read the mailbox password from a file (- for stdin).") var passwordFile: String?
    @Option(help: "MAIL-22: the application (client) id (microsoft365).") var oauthClientId: String?

    func run() async throws {
      var stdinTaken = false
      let password = try SecretSource(
        name: "password", label: "mailbox password (MAIL-17)", prompt: passwordPrompt, file: passwordFile,
        insecureValue: nil
      ).value(stdinTaken: &stdinTaken)
      try await connection.withClient(flags: Mail.flags) { client in
        let mail = Dms_Settings_V1_Mail.Client(client)
        let options = company.options(connection)
        var draft = Dms_Settings_V1_DraftMailAccountRequest()
        draft.preset = preset
        draft.senderAddress = sender
        var account = try await mail.draftFromPreset(draft, options: options)
        if let oauthClientId { account.oauth.clientID = oauthClientId }
        guard save else { return try printAccount(account, json: connection.json) }
        var request = Dms_Settings_V1_UpdateMailAccountRequest()
        request.account = account
        if let password { request.password.set = password }
        try printAccount(try await mail.updateAccount(request, options: options), json: connection.json)
      }
    }
  }

  struct DeleteAccount: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "delete-account",
      abstract: "Delete the mail account settings and the database profile (MAIL-6).",
      discussion:
        "While a database profile exists, --dba-login is required and its password asked for (or read with --dba-password-file). Messages still queued stay in the queue."
    )
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var company: CompanyOption
    @OptionGroup var administrator: DatabaseAdministratorOption

    func run() async throws {
      var stdinTaken = false
      let databaseAdministrator = try administrator.value(stdinTaken: &stdinTaken)
      try await connection.withClient(flags: Mail.flags) { client in
        let mail = Dms_Settings_V1_Mail.Client(client)
        let options = company.options(connection)
        let account = try await mail.getAccount(options: options)
        var request = Dms_Settings_V1_DeleteMailAccountRequest()
        request.revision = account.revision
        if let databaseAdministrator { request.databaseAdministrator = databaseAdministrator }
        let response = try await mail.deleteAccount(request, options: options)
        if connection.json { return Output.message(response) }
        print(account.profileExists ? "deleted the mail account and its database profile" : "deleted the mail account")
      }
    }
  }

  struct RevealPassword: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "reveal-password", abstract: "Show the mailbox password (MAIL-18; audited).")
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var company: CompanyOption
    @Option(help: "Why it is revealed (written to the audit).") var reason: String

    func run() async throws {
      try await connection.withClient(flags: Mail.flags) { client in
        var request = Dms_Settings_V1_RevealMailPasswordRequest()
        request.reason = reason
        let response = try await Dms_Settings_V1_Mail.Client(client).revealPassword(
          request, options: company.options(connection))
        if connection.json { return Output.message(response) }
        print(response.value)
      }
    }
  }
}
