import DMSDomain

/// The settings storage: the company registry, the shared section, and a scoped
/// store per company.
///
/// A backend (SQLite now, PostgreSQL later) conforms to this and to
/// `CompanyScopedStore`, and must pass the conformance suite in
/// `Tests/DMSStorageTests/StoreConformance.swift`.
public protocol SettingsStore: Sendable {
  /// Every company, by code.
  func companies() async throws -> [CompanyKey]

  /// The company with `code`, ignoring case (ERP-3), if registered.
  func company(code: String) async throws -> CompanyKey?

  /// Registers a company and writes its first document, atomically.
  ///
  /// - Throws: `StoreError.alreadyExists` when the code is taken (ignoring case).
  func createCompany<Document: SettingsDocument>(
    code: String,
    document: Document,
    secrets: [String: SecretChange]
  ) async throws -> (CompanyKey, Stored<Document>)

  /// Removes the company and everything stored under it (ERP-19), if its document
  /// of type `Document` is at `expectedRevision`.
  func deleteCompany<Document: SettingsDocument>(
    _ company: CompanyKey,
    checking type: Document.Type,
    expectedRevision: Int64
  ) async throws

  /// Every company's document of `type`, in code order, read in one pass (the
  /// administrator's company list). Companies without one are left out.
  func documentOfEveryCompany<Document: SettingsDocument>(
    _ type: Document.Type
  ) async throws -> [(CompanyKey, Stored<Document>)]

  /// The store of one company's settings: it reaches nothing else.
  func scoped(to company: CompanyKey) -> any CompanyScopedStore

  /// A document of the shared section.
  func readShared<Document: SettingsDocument>(_ type: Document.Type) async throws -> Stored<Document>?

  /// Writes a shared document if the stored one is at `expectedRevision` (0: none yet).
  func writeShared<Document: SettingsDocument>(
    _ document: Document,
    expectedRevision: Int64
  ) async throws -> Stored<Document>

  /// A server-wide value (the mode the data was written in, ...).
  func serverValue(_ key: String) async throws -> String?

  /// Sets a server-wide value.
  func setServerValue(_ key: String, _ value: String) async throws

  /// Whether the database answers (for Health).
  func isHealthy() async -> Bool
}

/// One company's settings. Every operation is scoped to that company by
/// construction: the store holds the company's key and no query can leave it.
public protocol CompanyScopedStore: Sendable {
  /// The company.
  var company: CompanyKey { get }

  /// The company's document of `type`, if written.
  func read<Document: SettingsDocument>(_ type: Document.Type) async throws -> Stored<Document>?

  /// Writes the document and its secret changes together, if the stored one is at
  /// `expectedRevision` (0: none yet).
  ///
  /// - Throws: `StoreError.staleRevision` (with the current one) otherwise.
  func write<Document: SettingsDocument>(
    _ document: Document,
    secrets: [String: SecretChange],
    expectedRevision: Int64
  ) async throws -> Stored<Document>

  /// Removes the company's document of `type` and its secrets.
  func remove<Document: SettingsDocument>(_ type: Document.Type) async throws

  /// A secret's plaintext, nil when unset.
  func revealSecret<Document: SettingsDocument>(_ type: Document.Type, field: String) async throws -> String?
}
