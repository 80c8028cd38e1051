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
