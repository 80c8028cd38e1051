import Configuration
import DMSDomain
import DMSServer
import DMSServices
import DMSStorage
import Foundation
import Logging
import NIOSSL

/// Everything `dms-settingsd` reads at start-up: listening, storage, and the
/// deployment configuration (CFG-1 … CFG-8). Every key is in docs/CONFIGURATION.md.
struct DaemonConfiguration {
  var server: ServerConfiguration
  var logLevel: Logger.Level
  var dataDirectory: String
  var masterKeyFile: String
  var masterKeyBase64: String?
  /// How long a write waits for another process holding the database (storage.busy-timeout-ms).
  var busyTimeout: Duration
  /// PostgreSQL instead of SQLite, when `storage.postgres.url` is set.
  var postgres: PostgresOptions?
  var deployment: DeploymentConfiguration
  var security: SecurityConfiguration
  var mail: MailConfiguration
  /// scrypt's cost of new password hashes: N = 2^logN (security.password-hash-log-n).
  var passwordHashLogN: Int
  /// MAIL-6 on SQLite: the storage administrator who saves and deletes database profiles
  /// (storage.administrator, storage.administrator-password-hash).
  var storageAdministrator: DatabaseAdministrators.StorageAccount?
  /// Where KSeF and e-Delivery are (ksef.*, edelivery.*).
  var integrations: IntegrationsConfiguration

  /// The hasher of new password hashes.
  var passwordHasher: PasswordHasher {
    PasswordHasher(parameters: .init(logN: passwordHashLogN, blockSize: 8, parallelism: 1))
  }

  /// Reads and checks every key; the first bad value throws `ConfigurationError`.
  static func load(from reader: ConfigReader, serverName: String) throws -> DaemonConfiguration {
    let values = ConfigValues(reader: reader)

    // Listening
    var server = ServerConfiguration(serverName: serverName)
    server.host = values.string("server.host", default: "127.0.0.1")
    server.port = try values.int("server.port", default: ServerConfiguration.defaultPort, range: 0...65535)
    server.limits.maxConcurrentCalls = try values.int(
      "server.max-concurrent-calls", default: 128, range: 1...65535)
    server.limits.maxFrameSize = try values.int(
      "server.max-frame-size", default: 4 << 20, range: (64 << 10)...(64 << 20))
    server.limits.maxBufferedBytes = try values.int(
      "server.max-buffered-bytes", default: 32 << 20, range: (1 << 20)...(1 << 30))
    server.timeouts.idle = .seconds(try values.int("server.idle-timeout", default: 300, range: 1...86_400))
    server.timeouts.shutdownGrace = .seconds(try values.int("server.shutdown-grace", default: 10, range: 0...3600))
    let certificate = values.optionalString("server.tls.certificate")
    let key = values.optionalString("server.tls.key")
    let clientCA = values.optionalString("server.tls.client-ca")
    switch (certificate, key) {
    case (nil, nil):
      if clientCA != nil {
        throw ConfigurationError(
          description: "server.tls.client-ca needs TLS: set server.tls.certificate and server.tls.key too")
      }
    case (let certificate?, let key?):
      do {
        server.tls = TLSConfiguration.makeServerConfiguration(
          certificateChain: try NIOSSLCertificate.fromPEMFile(certificate).map { .certificate($0) },
          privateKey: .privateKey(try NIOSSLPrivateKey(file: key, format: .pem)))
      } catch {
        if let text = FileManager.default.contents(atPath: key),
          String(decoding: text, as: UTF8.self).contains("ENCRYPTED")
        {
          throw ConfigurationError(
            description:
              "server.tls.key \(key) is encrypted: the server starts unattended, so give it the key without its passphrase (openssl pkey -in \(key) -out PLAIN.pem), readable by the server's user only"
          )
        }
        throw ConfigurationError(
          description:
            "server.tls.certificate \(certificate) / server.tls.key \(key): cannot load them as PEM (\(error))")
      }
      // The pair as the listener will use it: a key that is not the certificate's own is
      // said now, not by every handshake failing later.
      do {
        _ = try NIOSSLContext(configuration: server.tls!)  // swift-format-ignore: NeverForceUnwrap
      } catch {
        throw ConfigurationError(
          description:
            "server.tls.key \(key) is not the private key of server.tls.certificate \(certificate) (the first certificate in the file must be the server's own) (\(error))"
        )
      }
      if let clientCA {
        // Mutual TLS: the handshake fails unless the client presents a certificate
        // signed by one of these CAs (docs/SECURITY.md#mutual-tls).
        do {
          let roots = try NIOSSLCertificate.fromPEMFile(clientCA)
          guard !roots.isEmpty else { throw ConfigurationError(description: "no certificate in the file") }
          server.tls?.trustRoots = .certificates(roots)
          server.tls?.certificateVerification = .noHostnameVerification
        } catch {
          throw ConfigurationError(
            description: "server.tls.client-ca \(clientCA): cannot load it as PEM certificates (\(error))")
        }
      }
    default:
      throw ConfigurationError(
        description: "server.tls.certificate and server.tls.key go together: set both or neither")
    }
    let levelText = values.string("log.level", default: "info")
    guard let logLevel = Logger.Level(rawValue: levelText.lowercased()) else {
      throw ConfigurationError.badValue(
        "log.level", levelText, allowed: Logger.Level.allCases.map(\.rawValue).joined(separator: ", "))
    }

    // Storage
    let dataDirectory = values.string("storage.data-directory", default: "data")
    let busyTimeout = Duration.milliseconds(
      try values.int("storage.busy-timeout-ms", default: 10_000, range: 0...600_000))
    let masterKeyFile = values.string(
      "storage.master-key-file", default: (dataDirectory as NSString).appendingPathComponent("master.key"))
    let postgres = try loadPostgres(values)
    let storageAdministrator = try loadStorageAdministrator(values, postgres: postgres != nil)

    // Deployment configuration, CFG-1 … CFG-8
    var deployment = DeploymentConfiguration()
    deployment.mode = try values.bool("settings.multi-company", default: false) ? .multiCompany : .singleCompany
    deployment.ksefWorkMode = try values.choice("settings.ksef-work-mode", default: .demo)
    deployment.deleteMailsAfterSending = try values.bool("settings.delete-mails-after-sending", default: false)
    deployment.useNewModeOfDocumentPermissions = try values.bool(
      "settings.use-new-mode-of-document-permissions", default: false)
    deployment.destinationAttachmentWorkflow = try values.choice(
      "settings.destination-attachment-workflow", default: .database)
    deployment.destinationAttachmentsRepository = try values.choice(
      "settings.destination-attachments-repository", default: .database)
    deployment.useRepository = try values.bool("settings.use-repository", default: false)
    deployment.eDeliveryEnvironment = try values.choice("settings.edelivery-environment", default: .production)

    let versionTexts = values.list(
      "settings.api-versions", default: SharedSettings.Choices.defaults.apiVersions.map(String.init))
    var versions: [Int] = []
    for text in versionTexts {
      guard let version = Int(text), version > 0 else {
        throw ConfigurationError.badValue(
          "settings.api-versions", versionTexts.joined(separator: ","),
          allowed: "a comma-separated list of API versions such as 20232,20240,20241")
      }
      versions.append(version)
    }
    let modes = values.list(
      "settings.document-control-modes", default: SharedSettings.Choices.defaults.documentControlModes)
    guard !versions.isEmpty else {
      throw ConfigurationError.badValue("settings.api-versions", "", allowed: "at least one API version")
    }
    guard !modes.isEmpty else {
      throw ConfigurationError.badValue("settings.document-control-modes", "", allowed: "at least one mode")
    }
    deployment.sharedChoices = SharedSettings.Choices(apiVersions: versions, documentControlModes: modes)
    let code = values.string("settings.single-company-code", default: "MAIN")
    guard Company.isValidCode(code) else {
      throw ConfigurationError.badValue(
        "settings.single-company-code", code, allowed: "1 to 5 letters, digits, '-' or '_' (a short name, ERP-3)")
    }
    deployment.singleCompanyCode = code

    // Sign-in and sessions (docs/SECURITY.md)
    var security = SecurityConfiguration()
    security.sessionLifetime = .seconds(
      60 * (try values.int("security.session-lifetime-minutes", default: 720, range: 5...43_200)))
    security.idleTimeout = .seconds(
      60 * (try values.int("security.session-idle-minutes", default: 60, range: 1...1440)))
    security.throttle.freeFailuresPerLogin = try values.int("security.login-free-attempts", default: 3, range: 1...100)
    let logN = try values.int("security.password-hash-log-n", default: 17, range: 10...22)
    security.twoStepIssuer = values.string("security.two-step-issuer", default: security.twoStepIssuer)
    guard (1...64).contains(security.twoStepIssuer.count), !security.twoStepIssuer.contains(":") else {
      throw ConfigurationError.badValue(
        "security.two-step-issuer", security.twoStepIssuer, allowed: "1 to 64 characters without ':'")
    }

    // The mail queue and its worker (docs/settings/MAIL.md)
    var mail = MailConfiguration()
    mail.limits.maxMessageBytes = try values.int(
      "mail.max-message-bytes", default: mail.limits.maxMessageBytes, range: (64 << 10)...(1 << 30))
    mail.limits.maxAttachments = try values.int(
      "mail.max-attachments", default: mail.limits.maxAttachments, range: 0...1000)
    mail.limits.maxRecipients = try values.int(
      "mail.max-recipients", default: mail.limits.maxRecipients, range: 1...10_000)
    mail.retry.maxAttempts = try values.int("mail.max-attempts", default: mail.retry.maxAttempts, range: 1...100)
    mail.retry.firstDelay = Double(try values.int("mail.first-retry-seconds", default: 30, range: 1...86_400))
    mail.retry.maxDelay = Double(try values.int("mail.max-retry-seconds", default: 3600, range: 1...604_800))
    mail.leaseSeconds = Double(try values.int("mail.lease-seconds", default: 300, range: 10...86_400))
    mail.batchSize = try values.int("mail.batch-size", default: mail.batchSize, range: 1...1000)
    mail.pollSeconds = Double(try values.int("mail.poll-seconds", default: 5, range: 1...3600))
    mail.senderThreads = try values.int("mail.sender-threads", default: mail.senderThreads, range: 1...64)
    mail.connectTimeout = Double(try values.int("mail.connect-timeout-seconds", default: 10, range: 1...600))
    mail.sendTimeout = Double(try values.int("mail.send-timeout-seconds", default: 120, range: 1...3600))
    guard mail.leaseSeconds > mail.sendTimeout else {
      throw ConfigurationError(
        description:
          "mail.lease-seconds (\(Int(mail.leaseSeconds))) must be longer than mail.send-timeout-seconds (\(Int(mail.sendTimeout))): a message being sent would be claimed again"
      )
    }

    let integrations = try loadIntegrations(values)

    return DaemonConfiguration(
      server: server,
      logLevel: logLevel,
      dataDirectory: dataDirectory,
      masterKeyFile: masterKeyFile,
      masterKeyBase64: values.optionalString("storage.master-key"),
      busyTimeout: busyTimeout,
      postgres: postgres,
      deployment: deployment,
      security: security,
      mail: mail,
      passwordHashLogN: logN,
      storageAdministrator: storageAdministrator,
      integrations: integrations)
  }

  /// `ksef.*` and `edelivery.*`: the environments' URLs (https), CA files, the waits.
  private static func loadIntegrations(_ values: ConfigValues) throws -> IntegrationsConfiguration {
    var integrations = IntegrationsConfiguration()
    for (mode, key) in [
      (DeploymentConfiguration.KSeFWorkMode.test, "ksef.test-url"), (.demo, "ksef.demo-url"),
      (.production, "ksef.production-url"),
    ] {
      if let url = try httpsURL(values, key, example: integrations.ksefBaseURLs[mode]!) {
        integrations.ksefBaseURLs[mode] = url
      }
    }
    for (environment, key) in [
      (DeploymentConfiguration.EDeliveryEnvironment.production, "edelivery.production-token-url"),
      (.test, "edelivery.test-token-url"),
    ] {
      if let url = try httpsURL(values, key, example: integrations.eDeliveryTokenURLs[environment]!) {
        integrations.eDeliveryTokenURLs[environment] = url
      }
    }
    integrations.ksefTrustedCertificates = try certificates(values, "ksef.ca-file")
    integrations.eDeliveryTrustedCertificates = try certificates(values, "edelivery.ca-file")
    integrations.ksefRequestTimeout = Double(try values.int("ksef.timeout-seconds", default: 15, range: 1...300))
    integrations.ksefMaxWait = Double(try values.int("ksef.max-wait-seconds", default: 30, range: 1...600))
    integrations.eDeliveryTimeout = Double(try values.int("edelivery.timeout-seconds", default: 15, range: 1...300))
    return integrations
  }

  /// The https:// URL `key` holds, if set.
  private static func httpsURL(_ values: ConfigValues, _ key: String, example: String) throws -> String? {
    guard let url = values.optionalString(key) else { return nil }
    guard let parts = URLComponents(string: url), parts.scheme == "https", parts.host?.isEmpty == false,
      parts.query == nil
    else {
      throw ConfigurationError.badValue(key, url, allowed: "an https:// URL, such as \(example)")
    }
    return url
  }

  /// The PEM certificates in the file `key` names ("" when unset).
  private static func certificates(_ values: ConfigValues, _ key: String) throws -> String {
    guard let file = values.optionalString(key) else { return "" }
    guard let pem = FileManager.default.contents(atPath: file).map({ String(decoding: $0, as: UTF8.self) }),
      pem.contains("-----BEGIN CERTIFICATE-----")
    else {
      throw ConfigurationError(description: "\(key) \(file): cannot read PEM certificates from it")
    }
    return pem
  }

  /// `storage.administrator` and its hash: both or neither, and SQLite's only (PostgreSQL
  /// checks its own roles).
  private static func loadStorageAdministrator(_ values: ConfigValues, postgres: Bool) throws
    -> DatabaseAdministrators.StorageAccount?
  {
    let login = values.optionalString("storage.administrator")
    let hash = values.optionalString("storage.administrator-password-hash")
    guard login != nil || hash != nil else { return nil }
    if postgres {
      throw ConfigurationError(
        description:
          "storage.administrator is for SQLite: on PostgreSQL (storage.postgres.url) the database profile is saved by a role of the database (docs/settings/MAIL.md); unset it"
      )
    }
    guard let login, let hash else {
      throw ConfigurationError(
        description: "storage.administrator and storage.administrator-password-hash go together: set both or neither")
    }
    guard (1...256).contains(login.count), !login.contains(where: \.isWhitespace) else {
      throw ConfigurationError.badValue(
        "storage.administrator", login, allowed: "a login of 1 to 256 characters, no spaces")
    }
    guard let parsed = PasswordHasher.Hash(encoded: hash) else {
      throw ConfigurationError(
        description:
          "storage.administrator-password-hash is not a password hash this server reads ($scrypt$ln=…,r=…,p=…$salt$hash): make one with dms-settingsd hash-password"
      )
    }
    return DatabaseAdministrators.StorageAccount(login: login, passwordHash: parsed)
  }

  /// The `storage.postgres.*` keys: nil when `storage.postgres.url` is unset (then the
  /// others must be unset too: they would do nothing).
  private static func loadPostgres(_ values: ConfigValues) throws -> PostgresOptions? {
    let tuning = [
      "storage.postgres.owner-url", "storage.postgres.pool-size", "storage.postgres.writers",
      "storage.postgres.statement-timeout-ms", "storage.postgres.connect-timeout-ms",
      "storage.postgres.single-company-statements",
    ]
    guard let url = values.optionalString("storage.postgres.url") else {
      if let stray = tuning.first(where: { values.text($0) != nil }) {
        throw ConfigurationError(
          description:
            "configuration key \(stray) is set but storage.postgres.url is not: set the URL to use PostgreSQL, or remove \(stray) (see docs/CONFIGURATION.md)"
        )
      }
      return nil
    }
    do {
      var options = PostgresOptions(
        endpoint: try PostgresOptions.Endpoint(url: url, key: "storage.postgres.url"),
        owner: try values.optionalString("storage.postgres.owner-url").map {
          try PostgresOptions.Endpoint(url: $0, key: "storage.postgres.owner-url")
        })
      options.poolSize = try values.int("storage.postgres.pool-size", default: 4, range: 1...64)
      options.writers = try values.int(
        "storage.postgres.writers", default: PostgresOptions.defaultWriters, range: 1...64)
      options.statementTimeout = .milliseconds(
        try values.int("storage.postgres.statement-timeout-ms", default: 10_000, range: 100...600_000))
      options.connectTimeout = .milliseconds(
        try values.int("storage.postgres.connect-timeout-ms", default: 5_000, range: 100...120_000))
      options.singleCompanyStatements = try values.bool("storage.postgres.single-company-statements", default: false)
      if let owner = options.owner,
        owner.host != options.endpoint.host || owner.port != options.endpoint.port
          || owner.database != options.endpoint.database || owner.socketDirectory != options.endpoint.socketDirectory
      {
        throw ConfigurationError(
          description:
            "configuration keys storage.postgres.url and storage.postgres.owner-url name different databases (\(options.endpoint) and \(owner)): they must differ in the role only"
        )
      }
      return options
    } catch let error as PostgresOptions.Invalid {
      throw ConfigurationError(description: "configuration key \(error.message) (see docs/CONFIGURATION.md)")
    }
  }
}
