import DMSDomain
import DMSStorage
import Foundation

/// Who the tests are, in the audit.
let tester = AuditActor(peer: "127.0.0.1:1", userAgent: "storage-tests", requestID: "t-1")

func company(_ code: String, name: String = "Company") -> Company {
  Company(
    code: code, mode: .erpXL, name: name,
    connection: ERPConnection(server: "sql01", database: "ERPXL_\(code)", authentication: .sql, user: "dms"))
}

/// Short forms of one-operation transactions.
extension SettingsStore {
  func create<Document: SettingsDocument>(
    _ code: String, _ document: Document, secrets: [String: SecretChange] = [:]
  ) async throws -> (CompanyKey, Stored<Document>) {
    try await registry.transaction(by: tester) { tx in
      let key = try tx.createCompany(code: code)
      return (key, try tx.scoped(to: key).write(document, secrets: secrets, expectedRevision: 0))
    }
  }

  func write<Document: SettingsDocument>(
    _ document: Document, to key: CompanyKey, secrets: [String: SecretChange] = [:], expectedRevision: Int64
  ) async throws -> Stored<Document> {
    try await transaction(company: key, by: tester) { tx in
      try tx.write(document, secrets: secrets, expectedRevision: expectedRevision)
    }
  }

  func reveal<Document: SettingsDocument>(_ type: Document.Type, _ field: String, of key: CompanyKey) async throws
    -> String?
  {
    try await transaction(company: key, by: tester) { tx in try tx.revealSecret(type, field: field, reason: "test") }
  }

  func delete(_ key: CompanyKey) async throws {
    try await registry.transaction(by: tester) { tx in try tx.deleteCompany(key) }
  }

  func writeShared<Document: SettingsDocument>(_ document: Document, expectedRevision: Int64) async throws
    -> Stored<Document>
  {
    try await sharedTransaction(by: tester) { tx in try tx.write(document, expectedRevision: expectedRevision) }
  }
}

/// An error thrown by a test's transaction body.
struct Refused: Error {}

/// Runs `write` for each of `keys` at once (so that group commit batches them); whether
/// each succeeded, by index.
func concurrently(
  _ keys: [CompanyKey], _ write: @escaping @Sendable (Int, CompanyKey) async throws -> Void
) async -> [Int: Bool] {
  await withTaskGroup(of: (Int, Bool).self) { group in
    for (index, key) in keys.enumerated() {
      group.addTask {
        do {
          try await write(index, key)
          return (index, true)
        } catch {
          return (index, false)
        }
      }
    }
    var outcomes: [Int: Bool] = [:]
    for await (index, ok) in group { outcomes[index] = ok }
    return outcomes
  }
}
