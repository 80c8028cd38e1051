import DMSDomain
import Foundation

extension Company: SettingsDocument {
  public static let area = "erp.company"
  public static let storedFormat = 2

  public static func encodeStored(_ value: Company) throws -> Data {
    try StoredJSON.encode(CompanyRecordV2(value))
  }

  public static func decodeStored(_ data: Data, format: Int) throws -> Company {
    switch format {
    case 1: return try StoredJSON.decode(CompanyRecordV1.self, data, area: area, format: format).company()
    case 2: return try StoredJSON.decode(CompanyRecordV2.self, data, area: area, format: format).company()
    default: throw StoreError.unreadable(area: area, format: format, reason: "this release reads formats 1 and 2")
    }
  }
}

/// `erp.company`, format 2: format 1's keys and the KSeF certificate (INT-4a), its PEM
/// and thumbprint. Never change it: add `CompanyRecordV3`. Format 1 reads as no
/// certificate.
struct CompanyRecordV2: Codable {
  var base: CompanyRecordV1
  var ksefCertificatePEM: String
  var ksefCertificateThumbprint: String

  private enum Keys: String, CodingKey {
    case ksefCertificatePEM, ksefCertificateThumbprint
  }

  init(_ company: Company) {
    base = CompanyRecordV1(company)
    ksefCertificatePEM = company.ksefCertificate.pem
    ksefCertificateThumbprint = company.ksefCertificate.thumbprint
  }

  init(from decoder: any Decoder) throws {
    base = try CompanyRecordV1(from: decoder)
    let container = try decoder.container(keyedBy: Keys.self)
    ksefCertificatePEM = try container.decode(String.self, forKey: .ksefCertificatePEM)
    ksefCertificateThumbprint = try container.decode(String.self, forKey: .ksefCertificateThumbprint)
  }

  func encode(to encoder: any Encoder) throws {
    try base.encode(to: encoder)
    var container = encoder.container(keyedBy: Keys.self)
    try container.encode(ksefCertificatePEM, forKey: .ksefCertificatePEM)
    try container.encode(ksefCertificateThumbprint, forKey: .ksefCertificateThumbprint)
  }

  func company() throws -> Company {
    var company = try base.company()
    company.ksefCertificate = KSeFCertificate(pem: ksefCertificatePEM, thumbprint: ksefCertificateThumbprint)
    return company
  }
}

/// `erp.company`, format 1: the shape release 0.2 wrote (the keys of the Swift
/// fields of that time). Never change it: add `CompanyRecordV2` and upgrade from this.
struct CompanyRecordV1: Codable {
  var code: String
  var mode: String
  var name: String
  var connection: ERPConnectionRecordV1
  var altumConfiguration: ERPConnectionRecordV1?
  var licenseKeyName: String
  var mappedDatabase: String
  var defaultCenter: String
  var operatorLogin: String
  var useDomain: Bool
  var domainName: String
  var domainGroup: String
  var nip: String
  var eDeliveryAddress: String
  var eDeliverySystemName: String
  var eDeliveryKeyFingerprint: String

  init(_ company: Company) {
    code = company.code
    mode = company.mode.rawValue
    name = company.name
    connection = ERPConnectionRecordV1(company.connection)
    altumConfiguration = company.altumConfiguration.map(ERPConnectionRecordV1.init)
    licenseKeyName = company.licenseKeyName
    mappedDatabase = company.mappedDatabase
    defaultCenter = company.defaultCenter
    operatorLogin = company.operatorLogin
    useDomain = company.useDomain
    domainName = company.domainName
    domainGroup = company.domainGroup
    nip = company.nip
    eDeliveryAddress = company.eDeliveryAddress
    eDeliverySystemName = company.eDeliverySystemName
    eDeliveryKeyFingerprint = company.eDeliveryKeyFingerprint
  }

  func company() throws -> Company {
    Company(
      code: code,
      mode: try StoredJSON.value(ERPMode.self, mode, field: "mode", area: Company.area, format: 1),
      name: name,
      connection: try connection.connection(),
      altumConfiguration: try altumConfiguration?.connection(),
      licenseKeyName: licenseKeyName,
      mappedDatabase: mappedDatabase,
      defaultCenter: defaultCenter,
      operatorLogin: operatorLogin,
      useDomain: useDomain,
      domainName: domainName,
      domainGroup: domainGroup,
      nip: nip,
      eDeliveryAddress: eDeliveryAddress,
      eDeliverySystemName: eDeliverySystemName,
      eDeliveryKeyFingerprint: eDeliveryKeyFingerprint)
  }
}

/// An ERP connection inside `CompanyRecordV1`.
struct ERPConnectionRecordV1: Codable {
  var server: String
  var database: String
  var authentication: String
  var user: String

  init(_ connection: ERPConnection) {
    server = connection.server
    database = connection.database
    authentication = connection.authentication.rawValue
    user = connection.user
  }

  func connection() throws -> ERPConnection {
    ERPConnection(
      server: server, database: database,
      authentication: try StoredJSON.value(
        ERPConnection.Authentication.self, authentication, field: "connection.authentication", area: Company.area,
        format: 1),
      user: user)
  }
}
