import ArgumentParser
import DMSClient
import DMSMessages
import DMSRPC
import DMSStubs
import Foundation

/// `dmsctl companies`: ERP connections (multi-company mode).
struct Companies: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "ERP connections of multi-company mode (spec ERP-1 … ERP-19).",
    subcommands: [List.self, Show.self, Add.self, Set.self, Remove.self, Reveal.self, Centers.self]
  )

  /// The fields of a company, as flags; unset flags leave a field as it is.
  struct CompanyFields: ParsableArguments {
    @Option(help: "ERP-1: ERP_XL, OPTIMA, ALTUM, ENTERPRISE, STANDALONE.") var mode: String?
    @Option(help: "ERP-2: the company's name.") var name: String?
    @Option(help: "ERP-4: the ERP database server.") var dbServer: String?
    @Option(help: "ERP-4: the ERP database's name.") var dbName: String?
    @Option(help: "ERP-4: SQL or INTEGRATED.") var dbAuth: String?
    @Option(help: "ERP-4: the SQL login.") var dbUser: String?
    @Flag(name: .customLong("db-password"), help: "ERP-4: ask for the SQL login's password (no echo).")
    var dbPasswordPrompt = false
    @Option(help: "ERP-4: read the SQL login's password from a file (- for stdin).") var dbPasswordFile: String?
    @Option(help: ArgumentHelp("ERP-4: the password itself, seen by ps and the shell history."))
    var insecureDbPassword: String?
    @Option(help: "ERP-5.") var licenseKeyName: String?
    @Option(help: "ERP-6: the mapped ERP database (company name).") var mappedDatabase: String?
    @Option(help: "ERP-7: one of the company's centers.") var defaultCenter: String?
    @Option(help: "ERP-8.") var operatorLogin: String?
    @Flag(name: .customLong("operator-password"), help: "ERP-9: ask for the operator's password (no echo).")
    var operatorPasswordPrompt = false
    @Option(help: "ERP-9: read the operator's password from a file (- for stdin).") var operatorPasswordFile: String?
    @Option(help: ArgumentHelp("ERP-9: the password itself, seen by ps and the shell history."))
    var insecureOperatorPassword: String?
    @Option(help: "ERP-10: true or false.") var useDomain: Bool?
    @Option(help: "ERP-11.") var domainName: String?
    @Option(help: "ERP-12 (\"All\" allowed).") var domainGroup: String?
    @Option(help: "ERP-13: the company's NIP.") var nip: String?
    @Flag(name: .customLong("ksef-token"), help: "ERP-14: ask for the KSeF token (no echo).")
    var ksefTokenPrompt = false
    @Option(help: "ERP-14: read the KSeF token from a file (- for stdin).") var ksefTokenFile: String?
    @Option(help: ArgumentHelp("ERP-14: the token itself, seen by ps and the shell history."))
    var insecureKsefToken: String?
    @Option(help: "ERP-15: AE:PL-NNNNN-NNNNN-XXXXX-NN.") var edeliveryAddress: String?
    @Option(help: "ERP-16.") var edeliverySystemName: String?
    @Option(help: "ERP-17: a file holding the private key in PEM (secret).") var edeliveryPrivateKeyFile: String?
    @Option(
      help: ArgumentHelp(
        "INT-4a: the KSeF certificate, PEM or DER (with --ksef-certificate-key-file, unless its private key is in this file too, as openssl pkcs12 -nodes writes it); \"\" removes it."
      ))
    var ksefCertificateFile: String?
    @Option(help: "INT-4a: a PEM file of the KSeF certificate's private key (secret).")
    var ksefCertificateKeyFile: String?
    @Option(help: "INT-4a: instead of a PEM, the SHA-1 thumbprint of a certificate installed where the DMS runs.")
    var ksefCertificateThumbprint: String?
    @Option(
      name: .customLong("clear"),
      help:
        "Remove a secret: db-password, altum-configuration-password, operator-password, ksef-token, edelivery-private-key, ksef-certificate-key. Repeatable."
    )
    var clear: [String] = []

    static let modes: [String: Dms_Settings_V1_ERPMode] = [
      "ERP_XL": .erpXl, "OPTIMA": .optima, "ALTUM": .altum, "ENTERPRISE": .enterprise, "STANDALONE": .standalone,
    ]
    static let authentications: [String: Dms_Settings_V1_ConnectionAuthentication] = [
      "SQL": .sql, "INTEGRATED": .integrated,
    ]

    func apply(to company: inout Dms_Settings_V1_Company, secrets: inout Dms_Settings_V1_CompanySecrets) throws {
      if let mode {
        guard let value = Self.modes[mode.uppercased()] else {
          throw ValidationError("--mode must be ERP_XL, OPTIMA, ALTUM, ENTERPRISE or STANDALONE")
        }
        company.mode = value
      }
      if let name { company.name = name }
      if let dbServer { company.connection.server = dbServer }
      if let dbName { company.connection.database = dbName }
      if let dbAuth {
        guard let value = Self.authentications[dbAuth.uppercased()] else {
          throw ValidationError("--db-auth must be SQL or INTEGRATED")
        }
        company.connection.authentication = value
      }
      if let dbUser { company.connection.user = dbUser }
      if let licenseKeyName { company.licenseKeyName = licenseKeyName }
      if let mappedDatabase { company.mappedDatabase = mappedDatabase }
      if let defaultCenter { company.defaultCenter = defaultCenter }
      if let operatorLogin { company.operatorLogin = operatorLogin }
      if let useDomain { company.useDomain = useDomain }
      if let domainName { company.domainName = domainName }
      if let domainGroup { company.domainGroup = domainGroup }
      if let nip { company.nip = nip }
      if let edeliveryAddress { company.edeliveryAddress = edeliveryAddress }
      if let edeliverySystemName { company.edeliverySystemName = edeliverySystemName }
      func set(_ value: String) -> Dms_Settings_V1_SecretInput {
        var input = Dms_Settings_V1_SecretInput()
        input.set = value
        return input
      }
      var stdinTaken = false
      let sources = [
        SecretSource(
          name: "db-password", label: "ERP database password (ERP-4)", prompt: dbPasswordPrompt, file: dbPasswordFile,
          insecureValue: insecureDbPassword),
        SecretSource(
          name: "operator-password", label: "ERP operator's password (ERP-9)", prompt: operatorPasswordPrompt,
          file: operatorPasswordFile, insecureValue: insecureOperatorPassword),
        SecretSource(
          name: "ksef-token", label: "KSeF token (ERP-14)", prompt: ksefTokenPrompt, file: ksefTokenFile,
          insecureValue: insecureKsefToken),
      ]
      if let value = try sources[0].value(stdinTaken: &stdinTaken) { secrets.connectionPassword = set(value) }
      if let value = try sources[1].value(stdinTaken: &stdinTaken) { secrets.operatorPassword = set(value) }
      if let value = try sources[2].value(stdinTaken: &stdinTaken) { secrets.ksefToken = set(value) }
      if let edeliveryPrivateKeyFile {
        secrets.edeliveryPrivateKey = set(
          try PEMFile.text(edeliveryPrivateKeyFile, option: "--edelivery-private-key-file"))
      }
      var keyFromCertificateFile: String?
      if let ksefCertificateFile {
        company.ksefCertificate = Dms_Settings_V1_KsefCertificate()
        if !ksefCertificateFile.isEmpty {
          let file = try PEMFile.certificate(ksefCertificateFile, option: "--ksef-certificate-file")
          company.ksefCertificate.pem = file.certificate
          keyFromCertificateFile = file.key
        }
      }
      if let ksefCertificateThumbprint {
        company.ksefCertificate = Dms_Settings_V1_KsefCertificate()
        company.ksefCertificate.thumbprint = ksefCertificateThumbprint
      }
      if let ksefCertificateKeyFile {
        secrets.ksefCertificateKey = set(
          try PEMFile.text(ksefCertificateKeyFile, option: "--ksef-certificate-key-file"))
      } else if let keyFromCertificateFile {
        secrets.ksefCertificateKey = set(keyFromCertificateFile)
      }
      var clearInput = Dms_Settings_V1_SecretInput()
      clearInput.clear = true
      for name in clear {
        guard let secret = Companies.secretNames.first(where: { $0.name == name }) else {
          throw ValidationError(
            "--clear takes \(Companies.secretNames.map(\.name).joined(separator: ", ")) (got \(name))")
        }
        secrets[keyPath: secret.input] = clearInput
      }
    }
  }

  /// The flag that sets each field of a company request, for messages to people.
  static let flags = FlagNames(byField: [
    "short_name": "<short-name>", "company.short_name": "<short-name>", "company.mode": "--mode",
    "company.name": "--name", "company.connection": "--db-server/--db-name", "company.connection.server": "--db-server",
    "company.connection.database": "--db-name", "company.connection.authentication": "--db-auth",
    "company.connection.user": "--db-user", "company.license_key_name": "--license-key-name",
    "company.mapped_database": "--mapped-database", "company.default_center": "--default-center",
    "company.operator_login": "--operator-login", "company.use_domain": "--use-domain",
    "company.domain_name": "--domain-name", "company.domain_group": "--domain-group", "company.nip": "--nip",
    "company.edelivery_address": "--edelivery-address", "company.edelivery_system_name": "--edelivery-system-name",
    "company.revision": "--revision", "revision": "--revision",
    "secrets.connection_password": "--db-password", "secrets.operator_password": "--operator-password",
    "secrets.ksef_token": "--ksef-token", "secrets.edelivery_private_key": "--edelivery-private-key-file",
    "secrets.altum_configuration_password": "altum-configuration-password", "centers": "--set",
    "company.ksef_certificate.pem": "--ksef-certificate-file",
    "company.ksef_certificate.thumbprint": "--ksef-certificate-thumbprint",
    "secrets.ksef_certificate_key": "--ksef-certificate-key-file",
    "field": "<secret>", "reason": "--reason",
  ])

  /// The secrets by the one name `--clear`, `reveal` and the flags use: the field
  /// `reveal` asks for and the input `--clear` sets.
  static let secretNames:
    [(
      name: String, field: Dms_Settings_V1_CompanySecretField,
      input: WritableKeyPath<Dms_Settings_V1_CompanySecrets, Dms_Settings_V1_SecretInput> & Sendable
    )] = [
      ("db-password", .connectionPassword, \.connectionPassword),
      ("altum-configuration-password", .altumConfigurationPassword, \.altumConfigurationPassword),
      ("operator-password", .operatorPassword, \.operatorPassword), ("ksef-token", .ksefToken, \.ksefToken),
      ("edelivery-private-key", .edeliveryPrivateKey, \.edeliveryPrivateKey),
      ("ksef-certificate-key", .ksefCertificatePrivateKey, \.ksefCertificateKey),
    ]

  static func modeName(_ mode: Dms_Settings_V1_ERPMode) -> String {
    CompanyFields.modes.first { $0.value == mode }?.key ?? "UNSPECIFIED"
  }

  static func printCompany(_ company: Dms_Settings_V1_Company, json: Bool) throws {
    if json { return Output.message(company) }
    Output.fields(
      [
        ("short name (ERP-3)", company.shortName),
        ("mode (ERP-1)", modeName(company.mode)),
        ("name (ERP-2)", company.name),
        ("connection (ERP-4)", "\(company.connection.server) / \(company.connection.database)"),
        ("  authentication", company.connection.authentication == .integrated ? "INTEGRATED" : "SQL"),
        ("  user", company.connection.user),
        ("  password", Output.secret(company.connection.passwordSet)),
        ("license key name (ERP-5)", company.licenseKeyName),
        ("mapped database (ERP-6)", company.mappedDatabase),
        ("default center (ERP-7)", company.defaultCenter),
        ("operator login (ERP-8)", company.operatorLogin),
        ("operator password (ERP-9)", Output.secret(company.operatorPasswordSet)),
        ("use domain (ERP-10)", Output.yesNo(company.useDomain)),
        ("domain (ERP-11)", company.domainName),
        ("domain group (ERP-12)", company.domainGroup),
        ("NIP (ERP-13)", company.nip),
        ("KSeF token (ERP-14)", Output.secret(company.ksefTokenSet)),
        ("KSeF certificate (INT-4a)", certificateSummary(company.ksefCertificate)),
        ("e-Delivery address (ERP-15)", company.edeliveryAddress),
        ("e-Delivery system (ERP-16)", company.edeliverySystemName),
        (
          "e-Delivery key (ERP-17)",
          company.edeliveryPrivateKeySet ? company.edeliveryKeyFingerprint : Output.secret(false)
        ),
        ("revision", String(company.revision)),
      ] + company.ksefWarnings.map { ("warning (KSeF)", $0) })
  }

  /// INT-4a's certificate on one line: subject, validity, key; or the thumbprint alone.
  static func certificateSummary(_ certificate: Dms_Settings_V1_KsefCertificate) -> String {
    if !certificate.pem.isEmpty {
      return "\(certificate.subject), until \(certificate.validUntil), thumbprint \(certificate.thumbprint), key "
        + Output.secret(certificate.privateKeySet)
    }
    return certificate.thumbprint.isEmpty ? "(not set)" : "thumbprint \(certificate.thumbprint)"
  }

  struct List: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the companies.")
    @OptionGroup var connection: ConnectionOptions

    func run() async throws {
      try await connection.withClient(flags: Companies.flags) { client in
        let list = try await Dms_Settings_V1_Companies.Client(client).list(options: connection.callOptions)
        if connection.json { return Output.message(list) }
        Output.table(
          ["SHORT NAME", "NAME", "MODE", "REVISION"],
          list.companies.map { [$0.shortName, $0.name, modeName($0.mode), String($0.revision)] })
      }
    }
  }

  struct Show: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show one company.")
    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "The short name.") var shortName: String

    func run() async throws {
      try await connection.withClient(flags: Companies.flags) { client in
        var request = Dms_Settings_V1_GetCompanyRequest()
        request.shortName = shortName
        try printCompany(
          try await Dms_Settings_V1_Companies.Client(client).get(request, options: connection.callOptions),
          json: connection.json)
      }
    }
  }

  struct Add: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Add a company.")
    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "The short name (ERP-3): at most 5 characters.") var shortName: String
    @OptionGroup var fields: CompanyFields

    func run() async throws {
      var company = Dms_Settings_V1_Company()
      company.shortName = shortName
      company.mode = .erpXl
      company.connection.authentication = .sql
      var secrets = Dms_Settings_V1_CompanySecrets()
      try fields.apply(to: &company, secrets: &secrets)
      var request = Dms_Settings_V1_CreateCompanyRequest()
      request.company = company
      request.secrets = secrets
      try await connection.withClient(flags: Companies.flags) { client in
        try printCompany(
          try await Dms_Settings_V1_Companies.Client(client).create(request, options: connection.callOptions),
          json: connection.json)
      }
    }
  }

  struct Set: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Change fields of a company (reads it, applies the flags, saves with the revision read).")
    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "The short name.") var shortName: String
    @OptionGroup var fields: CompanyFields

    func run() async throws {
      try await connection.withClient(flags: Companies.flags) { client in
        let companies = Dms_Settings_V1_Companies.Client(client)
        var get = Dms_Settings_V1_GetCompanyRequest()
        get.shortName = shortName
        var company = try await companies.get(get, options: connection.callOptions)
        var secrets = Dms_Settings_V1_CompanySecrets()
        try fields.apply(to: &company, secrets: &secrets)
        var request = Dms_Settings_V1_UpdateCompanyRequest()
        request.company = company
        request.secrets = secrets
        let saved = try await companies.update(request, options: connection.callOptions)
        Output.noteUnchanged(before: company.revision, after: saved.revision, json: connection.json)
        try printCompany(saved, json: connection.json)
      }
    }
  }

  struct Remove: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "rm",
      abstract: "Delete a company and everything stored under it (ERP-19).",
      discussion: "Asks for confirmation on a terminal; scripts (no terminal) must give --yes.")
    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "The short name.") var shortName: String
    @Option(help: "The revision you read (default: the current one).") var revision: Int64?
    @Flag(help: "Delete without asking.") var yes = false

    func run() async throws {
      try await connection.withClient(flags: Companies.flags) { client in
        let companies = Dms_Settings_V1_Companies.Client(client)
        var get = Dms_Settings_V1_GetCompanyRequest()
        get.shortName = shortName
        let company = try await companies.get(get, options: connection.callOptions)
        if !yes {
          try Confirmation.ask(
            "Delete company \(company.shortName) (\(company.name)) and every setting stored under it?",
            refusal: "companies rm deletes company \(company.shortName) and everything under it: give --yes to confirm")
        }
        var request = Dms_Settings_V1_DeleteCompanyRequest()
        request.shortName = company.shortName
        request.revision = revision ?? company.revision
        _ = try await companies.delete(request, options: connection.callOptions)
        if connection.json {
          Output.json(.object([("deleted", .string(company.shortName))]))
        } else {
          Output.line("deleted \(company.shortName)")
        }
      }
    }
  }

  struct Reveal: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Print one secret (the server records the reveal and its reason in the audit).",
      discussion: "A secret that is not set is an error (NOT_FOUND, exit 1).")
    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "The short name.") var shortName: String
    @Argument(
      help: ArgumentHelp(
        "The secret: \(Companies.secretNames.map(\.name).joined(separator: ", ")).", valueName: "secret"))
    var secret: String
    @Option(help: "Why, for the audit (required).") var reason: String

    func validate() throws {
      guard Companies.secretNames.contains(where: { $0.name == secret }) else {
        throw ValidationError(
          "the secret must be one of \(Companies.secretNames.map(\.name).joined(separator: ", ")) (got \(secret))")
      }
      guard !reason.trimmingCharacters(in: .whitespaces).isEmpty else {
        throw ValidationError("--reason must say why the secret is revealed (it goes to the audit)")
      }
    }

    func run() async throws {
      let field = Companies.secretNames.first { $0.name == secret }!.field
      try await connection.withClient(flags: Companies.flags) { client in
        var request = Dms_Settings_V1_RevealCompanySecretRequest()
        request.shortName = shortName
        request.field = field
        request.reason = reason
        let response = try await Dms_Settings_V1_Companies.Client(client).revealSecret(
          request, options: connection.callOptions)
        if connection.json { return Output.message(response) }
        Output.line(response.value.hasSuffix("\n") ? String(response.value.dropLast()) : response.value)
      }
    }
  }

  struct Centers: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "List a company's centers (ERP-7), or publish them with --set.")
    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "The short name.") var shortName: String
    @Option(help: "Publish this comma-separated list of centers.") var set: String?

    func run() async throws {
      try await connection.withClient(flags: Companies.flags) { client in
        let companies = Dms_Settings_V1_Companies.Client(client)
        let centers: Dms_Settings_V1_Centers
        if let set {
          var request = Dms_Settings_V1_SetCentersRequest()
          request.shortName = shortName
          request.centers = set.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }
          centers = try await companies.setCenters(request, options: connection.callOptions)
        } else {
          var request = Dms_Settings_V1_ListCentersRequest()
          request.shortName = shortName
          centers = try await companies.listCenters(request, options: connection.callOptions)
        }
        if connection.json { return Output.message(centers) }
        for center in centers.centers { Output.line(center) }
        var stderr = StandardError()
        for warning in centers.warnings { print("warning: \(warning)", to: &stderr) }
      }
    }
  }
}
