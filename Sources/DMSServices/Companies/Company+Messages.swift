import DMSDomain
import DMSIntegrations
import DMSMessages
import DMSStorage
import Foundation

extension ERPMode {
  init?(_ mode: Dms_Settings_V1_ERPMode) {
    switch mode {
    case .erpXl: self = .erpXL
    case .optima: self = .optima
    case .altum: self = .altum
    case .enterprise: self = .enterprise
    case .standalone: self = .standalone
    default: return nil
    }
  }

  var message: Dms_Settings_V1_ERPMode {
    switch self {
    case .erpXL: .erpXl
    case .optima: .optima
    case .altum: .altum
    case .enterprise: .enterprise
    case .standalone: .standalone
    }
  }
}

extension ERPConnection {
  init(message: Dms_Settings_V1_ERPConnection, field: String, validator: inout Validator) {
    let authentication: Authentication
    switch message.authentication {
    case .sql: authentication = .sql
    case .integrated: authentication = .integrated
    default:
      validator.add("\(field).authentication", "ERP-4", "must be SQL or INTEGRATED")
      authentication = .sql
    }
    self.init(server: message.server, database: message.database, authentication: authentication, user: message.user)
  }

  func message(passwordSet: Bool) -> Dms_Settings_V1_ERPConnection {
    var message = Dms_Settings_V1_ERPConnection()
    message.server = server
    message.database = database
    message.authentication = authentication == .sql ? .sql : .integrated
    message.user = user
    message.passwordSet = passwordSet
    return message
  }
}

extension Company {
  /// The domain value of a request's company (fields the message cannot express as
  /// the domain wants are reported to `validator`).
  init(message: Dms_Settings_V1_Company, validator: inout Validator) {
    let mode = ERPMode(message.mode)
    if mode == nil {
      validator.add(
        "company.mode", "ERP-1", "must be one of ERP_XL, OPTIMA, ALTUM, ENTERPRISE, STANDALONE")
    }
    self.init(
      code: message.shortName,
      mode: mode ?? .erpXL,
      name: message.name,
      connection: ERPConnection(message: message.connection, field: "company.connection", validator: &validator),
      altumConfiguration: message.hasAltumConfiguration
        ? ERPConnection(
          message: message.altumConfiguration, field: "company.altum_configuration", validator: &validator)
        : nil,
      licenseKeyName: message.licenseKeyName,
      mappedDatabase: message.mappedDatabase,
      defaultCenter: message.defaultCenter,
      operatorLogin: message.operatorLogin,
      useDomain: message.useDomain,
      domainName: message.domainName,
      domainGroup: message.domainGroup,
      nip: message.nip,
      eDeliveryAddress: message.edeliveryAddress,
      eDeliverySystemName: message.edeliverySystemName,
      ksefCertificate: KSeFCertificate(message.ksefCertificate)
    )
  }

  /// The message for a stored company, with its KSeF warnings in the environment `ksef`
  /// (INT-4a, CFG-2).
  static func message(
    _ stored: Stored<Company>, ksef: DeploymentConfiguration.KSeFWorkMode, now: Date = Date()
  ) -> Dms_Settings_V1_Company {
    let company = stored.value
    let set = { (secret: Company.Secret) in stored.secretsSet.contains(secret.rawValue) }
    var message = Dms_Settings_V1_Company()
    message.shortName = company.code
    message.mode = company.mode.message
    message.name = company.name
    message.connection = company.connection.message(passwordSet: set(.connectionPassword))
    if let altum = company.altumConfiguration {
      message.altumConfiguration = altum.message(passwordSet: set(.altumConfigurationPassword))
    }
    message.licenseKeyName = company.licenseKeyName
    message.mappedDatabase = company.mappedDatabase
    message.defaultCenter = company.defaultCenter
    message.operatorLogin = company.operatorLogin
    message.operatorPasswordSet = set(.operatorPassword)
    message.useDomain = company.useDomain
    message.domainName = company.domainName
    message.domainGroup = company.domainGroup
    message.nip = company.nip
    message.ksefTokenSet = set(.ksefToken)
    message.edeliveryAddress = company.eDeliveryAddress
    message.edeliverySystemName = company.eDeliverySystemName
    message.edeliveryPrivateKeySet = set(.eDeliveryPrivateKey)
    message.edeliveryKeyFingerprint = company.eDeliveryKeyFingerprint
    message.revision = stored.revision
    let file = company.ksefCertificate.file  // parsed once, for the message and the warnings
    if company.ksefCertificate.isSet || set(.ksefCertificateKey) {
      message.ksefCertificate = company.ksefCertificate.message(keySet: set(.ksefCertificateKey), file: file)
    }
    message.ksefWarnings = company.ksefWarnings(secretsSet: stored.secretsSet, file: file, mode: ksef, now: now)
    return message
  }

  /// INT-4a, CFG-2: the warnings for the KSeF section as stored, with `secretsSet`.
  /// `file`: the certificate's PEM as parsed (`ksefCertificate.file`).
  func ksefWarnings(
    secretsSet: Set<String>, file: KSeFCertificateFile?, mode: DeploymentConfiguration.KSeFWorkMode, now: Date
  ) -> [String] {
    let tokenSet = secretsSet.contains(Secret.ksefToken.rawValue)
    return KSeFWarnings.warnings(
      inUse: !nip.isEmpty || tokenSet || ksefCertificate.isSet, tokenSet: tokenSet,
      certificateSet: ksefCertificate.isSet,
      certificateValidUntil: file?.validUntil, mode: mode, now: now)
  }
}

extension KSeFCertificate {
  /// The certificate of a request (INT-4a).
  init(_ message: Dms_Settings_V1_KsefCertificate) {
    self.init(pem: message.pem, thumbprint: message.thumbprint.trimmingCharacters(in: .whitespaces))
  }

  /// The PEM as parsed, if there is one and it reads.
  var file: KSeFCertificateFile? { pem.isEmpty ? nil : try? KSeFCertificateFile(pem: pem) }

  /// The certificate as shown: what the PEM (parsed: `file`) says of itself, and whether
  /// its key is set.
  func message(keySet: Bool, file: KSeFCertificateFile?) -> Dms_Settings_V1_KsefCertificate {
    var message = Dms_Settings_V1_KsefCertificate()
    // The certificate's own block: never a key that came with it in a file.
    message.pem = file?.pem ?? pem
    message.thumbprint = thumbprint
    message.privateKeySet = keySet
    if let file {
      message.subject = file.subject
      message.issuer = file.issuer
      message.validFrom = KSeFCertificateRules.timestamp(file.validFrom)
      message.validUntil = KSeFCertificateRules.timestamp(file.validUntil)
    }
    return message
  }
}

extension Company.Secret {
  init?(_ field: Dms_Settings_V1_CompanySecretField) {
    switch field {
    case .connectionPassword: self = .connectionPassword
    case .altumConfigurationPassword: self = .altumConfigurationPassword
    case .operatorPassword: self = .operatorPassword
    case .ksefToken: self = .ksefToken
    case .edeliveryPrivateKey: self = .eDeliveryPrivateKey
    case .ksefCertificatePrivateKey: self = .ksefCertificateKey
    default: return nil
    }
  }
}

extension Company.Secret {
  /// What the secret is, for messages: "ERP operator's password (ERP-9)".
  var displayName: String {
    switch self {
    case .connectionPassword: "ERP database password (ERP-4)"
    case .altumConfigurationPassword: "Altum configuration database password (ERP-4)"
    case .operatorPassword: "ERP operator's password (ERP-9)"
    case .ksefToken: "KSeF token (ERP-14)"
    case .eDeliveryPrivateKey: "e-Delivery private key (ERP-17)"
    case .ksefCertificateKey: "KSeF certificate's private key (INT-4a)"
    }
  }
}
