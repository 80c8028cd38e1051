import DMSDomain
import Foundation

extension SharedSettings: SettingsDocument {
  public static let area = "erp.shared"
  public static let storedFormat = 1

  public static func encodeStored(_ value: SharedSettings) throws -> Data {
    try StoredJSON.encode(
      SharedSettingsRecordV1(
        apiVersion: value.apiVersion, documentControlMode: value.documentControlMode,
        analyticalDescription: value.analyticalDescription))
  }

  public static func decodeStored(_ data: Data, format: Int) throws -> SharedSettings {
    switch format {
    case 1:
      let record = try StoredJSON.decode(SharedSettingsRecordV1.self, data, area: area, format: 1)
      return SharedSettings(
        apiVersion: record.apiVersion, documentControlMode: record.documentControlMode,
        analyticalDescription: record.analyticalDescription)
    default: throw StoreError.unreadable(area: area, format: format, reason: "this release reads format 1")
    }
  }
}

/// `erp.shared`, format 1 (release 0.2). Never change it.
struct SharedSettingsRecordV1: Codable {
  var apiVersion: Int
  var documentControlMode: String
  var analyticalDescription: Bool
}
