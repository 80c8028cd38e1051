import DMSDomain
import Foundation

extension MailProfile: SettingsDocument {
  public static let area = "mail.profile"
  public static let storedFormat = 1

  public static func encodeStored(_ value: MailProfile) throws -> Data {
    try StoredJSON.encode(MailProfileRecordV1(name: value.name, description: value.description, savedBy: value.savedBy))
  }

  public static func decodeStored(_ data: Data, format: Int) throws -> MailProfile {
    guard format == 1 else {
      throw StoreError.unreadable(area: area, format: format, reason: "this release reads format 1")
    }
    let record = try StoredJSON.decode(MailProfileRecordV1.self, data, area: area, format: format)
    return MailProfile(name: record.name, description: record.description, savedBy: record.savedBy)
  }
}

/// `mail.profile`, format 1. Never change it: add `MailProfileRecordV2` and upgrade from
/// this.
struct MailProfileRecordV1: Codable {
  var name: String
  var description: String
  var savedBy: String
}
