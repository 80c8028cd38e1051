import DMSDomain
import Foundation

/// One transaction body's view of the database (either backend): what it writes is
/// collected as audit rows, change rows and, for after the commit, cache updates.
final class StoreTransaction {
  let sql: any SQLSession
  let secrets: SecretBox
  let actor: AuditActor
  /// The transaction's time, to the millisecond as stored (taken by its first write;
  /// a read needs none).
  private(set) lazy var now = Date(
    timeIntervalSince1970: (Date().timeIntervalSince1970 * 1000).rounded(.down) / 1000)
  /// `now` as stored.
  private(set) lazy var nowText = StoredDate.text(now)
  private(set) var effects: [CommitEffect] = []
  /// Whether this is a write transaction (group commit's), whose reads of a company
  /// lock its row first; false for a reader's.
  var writing = false
  /// Companies whose row this transaction has locked (`SQLSession.lockCompany`).
  var lockedCompanies: Set<Int64> = []
  /// Each company's documents, read once per write transaction after its row is
  /// locked (`StoreCompanyTransaction`), or once per batch (`DatabaseStore.prefetch`).
  let snapshots: SnapshotStore

  init(sql: any SQLSession, secrets: SecretBox, actor: AuditActor, snapshots: SnapshotStore = SnapshotStore()) {
    self.sql = sql
    self.secrets = secrets
    self.actor = actor
    self.snapshots = snapshots
  }

  /// Whether changes write their audit and change-feed rows: always, except in the
  /// build `scripts/bench` makes to measure what they cost (`-DBENCH_WITHOUT_JOURNAL`).
  #if BENCH_WITHOUT_JOURNAL
    static let journaling = false
  #else
    static let journaling = true
  #endif

  /// A change-feed row, written with the batch's commit (`Journal`).
  func recordChange(_ kind: SettingsChange.Kind, company: CompanyKey?, area: String, revision: Int64) throws {
    guard Self.journaling else { return }
    effects.append(
      .pendingChange(
        Journal.PendingChange(
          companyID: company?.id,
          change: SettingsChange(position: 0, kind: kind, company: company?.code, area: area, revision: revision),
          at: nowText)))
  }

  /// An audit row, written with the batch's commit (`Journal`).
  func audit(_ entry: AuditTrail.Entry) throws {
    guard Self.journaling else { return }
    effects.append(.audit(Journal.AuditRow(entry: entry, actor: actor, at: nowText)))
  }

  /// Locks `company`'s row before a write to one of its documents, once.
  func lock(_ company: CompanyKey) throws {
    guard writing, !lockedCompanies.contains(company.id) else { return }
    try sql.lockCompany(company.id)
    lockedCompanies.insert(company.id)
  }

  func remember(_ effect: CommitEffect) {
    effects.append(effect)
  }

  /// The names of the secret fields a write changes, for the audit ("set a, b; cleared c").
  static func describe(_ secrets: [String: SecretChange]) -> String {
    var set: [String] = []
    var cleared: [String] = []
    for (field, change) in secrets {
      switch change {
      case .keep: continue
      case .set: set.append(field)
      case .clear: cleared.append(field)
      }
    }
    var parts: [String] = []
    if !set.isEmpty { parts.append("set " + set.sorted().joined(separator: ", ")) }
    if !cleared.isEmpty { parts.append("cleared " + cleared.sorted().joined(separator: ", ")) }
    return parts.joined(separator: "; ")
  }
}

extension StoreTransaction: RegistryTransaction {
  func companies() throws -> [CompanyKey] {
    try sql.rows("SELECT id, code FROM company ORDER BY code_key").map {
      CompanyKey(id: $0["id"], code: $0["code"])
    }
  }

  func company(code: String) throws -> CompanyKey? {
    try sql.row(
      "SELECT id, code FROM company WHERE code_key = ?", [Company.codeKey(code)]
    )
    .map { CompanyKey(id: $0["id"], code: $0["code"]) }
  }

  func createCompany(code: String) throws -> CompanyKey {
    let codeKey = Company.codeKey(code)
    if try sql.value(Bool.self, "SELECT 1 FROM company WHERE code_key = ?", [codeKey])
      == true
    {
      throw StoreError(
        .alreadyExists, "a company with the short name \(code) exists (short names ignore case)",
        field: "short_name", rule: "ERP-3")
    }
    guard
      let id = try sql.value(
        Int64.self, "INSERT INTO company (code, code_key, created_at) VALUES (?, ?, ?) RETURNING id",
        [code, codeKey, nowText])
    else { throw StoreError(.unavailable, "the new company got no id") }
    let key = CompanyKey(id: id, code: code)
    try audit(AuditTrail.Entry(company: key, action: "company.create", area: Company.area))
    remember(.companyCreated(codeKey: codeKey, key))
    return key
  }

  func deleteCompany(_ company: CompanyKey) throws {
    guard
      try sql.value(Bool.self, "SELECT 1 FROM company WHERE id = ?", [company.id]) == true
    else {
      throw StoreError(.notFound, "no company \(company.code)")
    }
    // The batch's documents so far, this company's among them, are in the table.
    try snapshots.flush(sql)
    let areas = try sql.values(
      String.self, "SELECT area FROM company_document WHERE company_id = ? ORDER BY area", [company.id])
    // ON DELETE CASCADE removes every row partitioned under the company.
    try sql.execute("DELETE FROM company WHERE id = ?", [company.id])
    snapshots[company.id] = .some(nil)
    try audit(AuditTrail.Entry(company: company, action: "company.delete", area: Company.area))
    for area in areas { try recordChange(.deleted, company: company, area: area, revision: 0) }
    remember(.companyDeleted(company, codeKey: Company.codeKey(company.code)))
  }

  func scoped(to company: CompanyKey) -> any CompanyTransaction {
    StoreCompanyTransaction(tx: self, company: company)
  }

  var shared: any SharedTransaction { StoreSharedTransaction(tx: self) }

  func serverValue(_ key: String) throws -> String? {
    try sql.value(String.self, "SELECT value FROM server_state WHERE key = ?", [key])
  }

  func setServerValue(_ key: String, _ value: String) throws {
    try sql.execute(
      "INSERT INTO server_state (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
      [key, value])
  }
}

/// Companies' documents as a write transaction found them (`CompanySnapshot`), by
/// company id: `.some(nil)` says the company does not exist.
///
/// PostgreSQL's batches share one (`WriterSession.batchSnapshots`), which also gathers
/// the document rows the batch's jobs write, to send them in one statement at the end
/// of the batch (`flush`) rather than one round trip each.
final class SnapshotStore {
  private var byCompany: [Int64: CompanySnapshot?] = [:]
  /// Whether document writes wait in `pending` for `flush`.
  let gathersWrites: Bool
  /// The document rows written and not yet sent, by company and area (the last write
  /// of each wins; nil: removed), in the order first written.
  private var pending: [DocumentKey: CompanySnapshot.Document?] = [:]
  private var pendingOrder: [DocumentKey] = []
  /// How many document writes were gathered so far (a job that gathered one changed
  /// the batch, as one that sent a write did).
  private(set) var gathered = 0

  struct DocumentKey: Hashable {
    let company: Int64
    let area: String
  }

  init(gathersWrites: Bool = false) {
    self.gathersWrites = gathersWrites
  }

  subscript(id: Int64) -> CompanySnapshot?? {
    get { byCompany[id] }
    _modify { yield &byCompany[id] }
  }

  /// Records a document row to write (nil: to remove) at the next `flush`.
  func gather(company: Int64, area: String, _ document: CompanySnapshot.Document?) {
    gathered += 1
    let key = DocumentKey(company: company, area: area)
    if pending.updateValue(document, forKey: key) == nil { pendingOrder.append(key) }
  }

  /// Sends the gathered document rows: one DELETE for the removed, one multi-row
  /// upsert (per 500) for the others. The statement is the store's own, each row
  /// carrying the company of the transaction that wrote it, so it runs with every
  /// company in scope (row-level security); the jobs' own statements ran in theirs.
  func flush(_ sql: any SQLSession) throws {
    guard !pendingOrder.isEmpty else { return }
    try sql.scope(.all, local: true)
    let (written, removed) = takePending()
    if !removed.isEmpty {
      try sql.send(
        "DELETE FROM company_document WHERE (company_id, area) IN (\(Journal.placeholders(rows: removed.count, columns: 2)))",
        removed.flatMap { [$0.company, $0.area] as [any SQLBindable] })
    }
    for chunk in written.chunked(500) { try Self.upsert(chunk, sql) }
  }

  /// The gathered document rows, taken: those to write and those to remove, each in the
  /// order first written.
  func takePending() -> (written: [(DocumentKey, CompanySnapshot.Document)], removed: [DocumentKey]) {
    defer {
      pending.removeAll(keepingCapacity: true)
      pendingOrder.removeAll(keepingCapacity: true)
    }
    var removed: [DocumentKey] = []
    var written: [(DocumentKey, CompanySnapshot.Document)] = []
    for key in pendingOrder {
      if let document = pending[key] ?? nil {
        written.append((key, document))
      } else {
        removed.append(key)
      }
    }
    return (written, removed)
  }

  /// Writes document rows, in one statement sent without waiting.
  static func upsert(_ rows: some Collection<(DocumentKey, CompanySnapshot.Document)>, _ sql: any SQLSession) throws {
    var arguments: [any SQLBindable] = []
    arguments.reserveCapacity(rows.count * 6)
    for (key, document) in rows {
      arguments +=
        [
          key.company, key.area, document.revision, document.body, document.format,
          StoredDate.text(document.updatedAt),
        ]
        as [any SQLBindable]
    }
    try sql.send(
      """
      INSERT INTO company_document (company_id, area, revision, body, format, updated_at)
      VALUES \(Journal.placeholders(rows: rows.count, columns: 6))
      ON CONFLICT (company_id, area) DO UPDATE SET revision = excluded.revision, body = excluded.body,
        format = excluded.format, updated_at = excluded.updated_at
      """, arguments)
  }
}

/// One company's documents as a write transaction found them, after locking its row.
struct CompanySnapshot {
  /// One stored document.
  struct Document {
    var revision: Int64
    var body: Data
    var format: Int
    var updatedAt: Date
    var secrets: Set<String>
  }

  /// The rows read, by area: each is decoded only when its area is used, so that a
  /// damaged row of one area stops no write of another.
  var rows: [String: SQLRow]
  /// The documents this transaction wrote (nil: removed), by area.
  var written: [String: Document?] = [:]

  /// The snapshot of a company's rows of `company LEFT JOIN company_document` (a row
  /// without an area: the company has no document).
  init(rows: some Sequence<SQLRow>) {
    var byArea: [String: SQLRow] = [:]
    for row in rows {
      if let area = row["area"] as String? { byArea[area] = row }
    }
    self.rows = byArea
  }

  /// `area`'s document, as found or as this transaction left it.
  func document(_ area: String) -> Document? {
    if let own = written[area] { return own }
    guard let row = rows[area] else { return nil }
    return Document(
      revision: row["revision"], body: row["body"], format: row["format"], updatedAt: row["updated_at"],
      secrets: Set(row.joinedList("secrets")))
  }
}

/// A transaction scoped to one company: every statement filters on its `company_id`.
///
/// In a write transaction, the first use locks the company's row (on a database
/// several writers share) and reads all its documents in one statement: the checks and
/// the writes that follow use that snapshot, which the lock keeps true until the
/// commit, and the writes keep it up to date.
struct StoreCompanyTransaction: CompanyTransaction {
  let tx: StoreTransaction
  let company: CompanyKey

  private var sql: any SQLSession { tx.sql }

  /// The column `secrets` of a query over `company_document d`: the names of the
  /// document's secrets that are set (`SQLRow.joinedList`).
  static func secretNames(_ dialect: SQLDialect) -> String {
    """
    (SELECT \(dialect.joined("s.field", "s.field")) FROM company_secret s
      WHERE s.company_id = d.company_id AND s.area = d.area) AS secrets
    """
  }

  /// Locks the companies' rows in the order of their ids, one statement each (one
  /// company per statement: `storage.postgres.single-company-statements`, or a batch
  /// whose gathered writes were refused), sent without waiting. Without it each job
  /// would lock its company when it runs, in the order the batch's jobs came in, and
  /// two instances' batches could each wait for a company the other holds (a deadlock
  /// PostgreSQL breaks only after `deadlock_timeout`, failing a batch).
  static func lockInOrder(_ companies: [Int64], _ sql: any SQLSession) throws {
    let ids = Set(companies).sorted()
    guard ids.count > 1 else { return }
    for id in ids { try sql.lockCompany(id) }
  }

  /// Locks the companies' rows, in the order of their ids (so that batches never wait
  /// for one another in a circle), and reads all their documents into `store`, in two
  /// statements: the jobs of a batch then read nothing more before they write
  /// (PostgreSQL, whose jobs of a batch share their snapshots). Leaves the rows of every
  /// company in scope: each job scopes its own statements.
  static func prefetch(_ companies: [Int64], into store: SnapshotStore, _ sql: any SQLSession) throws {
    let ids = Array(Set(companies)).sorted()
    let list = Journal.placeholders(rows: 1, columns: ids.count)
    // The scope and the lock, then the read in a statement of its own: a statement that
    // waited for a lock would still read the other tables as they were when it began,
    // before the commit it waited for.
    try sql.setScope(RowScope.all.settings, local: true, locking: ids)
    let rows = try sql.rows(
      """
      SELECT c.id AS company, d.area, d.revision, d.body, d.format, d.updated_at, \(secretNames(sql.dialect))
      FROM company c LEFT JOIN company_document d ON d.company_id = c.id
      WHERE c.id IN \(list)
      """, ids)
    var found: [Int64: [SQLRow]] = [:]
    for row in rows { found[row["company"], default: []].append(row) }
    for id in ids { store[id] = .some(found[id].map(CompanySnapshot.init(rows:))) }
  }

  /// The company's documents (nil when the company no longer exists).
  private func snapshot() throws -> CompanySnapshot? {
    if let known = tx.snapshots[company.id] { return known }
    try tx.lock(company)
    let rows = try sql.rows(
      """
      SELECT d.area, d.revision, d.body, d.format, d.updated_at, \(Self.secretNames(sql.dialect))
      FROM company c LEFT JOIN company_document d ON d.company_id = c.id
      WHERE c.id = ?
      """, [company.id])
    guard !rows.isEmpty else {
      tx.snapshots[company.id] = .some(nil)
      return nil
    }
    let snapshot = CompanySnapshot(rows: rows)
    tx.snapshots[company.id] = snapshot
    return snapshot
  }

  func read<Document: SettingsDocument>(_ type: Document.Type) throws -> Stored<Document>? {
    if tx.writing {
      guard let found = try snapshot()?.document(Document.area) else { return nil }
      return Stored(
        value: try Document.decodeStored(found.body, format: found.format), revision: found.revision,
        secretsSet: found.secrets, updatedAt: found.updatedAt)
    }
    guard
      let row = try sql.row(
        """
        SELECT d.revision, d.body, d.format, d.updated_at, \(Self.secretNames(sql.dialect))
        FROM company_document d WHERE d.company_id = ? AND d.area = ?
        """,
        [company.id, Document.area])
    else { return nil }
    return Stored(
      value: try Document.decodeStored(row["body"], format: row["format"]), revision: row["revision"],
      secretsSet: Set(row.joinedList("secrets")),
      updatedAt: row["updated_at"])
  }

  func revision<Document: SettingsDocument>(of type: Document.Type) throws -> Int64 {
    if tx.writing { return try snapshot()?.document(Document.area)?.revision ?? 0 }
    return try sql.value(
      Int64.self, "SELECT revision FROM company_document WHERE company_id = ? AND area = ?",
      [company.id, Document.area]) ?? 0
  }

  func write<Document: SettingsDocument>(
    _ staged: StagedDocument<Document>,
    secrets: [String: SecretChange],
    expectedRevision: Int64
  ) throws -> Stored<Document> {
    let id = company.id
    guard let snapshot = try snapshot() else {
      throw StoreError(.notFound, "no company \(company.code)")
    }
    let found = snapshot.document(Document.area)
    let current = found?.revision ?? 0
    guard current == expectedRevision else {
      throw StoreError(
        .staleRevision,
        "\(Document.area) of company \(company.code) is at revision \(current), not \(expectedRevision)",
        currentRevision: current)
    }
    var set = found?.secrets ?? []
    // A write that changes nothing is not a change: same revision, no audit, no event.
    if let found, found.format == Document.storedFormat, found.body == staged.body,
      secrets.allSatisfy({ $0.value.leavesUnchanged(isSet: set.contains($0.key)) })
    {
      return Stored(value: staged.value, revision: current, secretsSet: set, updatedAt: found.updatedAt)
    }
    let revision = current + 1
    var written = CompanySnapshot.Document(
      revision: revision, body: staged.body, format: Document.storedFormat, updatedAt: tx.now, secrets: [])
    if tx.snapshots.gathersWrites {
      tx.snapshots.gather(company: id, area: Document.area, written)
    } else {
      try SnapshotStore.upsert([(SnapshotStore.DocumentKey(company: id, area: Document.area), written)], sql)
    }
    for (field, change) in secrets.sorted(by: { $0.key < $1.key }) {
      switch change {
      case .keep:
        continue
      case .clear:
        try sql.send(
          "DELETE FROM company_secret WHERE company_id = ? AND area = ? AND field = ?", [id, Document.area, field])
        set.remove(field)
      case .set(let plaintext):
        let sealed = try tx.secrets.seal(plaintext, companyID: id, area: Document.area, field: field)
        try sql.send(
          """
          INSERT INTO company_secret (company_id, area, field, ciphertext) VALUES (?, ?, ?, ?)
          ON CONFLICT (company_id, area, field) DO UPDATE SET ciphertext = excluded.ciphertext
          """, [id, Document.area, field, sealed])
        set.insert(field)
      }
    }
    written.secrets = set
    tx.snapshots[id]??.written[Document.area] = written
    let stored = Stored(value: staged.value, revision: revision, secretsSet: set, updatedAt: tx.now)
    try tx.audit(
      AuditTrail.Entry(
        company: company, action: current == 0 ? "create" : "update", area: Document.area,
        field: StoreTransaction.describe(secrets), revision: revision))
    try tx.recordChange(current == 0 ? .created : .updated, company: company, area: Document.area, revision: revision)
    tx.remember(.document(companyID: id, area: Document.area, ReadCache.Entry(stored)))
    return stored
  }

  func remove<Document: SettingsDocument>(_ type: Document.Type) throws {
    guard try snapshot()?.document(Document.area) != nil else { return }
    try sql.send("DELETE FROM company_secret WHERE company_id = ? AND area = ?", [company.id, Document.area])
    if tx.snapshots.gathersWrites {
      tx.snapshots.gather(company: company.id, area: Document.area, nil)
    } else {
      try sql.send("DELETE FROM company_document WHERE company_id = ? AND area = ?", [company.id, Document.area])
    }
    tx.snapshots[company.id]??.written[Document.area] = .some(nil)
    try tx.audit(AuditTrail.Entry(company: company, action: "delete", area: Document.area))
    try tx.recordChange(.deleted, company: company, area: Document.area, revision: 0)
    tx.remember(.documentRemoved(companyID: company.id, area: Document.area))
  }

  func revealSecret<Document: SettingsDocument>(_ type: Document.Type, field: String, reason: String) throws
    -> String?
  {
    let sealed = try sql.value(
      Data.self, "SELECT ciphertext FROM company_secret WHERE company_id = ? AND area = ? AND field = ?",
      [company.id, Document.area, field])
    let value = try sealed.map {
      try tx.secrets.open($0, companyID: company.id, area: Document.area, field: field)
    }
    try tx.audit(
      AuditTrail.Entry(
        company: company, action: "reveal", area: Document.area, field: field,
        detail: value == nil ? "\(reason) (not set)" : reason))
    return value
  }
}

/// The shared section inside a transaction.
struct StoreSharedTransaction: SharedTransaction {
  let tx: StoreTransaction

  private var sql: any SQLSession { tx.sql }

  func read<Document: SettingsDocument>(_ type: Document.Type) throws -> Stored<Document>? {
    guard
      let row = try sql.row(
        "SELECT revision, body, format, updated_at FROM shared_document WHERE area = ?", [Document.area])
    else { return nil }
    return Stored(
      value: try Document.decodeStored(row["body"], format: row["format"]), revision: row["revision"], secretsSet: [],
      updatedAt: row["updated_at"])
  }

  func write<Document: SettingsDocument>(_ document: Document, expectedRevision: Int64) throws -> Stored<Document> {
    let found = try sql.row(
      "SELECT revision, body, format, updated_at FROM shared_document WHERE area = ?", [Document.area])
    let current: Int64 = found?[0] ?? 0
    guard current == expectedRevision else {
      throw StoreError(
        .staleRevision, "the shared section is at revision \(current), not \(expectedRevision)",
        currentRevision: current)
    }
    let body = try Document.encodeStored(document)
    // A write that changes nothing is not a change: same revision, no audit, no event.
    if let found, found[2] == Document.storedFormat, found[1] == body {
      return Stored(value: document, revision: current, secretsSet: [], updatedAt: found[3])
    }
    try tx.sql.execute(
      """
      INSERT INTO shared_document (area, revision, body, format, updated_at) VALUES (?, ?, ?, ?, ?)
      ON CONFLICT (area) DO UPDATE SET revision = excluded.revision, body = excluded.body, format = excluded.format,
        updated_at = excluded.updated_at
      """,
      [
        Document.area, current + 1, body, Document.storedFormat, tx.nowText,
      ])
    let stored = Stored(value: document, revision: current + 1, secretsSet: [], updatedAt: tx.now)
    try tx.audit(
      AuditTrail.Entry(
        company: nil, action: current == 0 ? "create" : "update", area: Document.area, revision: current + 1))
    try tx.recordChange(current == 0 ? .created : .updated, company: nil, area: Document.area, revision: current + 1)
    tx.remember(.document(companyID: ReadCache.shared, area: Document.area, ReadCache.Entry(stored)))
    return stored
  }
}
