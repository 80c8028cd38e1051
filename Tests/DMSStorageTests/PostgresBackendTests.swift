import Crypto
import DMSDomain
import DMSStorage
import Foundation
import InMemoryLogging
import Logging
import PostgresNIO
import Synchronization
import Testing

extension Backend {
  /// PostgreSQL: a new database per test, the server working as a role that owns no
  /// table (`PostgresScratch`).
  static let postgres = postgres(name: "PostgreSQL")
  /// The same, every write statement touching one company
  /// (`storage.postgres.single-company-statements`).
  static let postgresSingleCompany = postgres(name: "PostgreSQL, one company per statement") {
    $0.singleCompanyStatements = true
  }

  private static func postgres(
    name: String, _ configure: @escaping @Sendable (inout PostgresOptions) -> Void = { _ in }
  )
    -> Backend
  {
    Backend(name: name) {
      var configured = try await PostgresScratch.create(adminURL: PostgresScratch.adminURL ?? "")
      configure(&configured)
      let options = configured
      let box = SecretBox(key: testKey)
      return (
        try await PostgresSettingsStore.open(options: options, secrets: box),
        { try await PostgresSettingsStore.open(options: options, secrets: box) }
      )
    }
  }
}

/// What the racing writers saw: the highest revision a write returned, every revision
/// returned, and what a check got wrong.
private final class RevisionLedger: Sendable {
  let state = Mutex<(highest: Int64, returned: [Int64], stale: [String])>((1, [], []))
}

/// A new database's options (`PostgresScratch`), writing one company per statement or not.
private func scratchOptions(singleCompanyStatements: Bool) async throws -> PostgresOptions {
  var options = try await PostgresScratch.create(adminURL: try #require(PostgresScratch.adminURL))
  options.singleCompanyStatements = singleCompanyStatements
  return options
}

/// Runs `sql` on `connection`; the first column of each row as text.
private func column(_ connection: PostgresConnection, _ sql: String) async throws -> [String] {
  var values: [String] = []
  for try await row in try await connection.query(PostgresQuery(unsafeSQL: sql), logger: connection.logger) {
    values.append(try row.decode(String.self))
  }
  return values
}

@Suite("PostgreSQL backend", .enabled(if: PostgresScratch.adminURL != nil, "DMS_TEST_POSTGRES names no PostgreSQL"))
struct PostgresBackendTests {
  @Test("row-level security: with no company set, or another, the server's role sees and changes nothing")
  func rowLevelSecurity() async throws {
    let options = try await PostgresScratch.create(adminURL: try #require(PostgresScratch.adminURL))
    let store = try await PostgresSettingsStore.open(options: options, secrets: SecretBox(key: testKey))
    let field = Company.Secret.operatorPassword.rawValue
    let (a, _) = try await store.create("A", company("A"), secrets: [field: .set("alpha")])
    let (b, _) = try await store.create("B", company("B"), secrets: [field: .set("beta")])
    // MAIL-2, MAIL-3: the queue's tables are company-owned too.
    let claimed = try await store.mailQueue.enqueue(
      OutgoingMail(to: ["a@b.pl"], subject: "s", text: "t", attachments: [.init(fileName: "f", content: [1])]),
      messageID: "m@b.pl", for: a, by: tester)
    if let claim = try await store.mailQueue.claimDueMails(now: Date().addingTimeInterval(1), lease: 1, limit: 1).first
    {
      try await store.mailQueue.recordFailure(
        claim, outcome: MailFailureOutcome(outcome: "permanent", replyCode: 550, message: "x"), at: Date(),
        retryAt: nil)
    }
    #expect(claimed.company == a)
    await store.shutdown()

    // As the server's own role, outside the store: what a bug in its scoping would run.
    let app = try await PostgresScratch.connect(options.endpoint)
    defer { Task { try? await app.close() } }
    for table in [
      "company_document", "company_secret", #""ProcessMails""#, #""ProcessMailsAttachment""#, #""DF_WorkLogEntries""#,
    ] {
      #expect(try await column(app, "SELECT count(*)::text FROM \(table)") == ["0"], "\(table), no company set")
    }
    _ = try await column(app, "SELECT set_config('dms.company', '\(a.id)', false)")
    #expect(try await column(app, "SELECT DISTINCT company_id::text FROM company_document") == ["\(a.id)"])
    #expect(try await column(app, #"SELECT count(*)::text FROM "DF_WorkLogEntries""#) == ["1"])
    _ = try await column(app, "SELECT set_config('dms.company', '\(b.id)', false)")
    #expect(try await column(app, #"SELECT count(*)::text FROM "ProcessMails""#) == ["0"])
    _ = try await column(app, "SELECT set_config('dms.company', '\(a.id)', false)")
    #expect(try await column(app, "SELECT count(*)::text FROM company_secret WHERE company_id = \(b.id)") == ["0"])
    // Another company's rows cannot be changed or added while A is set.
    #expect(
      try await column(
        app,
        "WITH u AS (UPDATE company_document SET revision = 99 WHERE company_id = \(b.id) RETURNING 1) SELECT count(*)::text FROM u"
      ) == ["0"])
    await #expect(throws: PSQLError.self) {
      _ = try await column(
        app,
        "INSERT INTO company_secret (company_id, area, field, ciphertext) VALUES (\(b.id), 'x', 'y', '\\x00') RETURNING 'no'"
      )
    }
    // The role owns nothing: it cannot switch the policies off.
    await #expect(throws: PSQLError.self) {
      _ = try await column(app, "ALTER TABLE company_document NO FORCE ROW LEVEL SECURITY")
    }
    // The store itself still reads both, each in its own scope.
    let again = try await PostgresSettingsStore.open(options: options, secrets: SecretBox(key: testKey))
    #expect(try await again.reveal(Company.self, field, of: a) == "alpha")
    #expect(try await again.reveal(Company.self, field, of: b) == "beta")
    #expect(try await again.registry.documentOfEveryCompany(Company.self).map(\.0.code) == ["A", "B"])
    await again.shutdown()
  }

  @Test("secrets at rest: the database holds ciphertext, never the plaintext")
  func noPlaintext() async throws {
    let options = try await PostgresScratch.create(adminURL: try #require(PostgresScratch.adminURL))
    let store = try await PostgresSettingsStore.open(options: options, secrets: SecretBox(key: testKey))
    let secret = "plain-text-secret-\(UUID().uuidString)"
    _ = try await store.create("S", company("S"), secrets: [Company.Secret.ksefToken.rawValue: .set(secret)])
    await store.shutdown()
    var owner = try #require(options.owner)
    owner.user = "postgres"
    let admin = try await PostgresScratch.connect(owner)
    defer { Task { try? await admin.close() } }
    let dump = try await column(
      admin,
      """
      SELECT encode(ciphertext, 'escape') FROM company_secret
      UNION ALL SELECT convert_from(body, 'UTF8') FROM company_document
      UNION ALL SELECT detail || field FROM audit_entry
      """)
    #expect(!dump.isEmpty)
    #expect(!dump.contains { $0.contains(secret) })
  }

  @Test(
    "a write the database refuses (a trigger), sent without waiting or gathered with its batch's, fails alone: the batch's other writes commit",
    arguments: [false, true])
  func refusedInBatch(singleCompanyStatements: Bool) async throws {
    let options = try await scratchOptions(singleCompanyStatements: singleCompanyStatements)
    let store = try await PostgresSettingsStore.open(options: options, secrets: SecretBox(key: testKey))
    defer { Task { await store.shutdown() } }
    var keys: [CompanyKey] = []
    for index in 0..<24 { keys.append(try await store.create("R\(index)", company("R\(index)")).0) }
    // One company's document rows and another's secret rows are refused.
    let (badDocument, badSecret) = (keys[5], keys[17])
    var owner = try #require(options.owner)
    owner.user = "postgres"
    let admin = try await PostgresScratch.connect(owner)
    defer { Task { try? await admin.close() } }
    for statement in [
      "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$",
      "CREATE TRIGGER refuse_document BEFORE INSERT OR UPDATE ON company_document FOR EACH ROW WHEN (NEW.company_id = \(badDocument.id)) EXECUTE FUNCTION refuse()",
      "CREATE TRIGGER refuse_secret BEFORE INSERT OR UPDATE ON company_secret FOR EACH ROW WHEN (NEW.company_id = \(badSecret.id)) EXECUTE FUNCTION refuse()",
    ] {
      _ = try await column(admin, statement)
    }
    let field = Company.Secret.operatorPassword.rawValue
    for round in 1...3 {
      let outcomes = await concurrently(keys) { _, key in
        let refused = key == badDocument || key == badSecret
        _ = try await store.write(
          company(key.code, name: "round \(round)"), to: key, secrets: [field: .set("pw-\(round)")],
          expectedRevision: refused ? 1 : Int64(round))
      }
      for (index, key) in keys.enumerated() {
        let refused = key == badDocument || key == badSecret
        #expect(outcomes[index] == !refused, "round \(round), write \(index)")
        let stored = try await store.read(Company.self, of: key)
        #expect(stored?.revision == (refused ? 1 : Int64(round + 1)), "round \(round), write \(index)")
        #expect(stored?.secretsSet == (refused ? [] : [field]), "round \(round), write \(index)")
      }
    }
    // What the database holds (read by a new store, with nothing cached).
    let again = try await PostgresSettingsStore.open(options: options, secrets: SecretBox(key: testKey))
    defer { Task { await again.shutdown() } }
    for key in keys {
      let refused = key == badDocument || key == badSecret
      #expect(try await again.read(Company.self, of: key)?.value.name == (refused ? "Company" : "round 3"))
      #expect(try await again.reveal(Company.self, field, of: key) == (refused ? nil : "pw-3"))
    }
  }

  @Test("verifyMasterKey: the key the secrets were written with passes, another is refused (row-level security on)")
  func masterKeyCheck() async throws {
    let options = try await PostgresScratch.create(adminURL: try #require(PostgresScratch.adminURL))
    let store = try await PostgresSettingsStore.open(options: options, secrets: SecretBox(key: testKey))
    try await store.verifyMasterKey()  // nothing stored yet
    _ = try await store.create("S", company("S"), secrets: [Company.Secret.ksefToken.rawValue: .set("token")])
    try await store.verifyMasterKey()
    await store.shutdown()
    let other = try await PostgresSettingsStore.open(
      options: options, secrets: SecretBox(key: SymmetricKey(size: .bits256)))
    await #expect(throws: DatabaseStore.MasterKeyMismatch.self) { try await other.verifyMasterKey() }
    await other.shutdown()
  }

  @Test("two instances starting together on a new database migrate it once")
  func concurrentMigrations() async throws {
    let options = try await PostgresScratch.create(adminURL: try #require(PostgresScratch.adminURL))
    async let first = PostgresSettingsStore.open(options: options, secrets: SecretBox(key: testKey))
    async let second = PostgresSettingsStore.open(options: options, secrets: SecretBox(key: testKey))
    let (one, two) = try await (first, second)
    // APISYS-2: HRM was added once.
    #expect(try await one.apiSystems().map(\.value.name) == ["HRM"])
    let (key, _) = try await one.create("X", company("X"))
    #expect(try await two.registry.company(code: "x") == key)
    await one.shutdown()
    await two.shutdown()
  }

  @Test(
    "an instance starting while another migrates waits for it, past the statement timeout, and says so in the log")
  func waitsForAnotherMigration() async throws {
    var options = try await PostgresScratch.create(adminURL: try #require(PostgresScratch.adminURL))
    options.statementTimeout = .seconds(1)
    // The migrations' lock ("DMSMIGR", PostgresMigrations.lock), held as another
    // instance migrating would hold it: 4 s.
    let lock: Int64 = 0x0444_4D53_4D49_4752
    var owner = try #require(options.owner)
    owner.user = "postgres"
    let other = try await PostgresScratch.connect(owner)
    defer { Task { try? await other.close() } }
    _ = try await column(other, "SELECT pg_advisory_lock(\(lock))::text")
    let release = Task {
      try await Task.sleep(for: .seconds(4))
      _ = try await column(other, "SELECT pg_advisory_unlock(\(lock))::text")
    }
    let log = InMemoryLogHandler()
    let started = ContinuousClock.now
    let store = try await PostgresSettingsStore.open(
      options: options, secrets: SecretBox(key: testKey), logger: Logger(label: "dms.storage") { _ in log })
    #expect(ContinuousClock.now - started >= .seconds(3), "it waited for the lock")
    #expect(try await store.apiSystems().map(\.value.name) == ["HRM"])
    #expect(log.entries.contains { $0.message.description.contains("another instance is migrating") })
    try await release.value
    await store.shutdown()
  }

  /// Waits up to 5 s for `condition`.
  private func eventually(_ condition: () async throws -> Bool) async throws -> Bool {
    let deadline = ContinuousClock.now + .seconds(5)
    while ContinuousClock.now < deadline {
      if try await condition() { return true }
      try await Task.sleep(for: .milliseconds(20))
    }
    return try await condition()
  }

  @Test("two instances on one database: each follows the other's commits (cache, feed, sessions); conflicts ABORT")
  func twoInstances() async throws {
    let options = try await PostgresScratch.create(adminURL: try #require(PostgresScratch.adminURL))
    let a = try await PostgresSettingsStore.open(options: options, secrets: SecretBox(key: testKey))
    let b = try await PostgresSettingsStore.open(options: options, secrets: SecretBox(key: testKey))
    let subscription = try b.changes.subscribe(after: b.changes.lastPosition)
    var watched = subscription.makeAsyncIterator()

    // A creates; B finds it (its cache had nothing) and its watcher sees the change.
    let (key, _) = try await a.create("TWO", company("TWO", name: "first"))
    #expect(try await b.registry.company(code: "two") == key)
    #expect(try await b.read(Company.self, of: key)?.value.name == "first")
    #expect(try #require(try await watched.next()).company == "TWO")

    // A updates: B's cached copy is replaced, its watcher sees revision 2.
    _ = try await a.write(company("TWO", name: "second"), to: key, expectedRevision: 1)
    #expect(try await eventually { try await b.read(Company.self, of: key)?.value.name == "second" })
    #expect(try #require(try await watched.next()).revision == 2)

    // B writes on top; both read revision 3. A's write on the old revision is ABORTED.
    _ = try await b.write(company("TWO", name: "third"), to: key, expectedRevision: 2)
    #expect(try await eventually { try await a.read(Company.self, of: key)?.revision == 3 })
    await #expect {
      _ = try await a.write(company("TWO", name: "stale"), to: key, expectedRevision: 2)
    } throws: { error in
      (error as? StoreError)?.kind == .staleRevision && (error as? StoreError)?.currentRevision == 3
    }
    // B's feed holds its own row and A's, in commit order.
    #expect(try #require(try await watched.next()).revision == 3)

    // A session opened through A is known to B; ended through A, B forgets it.
    let hash = SessionTokenHash(bytes: Data(SHA256.hash(data: Data("token".utf8))))
    let now = Date()
    try await a.operators.transaction(by: tester) { tx in
      let stored = try tx.createOperator(Operator(login: "ola"), passwordHash: nil, mustChangePassword: false)
      try tx.createSession(
        SessionRecord(
          tokenHash: hash, holder: .operator(stored.id), scope: .full, createdAt: now,
          expiresAt: now.addingTimeInterval(3600), peer: "test"))
    }
    #expect(
      try await eventually {
        b.operators.principal(forTokenHash: hash, at: Date(), idleTimeout: .seconds(3600)) != nil
      })
    _ = try await a.operators.transaction(by: tester) { tx in try tx.endSession(tokenHash: hash) }
    #expect(
      try await eventually {
        b.operators.principal(forTokenHash: hash, at: Date(), idleTimeout: .seconds(3600)) == nil
      })

    // A deletes the company: B forgets it.
    try await a.delete(key)
    #expect(try await eventually { try await b.registry.company(code: "TWO") == nil })
    await a.shutdown()
    await b.shutdown()
  }

  @Test(
    "two instances writing the same companies at once: a batch that waited for the other's locks checks against its commit (no update lost, no stale ABORTED, no deadlock)",
    arguments: [false, true])
  func racingInstances(singleCompanyStatements: Bool) async throws {
    let options = try await scratchOptions(singleCompanyStatements: singleCompanyStatements)
    let a = try await PostgresSettingsStore.open(options: options, secrets: SecretBox(key: testKey))
    let b = try await PostgresSettingsStore.open(options: options, secrets: SecretBox(key: testKey))
    defer { Task { await a.shutdown() } }
    defer { Task { await b.shutdown() } }
    // Three companies, so that a batch spans several (their rows locked, then read).
    var keys: [CompanyKey] = []
    for index in 0..<3 { keys.append(try await a.create("RACE\(index)", company("RACE\(index)")).0) }
    let ledgers = keys.map { _ in RevisionLedger() }
    await withTaskGroup(of: Void.self) { group in
      for writer in 0..<18 {
        let store = writer % 2 == 0 ? a : b
        let (key, ledger) = (keys[writer % 3], ledgers[writer % 3])
        group.addTask {
          var expected: Int64 = 1
          for attempt in 0..<15 {
            // Committed before this call began: its check must see at least this.
            let floor = ledger.state.withLock { $0.highest }
            do {
              let stored = try await store.write(
                company(key.code, name: "w\(writer)-\(attempt)"), to: key, expectedRevision: expected)
              ledger.state.withLock {
                $0.highest = max($0.highest, stored.revision)
                $0.returned.append(stored.revision)
              }
              expected = stored.revision
            } catch let error as StoreError where error.kind == .staleRevision {
              let current = error.currentRevision ?? 0
              if current < floor {
                ledger.state.withLock { $0.stale.append("writer \(writer): \(current) < \(floor)") }
              }
              expected = max(current, floor)
            } catch {
              ledger.state.withLock { $0.stale.append("writer \(writer): \(error)") }
            }
          }
        }
      }
    }
    // What the database holds (a new store, nothing cached): every write that returned.
    let again = try await PostgresSettingsStore.open(options: options, secrets: SecretBox(key: testKey))
    defer { Task { await again.shutdown() } }
    for (key, ledger) in zip(keys, ledgers) {
      let (highest, returned, stale) = ledger.state.withLock { ($0.highest, $0.returned, $0.stale) }
      #expect(stale == [], "\(key.code)")
      #expect(returned.count >= 6, "\(key.code)")
      #expect(Set(returned).count == returned.count, "\(key.code): a revision returned twice, an update lost")
      #expect(try await again.read(Company.self, of: key)?.revision == highest, "\(key.code)")
      #expect(highest == 1 + Int64(returned.count), "\(key.code)")
    }
  }

  @Test("the database down: UNAVAILABLE at once, nothing half-written, Health false; back up, the store recovers")
  func databaseDown() async throws {
    var options = try await PostgresScratch.create(adminURL: try #require(PostgresScratch.adminURL))
    let proxy = TCPProxy(to: options.endpoint.host, port: options.endpoint.port)
    try await proxy.start()
    options.endpoint.port = proxy.port
    options.owner?.port = proxy.port
    let log = InMemoryLogHandler()
    let logger = Logger(label: "dms.storage") { _ in log }
    let store = try await PostgresSettingsStore.open(options: options, secrets: SecretBox(key: testKey), logger: logger)
    let other = try await PostgresSettingsStore.open(options: options, secrets: SecretBox(key: testKey))
    let (key, _) = try await store.create("DOWN", company("DOWN"))
    #expect(await store.isHealthy())
    // The other instance caches it: only its listener can tell it of the change below.
    #expect(try await other.read(Company.self, of: key)?.revision == 1)

    await proxy.cut()
    let started = ContinuousClock.now
    await #expect {
      _ = try await store.write(company("DOWN", name: "lost"), to: key, expectedRevision: 1)
    } throws: { error in
      (error as? StoreError)?.kind == .unavailable
    }
    await #expect {
      _ = try await store.registry.companies()
    } throws: { error in
      (error as? StoreError)?.kind == .unavailable
    }
    #expect(await !store.isHealthy())
    #expect(ContinuousClock.now - started < .seconds(10), "no hang")
    // Every call fails alike while the database is down: logged once, not once a call.
    for _ in 0..<5 {
      _ = try? await store.write(company("DOWN", name: "lost"), to: key, expectedRevision: 1)
    }
    let unreachable = log.entries.map(\.message.description).filter {
      $0.contains("cannot reach the PostgreSQL database")
    }
    #expect(Set(unreachable).count == unreachable.count, "\(unreachable)")
    #expect(
      try await eventually {
        log.entries.contains { $0.message.description.contains("lost the connection that follows the other") }
      })
    // What the cache holds is still served.
    #expect(try await store.read(Company.self, of: key)?.revision == 1)

    try await proxy.start()
    #expect(try await eventually { await store.isHealthy() })
    // Nothing of the refused write was kept; writes work again, and the other instance
    // (whose listener was cut too) follows them.
    #expect(try await store.write(company("DOWN", name: "back"), to: key, expectedRevision: 1).revision == 2)
    #expect(try await eventually { try await other.read(Company.self, of: key)?.value.name == "back" })
    #expect(
      try await eventually {
        log.entries.contains { $0.message.description.contains("following the other instances' changes again") }
      })
    await store.shutdown()
    await other.shutdown()
    await proxy.cut()
  }

  @Test(
    "sslmode: require encrypts, verify-full checks the certificate against sslrootcert, disable does not encrypt",
    .enabled(if: ProcessInfo.processInfo.environment["DMS_TEST_POSTGRES_CA"] != nil, "a server with TLS"))
  func tls() async throws {
    let ca = try #require(ProcessInfo.processInfo.environment["DMS_TEST_POSTGRES_CA"])
    let base = try await PostgresScratch.create(adminURL: try #require(PostgresScratch.adminURL))
    let encrypted = "SELECT count(*) FROM pg_stat_ssl WHERE pid = pg_backend_pid() AND ssl"
    func open(_ mode: PostgresOptions.TLSMode, root: String?) async throws -> PostgresSettingsStore {
      var options = base
      options.endpoint.tls = mode
      options.endpoint.rootCertificate = root
      options.owner?.tls = mode
      options.owner?.rootCertificate = root
      return try await PostgresSettingsStore.open(options: options, secrets: SecretBox(key: testKey))
    }
    for (mode, root) in [(PostgresOptions.TLSMode.require, nil), (.verifyFull, ca), (.verifyCA, ca)] {
      let store = try await open(mode, root: root)
      #expect(try await store.inspectCount(encrypted) == 1, "\(mode)")
      await store.shutdown()
    }
    let plain = try await open(.disable, root: nil)
    #expect(try await plain.inspectCount(encrypted) == 0)
    await plain.shutdown()
    // A certificate no trusted CA signed: refused, UNAVAILABLE.
    await #expect {
      _ = try await open(.verifyFull, root: nil)
    } throws: { error in
      (error as? StoreError)?.kind == .unavailable
    }
  }
}
