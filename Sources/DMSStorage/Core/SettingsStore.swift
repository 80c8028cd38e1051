import DMSDomain

/// The settings storage.
///
/// Two paths, kept apart:
/// - the **company-scoped** one: `read(_:of:)` and `transaction(company:by:_:)`,
///   whose transaction reaches one company's rows and nothing else (on PostgreSQL it
///   also sets the company for row-level security);
/// - the **privileged, cross-company** one: `registry` (create, look up, delete and
///   list companies, the administrator's list, the mode switch).
///
/// Every change is made in a transaction that also writes its audit row and its
/// change-feed row; events, Watch and the caches follow the feed (`changes`).
///
/// A backend (SQLite now, PostgreSQL later) conforms to this and must pass the
/// conformance suite in `Tests/DMSStorageTests/StoreConformance.swift`.
public protocol SettingsStore: Sendable {
  /// The company registry: the privileged, cross-company path.
  var registry: any CompanyRegistry { get }

  /// The operators and their sessions: the security room.
  var operators: any OperatorDirectory { get }

  /// The feed of committed changes.
  var changes: ChangeFeed { get }

  /// The mail queue and its work log (MAIL-2, MAIL-3).
  var mailQueue: any MailQueue { get }

  /// One company's document of `type`, as last committed (served from memory).
  func read<Document: SettingsDocument>(_ type: Document.Type, of company: CompanyKey) async throws
    -> Stored<Document>?

  /// A secret's plaintext for the server's own use (signing in to a mail server), nil
  /// when unset. Not a reveal: it is never returned to a caller, so it is not audited;
  /// an answer that shows a secret goes through `CompanyTransaction.revealSecret`.
  func secretForUse<Document: SettingsDocument>(_ type: Document.Type, field: String, of company: CompanyKey)
    async throws -> String?

  /// A document of the shared section, as last committed.
  func readShared<Document: SettingsDocument>(_ type: Document.Type) async throws -> Stored<Document>?

  /// Runs `body` in one transaction scoped to `company`: everything it writes, with
  /// its audit and change rows, commits together or not at all. `body` may run on a
  /// database thread and must not block on anything else; the transaction it is
  /// given must not escape it.
  ///
  /// Writes that arrive together may share one commit (group commit): each `body`
  /// runs in its own savepoint, so one that throws rolls back alone, and each call
  /// returns only once the shared commit is durable.
  ///
  /// - Throws: what `body` throws (nothing of it is kept), or a `StoreError`.
  func transaction<Result: Sendable>(
    company: CompanyKey,
    by actor: AuditActor,
    _ body: @escaping @Sendable (any CompanyTransaction) throws -> Result
  ) async throws -> Result

  /// Runs `body` in one transaction on the shared section.
  func sharedTransaction<Result: Sendable>(
    by actor: AuditActor,
    _ body: @escaping @Sendable (any SharedTransaction) throws -> Result
  ) async throws -> Result

  /// Whether the database answers and was not found damaged (for Health).
  func isHealthy() async -> Bool

  /// MAIL-6: whether `login` and `password` sign in to the database server as its
  /// administrator, checked by the database itself; nil when the backend has no roles of
  /// its own (SQLite: the server's configured storage administrator stands in).
  ///
  /// - Throws: `StoreError` (`.unavailable`) when the database cannot be reached.
  func verifyDatabaseAdministrator(login: String, password: String) async throws -> DatabaseAdministratorVerdict?
}

/// What the database said of a database administrator's login and password (MAIL-6).
public enum DatabaseAdministratorVerdict: Sendable, Equatable {
  /// Signed in, and an administrator.
  case administrator
  /// Not signed in, or not an administrator: why, without the password.
  case refused(String)
}

/// The privileged, cross-company path: the company registry.
public protocol CompanyRegistry: Sendable {
  /// The company with `code`, ignoring case (ERP-3), if registered (served from memory).
  func company(code: String) async throws -> CompanyKey?

  /// Every company, in code order.
  func companies() async throws -> [CompanyKey]

  /// Every company's document of `type`, in code order, read in one pass (the
  /// administrator's company list). Companies without one are left out.
  func documentOfEveryCompany<Document: SettingsDocument>(
    _ type: Document.Type
  ) async throws -> [(CompanyKey, Stored<Document>)]

  /// The audit rows `query` selects, in its order.
  func auditRecords(matching query: AuditQuery) async throws -> [AuditRecord]

  /// Runs `body` in one transaction that may reach every company (creating and
  /// deleting companies, the mode switch). Same rules as `SettingsStore.transaction`.
  func transaction<Result: Sendable>(
    by actor: AuditActor,
    _ body: @escaping @Sendable (any RegistryTransaction) throws -> Result
  ) async throws -> Result
}

/// A transaction of the registry.
public protocol RegistryTransaction {
  /// Every company, in code order.
  func companies() throws -> [CompanyKey]

  /// The company with `code`, ignoring case.
  func company(code: String) throws -> CompanyKey?

  /// Registers a company.
  ///
  /// - Throws: `StoreError.alreadyExists` (field `short_name`, ERP-3) when the code is taken.
  func createCompany(code: String) throws -> CompanyKey

  /// Removes the company and everything stored under it (ERP-19), with a change row
  /// for each of its documents.
  func deleteCompany(_ company: CompanyKey) throws

  /// The same transaction, scoped to one company.
  func scoped(to company: CompanyKey) -> any CompanyTransaction

  /// The same transaction, on the shared section.
  var shared: any SharedTransaction { get }

  /// A server-wide value (the mode the data was written in, ...).
  func serverValue(_ key: String) throws -> String?

  /// Sets a server-wide value.
  func setServerValue(_ key: String, _ value: String) throws
}

/// One company's part of a transaction. Every statement is scoped to the company by
/// construction: it holds the company's key and no query can leave it.
public protocol CompanyTransaction {
  /// The company.
  var company: CompanyKey { get }

  /// The company's document of `type` as this transaction sees it.
  func read<Document: SettingsDocument>(_ type: Document.Type) throws -> Stored<Document>?

  /// The revision of the company's document of `type` as this transaction sees it
  /// (0: none), without reading the document.
  func revision<Document: SettingsDocument>(of type: Document.Type) throws -> Int64

  /// Writes the document and its secret changes, if the stored one is at
  /// `expectedRevision` (0: none yet), with an audit row and a change row. A write that
  /// changes nothing (the same stored bytes, no secret set, none cleared that is set)
  /// writes nothing and returns the stored document at its revision.
  ///
  /// - Throws: `StoreError.staleRevision` (with the current one) otherwise.
  func write<Document: SettingsDocument>(
    _ document: StagedDocument<Document>,
    secrets: [String: SecretChange],
    expectedRevision: Int64
  ) throws -> Stored<Document>

  /// Removes the company's document of `type` and its secrets (with audit and
  /// change rows); nothing when there is none.
  func remove<Document: SettingsDocument>(_ type: Document.Type) throws

  /// A secret's plaintext, nil when unset; the reveal is written to the audit with
  /// `reason` (whether or not the secret is set).
  func revealSecret<Document: SettingsDocument>(_ type: Document.Type, field: String, reason: String) throws
    -> String?
}

extension CompanyTransaction {
  /// Writes `document` (encoded here, on the writer: stage it before the transaction
  /// on hot paths).
  public func write<Document: SettingsDocument>(
    _ document: Document,
    secrets: [String: SecretChange],
    expectedRevision: Int64
  ) throws -> Stored<Document> {
    try write(try StagedDocument(document), secrets: secrets, expectedRevision: expectedRevision)
  }
}

/// The shared section's part of a transaction.
public protocol SharedTransaction {
  /// A shared document as this transaction sees it.
  func read<Document: SettingsDocument>(_ type: Document.Type) throws -> Stored<Document>?

  /// Writes a shared document if the stored one is at `expectedRevision` (0: none
  /// yet), with audit and change rows; one that changes nothing writes nothing and
  /// returns the stored document at its revision.
  func write<Document: SettingsDocument>(_ document: Document, expectedRevision: Int64) throws -> Stored<Document>
}

extension CompanyRegistry {
  /// The audit rows after `after` (of one company, or all when nil), oldest first,
  /// at most `limit`.
  public func auditRecords(company: CompanyKey?, after: Int64, limit: Int) async throws -> [AuditRecord] {
    try await auditRecords(matching: AuditQuery(companyID: company?.id, cursor: after, limit: limit))
  }
}
