import DMSDomain
import Foundation
import GRDB

/// One company's settings in SQLite: every statement filters on its `company_id`.
struct SQLiteCompanyStore: CompanyScopedStore {
  let store: SQLiteSettingsStore
  let company: CompanyKey

  func read<Document: SettingsDocument>(_ type: Document.Type) async throws -> Stored<Document>? {
    let id = company.id
    if let entry = store.cache.document(companyID: id, area: Document.area) { return entry.stored(type) }
    let generation = store.cache.generation
    let result = try await store.pool.read { db -> (Row, [String])? in
      guard
        let row = try Row.fetchOne(
          db, sql: "SELECT revision, body, updated_at FROM company_document WHERE company_id = ? AND area = ?",
          arguments: [id, Document.area])
      else { return nil }
      let fields = try String.fetchAll(
        db, sql: "SELECT field FROM company_secret WHERE company_id = ? AND area = ?", arguments: [id, Document.area])
      return (row, fields)
    }
    guard let (row, fields) = result else {
      store.cache.fillDocument(companyID: id, area: Document.area, .absent, generation: generation)
      return nil
    }
    let stored = Stored(
      value: try store.decode(type, row["body"]), revision: row["revision"], secretsSet: Set(fields),
      updatedAt: row["updated_at"])
    store.cache.fillDocument(companyID: id, area: Document.area, ReadCache.Entry(stored), generation: generation)
    return stored
  }

  func write<Document: SettingsDocument>(
    _ document: Document,
    secrets: [String: SecretChange],
    expectedRevision: Int64
  ) async throws -> Stored<Document> {
    let body = try store.encode(document)
    let stored = try await store.pool.write { db in
      try self.write(document, body: body, secrets: secrets, expectedRevision: expectedRevision, in: db)
    }
    store.cache.documentWritten(companyID: company.id, area: Document.area, ReadCache.Entry(stored))
    return stored
  }

  /// The write inside a transaction that is already open (also used by
  /// `createCompany`).
  func write<Document: SettingsDocument>(
    _ document: Document,
    body: Data,
    secrets: [String: SecretChange],
    expectedRevision: Int64,
    in db: Database
  ) throws -> Stored<Document> {
    let id = company.id
    guard try Bool.fetchOne(db, sql: "SELECT 1 FROM company WHERE id = ?", arguments: [id]) == true else {
      throw StoreError(.notFound, "no company \(company.code)")
    }
    let current =
      try Int64.fetchOne(
        db, sql: "SELECT revision FROM company_document WHERE company_id = ? AND area = ?",
        arguments: [id, Document.area]) ?? 0
    guard current == expectedRevision else {
      throw StoreError(
        .staleRevision,
        "\(Document.area) of company \(company.code) is at revision \(current), not \(expectedRevision)",
        currentRevision: current)
    }
    let now = Date()
    try db.execute(
      sql: """
        INSERT INTO company_document (company_id, area, revision, body, updated_at) VALUES (?, ?, ?, ?, ?)
        ON CONFLICT (company_id, area) DO UPDATE SET revision = excluded.revision, body = excluded.body,
          updated_at = excluded.updated_at
        """,
      arguments: [id, Document.area, current + 1, body, now])
    for (field, change) in secrets.sorted(by: { $0.key < $1.key }) {
      switch change {
      case .keep:
        continue
      case .clear:
        try db.execute(
          sql: "DELETE FROM company_secret WHERE company_id = ? AND area = ? AND field = ?",
          arguments: [id, Document.area, field])
      case .set(let plaintext):
        let sealed = try store.secrets.seal(plaintext, companyID: id, area: Document.area, field: field)
        try db.execute(
          sql: """
            INSERT INTO company_secret (company_id, area, field, ciphertext) VALUES (?, ?, ?, ?)
            ON CONFLICT (company_id, area, field) DO UPDATE SET ciphertext = excluded.ciphertext
            """,
          arguments: [id, Document.area, field, sealed])
      }
    }
    let fields = try String.fetchAll(
      db, sql: "SELECT field FROM company_secret WHERE company_id = ? AND area = ?", arguments: [id, Document.area])
    return Stored(value: document, revision: current + 1, secretsSet: Set(fields), updatedAt: now)
  }

  func remove<Document: SettingsDocument>(_ type: Document.Type) async throws {
    let id = company.id
    try await store.pool.write { db in
      try db.execute(
        sql: "DELETE FROM company_secret WHERE company_id = ? AND area = ?", arguments: [id, Document.area])
      try db.execute(
        sql: "DELETE FROM company_document WHERE company_id = ? AND area = ?", arguments: [id, Document.area])
    }
    store.cache.documentRemoved(companyID: id, area: Document.area)
  }

  func revealSecret<Document: SettingsDocument>(_ type: Document.Type, field: String) async throws -> String? {
    let id = company.id
    let sealed = try await store.pool.read { db in
      try Data.fetchOne(
        db, sql: "SELECT ciphertext FROM company_secret WHERE company_id = ? AND area = ? AND field = ?",
        arguments: [id, Document.area, field])
    }
    guard let sealed else { return nil }
    return try store.secrets.open(sealed, companyID: id, area: Document.area, field: field)
  }
}
