import DMSDomain
import Foundation

extension APIAuthorization: SettingsDocument {
  public static let area = "apiauth"
  public static let storedFormat = 1

  public static func encodeStored(_ value: APIAuthorization) throws -> Data {
    try StoredJSON.encode(
      APIAuthorizationRecordV1(companyName: value.companyName, operatorLogin: value.operatorLogin))
  }

  public static func decodeStored(_ data: Data, format: Int) throws -> APIAuthorization {
    switch format {
    case 1:
      let record = try StoredJSON.decode(APIAuthorizationRecordV1.self, data, area: area, format: 1)
      return APIAuthorization(companyName: record.companyName, operatorLogin: record.operatorLogin)
    default: throw StoreError.unreadable(area: area, format: format, reason: "this release reads format 1")
    }
  }
}

/// `apiauth`, format 1 (release 0.2). Never change it.
struct APIAuthorizationRecordV1: Codable {
  var companyName: String
  var operatorLogin: String
}
