import DMSDomain
import Foundation

extension Company: SettingsDocument {
  public static let area = "erp.company"
  public static let storedFormat = 1

  public static func encodeStored(_ value: Company) throws -> Data {
    Data(CompanyRecordV1(value).json())
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

  /// The record's JSON, as `JSONEncoder` with sorted keys writes it (written on every
  /// update, so by hand).
  func json() -> [UInt8] {
    var object = JSONObjectWriter()
    if let altumConfiguration { object.field("altumConfiguration", object: altumConfiguration.jsonObject()) }
    object.field("code", code)
    object.field("connection", object: connection.jsonObject())
    object.field("defaultCenter", defaultCenter)
    object.field("domainGroup", domainGroup)
    object.field("domainName", domainName)
    object.field("eDeliveryAddress", eDeliveryAddress)
    object.field("eDeliveryKeyFingerprint", eDeliveryKeyFingerprint)
    object.field("eDeliverySystemName", eDeliverySystemName)
    object.field("licenseKeyName", licenseKeyName)
    object.field("mappedDatabase", mappedDatabase)
    object.field("mode", mode)
    object.field("name", name)
    object.field("nip", nip)
    object.field("operatorLogin", operatorLogin)
    object.field("useDomain", useDomain)
    return object.finished()
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

  func jsonObject() -> JSONObjectWriter {
    var object = JSONObjectWriter()
    object.field("authentication", authentication)
    object.field("database", database)
    object.field("server", server)
    object.field("user", user)
    return object
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
