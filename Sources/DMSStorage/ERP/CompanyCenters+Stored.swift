import DMSDomain
import Foundation

extension CompanyCenters: SettingsDocument {
  public static let area = "erp.centers"
  public static let storedFormat = 1

  public static func encodeStored(_ value: CompanyCenters) throws -> Data {
    try StoredJSON.encode(CompanyCentersRecordV1(centers: value.centers))
  }

  public static func decodeStored(_ data: Data, format: Int) throws -> CompanyCenters {
    switch format {
    case 1:
      return CompanyCenters(
        centers: try StoredJSON.decode(CompanyCentersRecordV1.self, data, area: area, format: 1).centers)
    default: throw StoreError.unreadable(area: area, format: format, reason: "this release reads format 1")
    }
  }
}

/// `erp.centers`, format 1 (release 0.2). Never change it.
struct CompanyCentersRecordV1: Codable {
  var centers: [String]
}
