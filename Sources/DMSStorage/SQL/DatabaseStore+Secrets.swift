import DMSDomain
import Foundation

extension DatabaseStore {
  public func secretForUse<Document: SettingsDocument>(
    _ type: Document.Type, field: String, of company: CompanyKey
  ) async throws -> String? {
    let sealed = try await read(.company(company.id)) { sql in
      try sql.value(
        Data.self, "SELECT ciphertext FROM company_secret WHERE company_id = ? AND area = ? AND field = ?",
        [company.id, Document.area, field])
    }
    return try sealed.map { try secrets.open($0, companyID: company.id, area: Document.area, field: field) }
  }
}

extension DatabaseStore {
  /// Why the master key does not open this database's secrets.
  public struct MasterKeyMismatch: Error, CustomStringConvertible {
    /// The secrets tried (`area/field of company N`), none of which opened.
    public let tried: [String]

    public var description: String {
      "the master key does not open this database's secrets (tried \(tried.joined(separator: ", "))): "
        + "it is not the key they were written with"
    }
  }

  /// Checks that the master key opens the secrets stored (the first few: one that opens
  /// is enough, a single damaged value is not the key's fault). A database restored
  /// without its key, or started with another instance's, would otherwise serve on and
  /// seal new secrets under a second key beside the old ones. Nothing stored: nothing to
  /// check.
  public func verifyMasterKey() async throws {
    let rows = try await read(.all) { sql in
      try sql.rows(
        "SELECT company_id, area, field, ciphertext FROM company_secret ORDER BY company_id, area, field LIMIT 5"
      )
      .map { row -> (Int64, String, String, Data) in (row["company_id"], row["area"], row["field"], row["ciphertext"]) }
    }
    guard !rows.isEmpty else { return }
    for (company, area, field, sealed) in rows {
      if (try? secrets.open(sealed, companyID: company, area: area, field: field)) != nil { return }
    }
    throw MasterKeyMismatch(tried: rows.map { "\($0.1)/\($0.2) of company \($0.0)" })
  }
}
