/// A company's ERP connection definition (multi-company mode), rules ERP-1 … ERP-17.
///
/// Secrets (the connection passwords, the ERP operator's password, the KSeF token, the
/// e-Delivery private key) are not part of this value: they are stored encrypted,
/// apart, and named by `Company.Secret`.
public struct Company: Sendable, Hashable {
  /// The company's secret fields.
  public enum Secret: String, Sendable, CaseIterable {
    /// ERP-4: the ERP database login's password.
    case connectionPassword = "connection.password"
    /// ERP-4: the Altum configuration database login's password.
    case altumConfigurationPassword = "altum_configuration.password"
    /// ERP-9: the ERP operator's password.
    case operatorPassword = "operator_password"
    /// ERP-14: the KSeF authorization token.
    case ksefToken = "ksef_token"
    /// ERP-17: the e-Delivery private key (PEM).
    case eDeliveryPrivateKey = "edelivery_private_key"
    /// INT-4a: the KSeF certificate's private key (PEM).
    case ksefCertificateKey = "ksef_certificate_key"
  }

  /// ERP-3: the short name, at most 5 characters, unique ignoring case; the
  /// company's code in RPC metadata.
  public var code: String
  /// ERP-1.
  public var mode: ERPMode
  /// ERP-2.
  public var name: String
  /// ERP-4.
  public var connection: ERPConnection
  /// ERP-4: Altum's configuration database (Altum mode only).
  public var altumConfiguration: ERPConnection?
  /// ERP-5.
  public var licenseKeyName: String
  /// ERP-6: the mapped ERP database (company name).
  public var mappedDatabase: String
  /// ERP-7: one of the centers published for the company (`CompanyCenters`).
  public var defaultCenter: String
  /// ERP-8.
  public var operatorLogin: String
  /// ERP-10.
  public var useDomain: Bool
  /// ERP-11 (with ERP-10 only).
  public var domainName: String
  /// ERP-12 (with ERP-10 only); "All" allowed.
  public var domainGroup: String
  /// ERP-13: 10 digits, normalized.
  public var nip: String
  /// ERP-15.
  public var eDeliveryAddress: String
  /// ERP-16.
  public var eDeliverySystemName: String
  /// ERP-17: the SHA-256 fingerprint of the private key's public key, when one is set.
  public var eDeliveryKeyFingerprint: String
  /// INT-4a: the KSeF certificate (its private key is `Secret.ksefCertificateKey`).
  public var ksefCertificate: KSeFCertificate

  /// A company; every field but the code defaults to empty.
  public init(
    code: String,
    mode: ERPMode = .erpXL,
    name: String = "",
    connection: ERPConnection = ERPConnection(),
    altumConfiguration: ERPConnection? = nil,
    licenseKeyName: String = "",
    mappedDatabase: String = "",
    defaultCenter: String = "",
    operatorLogin: String = "",
    useDomain: Bool = false,
    domainName: String = "",
    domainGroup: String = "",
    nip: String = "",
    eDeliveryAddress: String = "",
    eDeliverySystemName: String = "",
    eDeliveryKeyFingerprint: String = "",
    ksefCertificate: KSeFCertificate = KSeFCertificate()
  ) {
    self.code = code
    self.mode = mode
    self.name = name
    self.connection = connection
    self.altumConfiguration = altumConfiguration
    self.licenseKeyName = licenseKeyName
    self.mappedDatabase = mappedDatabase
    self.defaultCenter = defaultCenter
    self.operatorLogin = operatorLogin
    self.useDomain = useDomain
    self.domainName = domainName
    self.domainGroup = domainGroup
    self.nip = nip
    self.eDeliveryAddress = eDeliveryAddress
    self.eDeliverySystemName = eDeliverySystemName
    self.eDeliveryKeyFingerprint = eDeliveryKeyFingerprint
    self.ksefCertificate = ksefCertificate
  }

  /// The largest short name, ERP-3.
  public static let maxCodeLength = 5

  /// Whether `code` is a well-formed short name (ERP-3): 1 to 5 characters, letters,
  /// digits, `-` or `_`.
  public static func isValidCode(_ code: String) -> Bool {
    !code.isEmpty && code.count <= maxCodeLength
      && code.unicodeScalars.allSatisfy {
        $0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "-" || $0 == "_"
      }
  }

  /// The key under which codes are unique: ERP-3 ignores case.
  public static func codeKey(_ code: String) -> String {
    code.uppercased()
  }

  /// Checks every rule of the definition; `centers` is the list published for the
  /// company (ERP-7). Returns the value as it is stored (NIP normalized).
  public func validated(centers: [String]) throws(ValidationFailure) -> Company {
    var v = Validator()
    var normalized = self
    if code.isEmpty {
      v.add("short_name", "ERP-3", "is required")
    } else if code.count > Self.maxCodeLength {
      v.add("short_name", "ERP-3", "must be at most \(Self.maxCodeLength) characters (has \(code.count))")
    } else if !Self.isValidCode(code) {
      v.add("short_name", "ERP-3", "may hold only letters, digits, '-' and '_'")
    }
    v.requireText(name, "name", "ERP-2")
    connection.validate("connection", into: &v)
    if let altumConfiguration {
      if mode == .altum {
        altumConfiguration.validate("altum_configuration", into: &v)
      } else {
        v.add("altum_configuration", "ERP-4", "is only for the Altum mode")
      }
    }
    v.limit(licenseKeyName, "license_key_name")
    v.limit(mappedDatabase, "mapped_database")
    v.limit(operatorLogin, "operator_login")
    if !defaultCenter.isEmpty {
      if centers.isEmpty {
        v.add("default_center", "ERP-7", "no centers are published for this company yet (SetCenters)")
      } else if !centers.contains(defaultCenter) {
        v.add(
          "default_center", "ERP-7",
          "must be one of the company's centers: \(centers.prefix(20).joined(separator: ", "))")
      }
    }
    if useDomain {
      v.requireText(domainName, "domain_name", "ERP-11")
      v.requireText(domainGroup, "domain_group", "ERP-12")
    } else {
      v.require(domainName.isEmpty, "domain_name", "ERP-11", "is only set when use_domain (ERP-10) is on")
      v.require(domainGroup.isEmpty, "domain_group", "ERP-12", "is only set when use_domain (ERP-10) is on")
    }
    normalized.ksef = ksef.validated(rules: .company, certificateField: "ksef_certificate", into: &v)
    eDelivery.validate(rules: .company, prefix: "edelivery_", into: &v)
    try v.check()
    return normalized
  }
}
