import DMSDomain
import Foundation

extension Company: SettingsDocument {
  public static let area = "erp.company"
  public static let storedFormat = 1

  public static func encodeStored(_ value: Company) throws -> Data {
    try StoredJSON.encode(CompanyRecordV1(value))
  }

  public static func decodeStored(_ data: Data, format: Int) throws -> Company {
    switch format {
    case 1: return try StoredJSON.decode(CompanyRecordV1.self, data, area: area, format: format).company()
    default: throw StoreError.unreadable(area: area, format: format, reason: "this release reads format 1")
    }
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
