import Crypto
import DMSDomain
import DMSStorage
import Foundation
import Testing

/// What every `SettingsStore` backend must do. Each backend adds itself to
/// `StoreConformanceTests.backends`: SQLite always, PostgreSQL when `DMS_TEST_POSTGRES`
/// names one (`scripts/test` starts one, so CI runs both).
struct Backend: CustomTestStringConvertible, Sendable {
  let name: String
  /// Opens a store on a fresh, empty database; `reopen` opens the same one again.
  let make:
    @Sendable () async throws -> (store: any SettingsStore, reopen: @Sendable () async throws -> any SettingsStore)
  var testDescription: String { name }

  /// The backends this run tests.
  static var all: [Backend] {
    PostgresScratch.adminURL == nil ? [.sqlite] : [.sqlite, .postgres, .postgresSingleCompany]
  }
}

@Suite("Store conformance")
struct StoreConformanceTests {
  static let backends = Backend.all

  @Test("create, read, update with the right revision, refuse a stale one", arguments: backends)
  func revisions(backend: Backend) async throws {
    let (store, _) = try await backend.make()
    let (key, created) = try await store.create("ACME", company("ACME"))
    #expect(created.revision == 1)
    var value = try #require(try await store.read(Company.self, of: key))
    #expect(value.value == company("ACME"))
    value.value.name = "Acme Sp. z o.o."
    let updated = try await store.write(value.value, to: key, expectedRevision: 1)
    #expect(updated.revision == 2)
    await #expect {
      _ = try await store.write(value.value, to: key, expectedRevision: 1)
    } throws: { error in
      (error as? StoreError)?.kind == .staleRevision && (error as? StoreError)?.currentRevision == 2
    }
    #expect(try await store.read(Company.self, of: key)?.value.name == "Acme Sp. z o.o.")
    let revisions = try await store.transaction(company: key, by: tester) { tx in
      (try tx.revision(of: Company.self), try tx.revision(of: CompanyCenters.self))
    }
    #expect(revisions == (2, 0))
  }

  @Test("ERP-3: codes are unique ignoring case, and found ignoring case", arguments: backends)
  func uniqueCodes(backend: Backend) async throws {
    let (store, _) = try await backend.make()
    _ = try await store.create("Acme", company("Acme"))
    await #expect {
      _ = try await store.create("ACME", company("ACME"))
    } throws: { error in
      let error = error as? StoreError
      return error?.kind == .alreadyExists && error?.field == "short_name" && error?.rule == "ERP-3"
    }
    #expect(try await store.registry.company(code: "aCmE")?.code == "Acme")
    #expect(try await store.registry.companies().map(\.code) == ["Acme"])
  }

  @Test("two companies never see each other's data", arguments: backends)
  func isolation(backend: Backend) async throws {
    let (store, _) = try await backend.make()
    let field = Company.Secret.operatorPassword.rawValue
    let (a, _) = try await store.create("A", company("A", name: "Alpha"), secrets: [field: .set("alpha-pw")])
    let (b, _) = try await store.create("B", company("B", name: "Beta"))
    _ = try await store.write(CompanyCenters(centers: ["North"]), to: a, expectedRevision: 0)
    #expect(try await store.read(CompanyCenters.self, of: b) == nil)
    #expect(try await store.read(Company.self, of: b)?.value.name == "Beta")
    #expect(try await store.reveal(Company.self, field, of: b) == nil)
    #expect(try await store.reveal(Company.self, field, of: a) == "alpha-pw")
  }

  @Test("secrets: set, keep, clear, reveal; only their presence is read", arguments: backends)
  func secrets(backend: Backend) async throws {
    let (store, _) = try await backend.make()
    let field = Company.Secret.ksefToken.rawValue
    let (key, created) = try await store.create("S", company("S"), secrets: [field: .set("tok-1")])
    #expect(created.secretsSet == [field])
    // Keeping the secret and the same document changes nothing: the same revision.
    let kept = try await store.write(company("S"), to: key, secrets: [field: .keep], expectedRevision: 1)
    #expect(kept.secretsSet == [field] && kept.revision == 1)
    #expect(try await store.read(Company.self, of: key)?.secretsSet == [field])
    #expect(try await store.reveal(Company.self, field, of: key) == "tok-1")
    // Setting a secret is a change even with the same document (values are not compared).
    let reset = try await store.write(company("S"), to: key, secrets: [field: .set("tok-2")], expectedRevision: 1)
    #expect(reset.revision == 2)
    #expect(try await store.reveal(Company.self, field, of: key) == "tok-2")
    let cleared = try await store.write(company("S"), to: key, secrets: [field: .clear], expectedRevision: 2)
    #expect(cleared.secretsSet.isEmpty)
    #expect(try await store.reveal(Company.self, field, of: key) == nil)
  }

  @Test("ERP-19: deleting a company removes all its state; its code can be used again", arguments: backends)
  func delete(backend: Backend) async throws {
    let (store, _) = try await backend.make()
    let (key, _) = try await store.create(
      "DEL", company("DEL"), secrets: [Company.Secret.ksefToken.rawValue: .set("t")])
    _ = try await store.write(CompanyCenters(centers: ["X"]), to: key, expectedRevision: 0)
    try await store.delete(key)
    #expect(try await store.registry.company(code: "DEL") == nil)
    #expect(try await store.read(CompanyCenters.self, of: key) == nil)
    await #expect {
      try await store.delete(key)
    } throws: { error in
      (error as? StoreError)?.kind == .notFound
    }
    let (again, fresh) = try await store.create("del", company("del"))
    #expect(again.id != key.id, "ids are never reused")
    #expect(fresh.revision == 1 && fresh.secretsSet.isEmpty)
    #expect(try await store.read(CompanyCenters.self, of: again) == nil)
  }

  @Test("every company's document in one read, in code order, with its secrets' presence", arguments: backends)
  func documentOfEveryCompany(backend: Backend) async throws {
    let (store, _) = try await backend.make()
    let field = Company.Secret.ksefToken.rawValue
    _ = try await store.create("Beta", company("Beta"), secrets: [field: .set("t")])
    _ = try await store.create("alpha", company("alpha"))
    let (gamma, _) = try await store.create("GAMMA", CompanyCenters(centers: ["X"]))
    let all = try await store.registry.documentOfEveryCompany(Company.self)
    #expect(all.map(\.0.code) == ["alpha", "Beta"], "GAMMA has no company document")
    #expect(all.map(\.1.secretsSet) == [[], [field]])
    #expect(all.allSatisfy { $0.1.revision == 1 })
    #expect(try await store.registry.documentOfEveryCompany(CompanyCenters.self).map(\.0) == [gamma])
  }

  @Test("the shared section has its own revisions", arguments: backends)
  func shared(backend: Backend) async throws {
    let (store, _) = try await backend.make()
    #expect(try await store.readShared(SharedSettings.self) == nil)
    let first = try await store.writeShared(
      SharedSettings(apiVersion: 20240, documentControlMode: "Standard"), expectedRevision: 0)
    #expect(first.revision == 1)
    await #expect {
      _ = try await store.writeShared(
        SharedSettings(apiVersion: 20241, documentControlMode: "Standard"), expectedRevision: 0)
    } throws: { error in
      (error as? StoreError)?.kind == .staleRevision
    }
    #expect(try await store.readShared(SharedSettings.self)?.value.apiVersion == 20240)
  }

  @Test("everything written is there after the store is reopened", arguments: backends)
  func reopen(backend: Backend) async throws {
    let (store, reopen) = try await backend.make()
    let (key, _) = try await store.create(
      "KEEP", company("KEEP"), secrets: [Company.Secret.operatorPassword.rawValue: .set("pw")])
    _ = try await store.writeShared(
      SharedSettings(apiVersion: 20232, documentControlMode: "Extended"), expectedRevision: 0)
    try await store.registry.transaction(by: tester) { tx in try tx.setServerValue("mode", "multi") }
    let again = try await reopen()
    let found = try #require(try await again.registry.company(code: "keep"))
    #expect(found == key)
    #expect(try await again.read(Company.self, of: found)?.value == company("KEEP"))
    #expect(try await again.reveal(Company.self, Company.Secret.operatorPassword.rawValue, of: found) == "pw")
    #expect(try await again.readShared(SharedSettings.self)?.value.documentControlMode == "Extended")
    #expect(try await again.registry.transaction(by: tester) { tx in try tx.serverValue("mode") } == "multi")
    #expect(await again.isHealthy())
    #expect(again.changes.lastPosition == store.changes.lastPosition, "the feed's position survives a restart")
  }

  // MARK: Transactions

  @Test("a transaction rolls back as a whole: documents, secrets, companies, server values", arguments: backends)
  func rollback(backend: Backend) async throws {
    let (store, _) = try await backend.make()
    let field = Company.Secret.ksefToken.rawValue
    let (key, _) = try await store.create("KEEP", company("KEEP", name: "Before"), secrets: [field: .set("old")])
    let before = store.changes.lastPosition
    await #expect(throws: Refused.self) {
      try await store.registry.transaction(by: tester) { tx in
        _ = try tx.scoped(to: key).write(
          company("KEEP", name: "After"), secrets: [field: .set("new")], expectedRevision: 1)
        _ = try tx.scoped(to: key).write(CompanyCenters(centers: ["N"]), secrets: [:], expectedRevision: 0)
        let other = try tx.createCompany(code: "NEW")
        _ = try tx.scoped(to: other).write(company("NEW"), secrets: [:], expectedRevision: 0)
        try tx.setServerValue("company_mode", "single")
        throw Refused()
      }
    }
    #expect(try await store.read(Company.self, of: key)?.value.name == "Before")
    #expect(try await store.read(Company.self, of: key)?.revision == 1)
    #expect(try await store.read(CompanyCenters.self, of: key) == nil)
    #expect(try await store.reveal(Company.self, field, of: key) == "old")
    #expect(try await store.registry.company(code: "NEW") == nil)
    #expect(try await store.registry.transaction(by: tester) { tx in try tx.serverValue("company_mode") } == nil)
    #expect(store.changes.lastPosition == before, "no change row for a rolled-back change")
  }

  @Test("a change row for every committed change, in commit order, and none for a refused one", arguments: backends)
  func changeRows(backend: Backend) async throws {
    let (store, _) = try await backend.make()
    let start = store.changes.lastPosition
    let (key, _) = try await store.create("FEED", company("FEED"))
    _ = try await store.write(CompanyCenters(centers: ["A"]), to: key, expectedRevision: 0)
    _ = try await store.write(company("FEED", name: "Renamed"), to: key, expectedRevision: 1)
    await #expect(throws: StoreError.self) {
      _ = try await store.write(company("FEED"), to: key, expectedRevision: 1)
    }
    _ = try await store.writeShared(SharedSettings(apiVersion: 1, documentControlMode: "S"), expectedRevision: 0)
    try await store.delete(key)
    var seen: [SettingsChange] = []
    for try await change in try store.changes.subscribe(after: start) {
      seen.append(change)
      if seen.count == 6 { break }
    }
    let summary = seen.map { "\($0.kind) \($0.company ?? "-") \($0.area) \($0.revision)" }
    #expect(
      summary == [
        "created FEED erp.company 1", "created FEED erp.centers 1", "updated FEED erp.company 2",
        "created - erp.shared 1", "deleted FEED erp.centers 0", "deleted FEED erp.company 0",
      ])
    #expect(seen.map(\.position) == seen.map(\.position).sorted())
    #expect(Set(seen.map(\.position)).count == 6)
    #expect(store.changes.lastPosition == seen.last?.position)
  }

  @Test(
    "concurrent writes to many companies (on PostgreSQL over several writer connections): the live feed has each once, in position order, as a replay reads it",
    arguments: backends)
  func concurrentFeed(backend: Backend) async throws {
    let (store, _) = try await backend.make()
    var keys: [CompanyKey] = []
    for index in 0..<12 { keys.append(try await store.create("F\(index)", company("F\(index)")).0) }
    let start = store.changes.lastPosition
    let live = try store.changes.subscribe(after: start)
    let rounds = 4
    try await withThrowingTaskGroup(of: Void.self) { group in
      for key in keys {
        group.addTask {
          for revision in 1...rounds {
            _ = try await store.write(
              company(key.code, name: "r\(revision)"), to: key, expectedRevision: Int64(revision))
          }
        }
      }
      try await group.waitForAll()
    }
    let expected = keys.count * rounds
    var seen: [SettingsChange] = []
    for try await change in live {
      seen.append(change)
      if seen.count == expected { break }
    }
    #expect(zip(seen, seen.dropFirst()).allSatisfy { $0.position < $1.position }, "positions increase")
    #expect(Set(seen.map { "\($0.company ?? "") \($0.revision)" }).count == expected, "each change once")
    for key in keys {
      #expect(seen.filter { $0.company == key.code }.map(\.revision) == [2, 3, 4, 5], "\(key.code) in order")
    }
    var replayed: [SettingsChange] = []
    for try await change in try store.changes.subscribe(after: start) {
      replayed.append(change)
      if replayed.count == expected { break }
    }
    #expect(replayed == seen)
    #expect(store.changes.lastPosition == seen.last?.position)
  }

  @Test("Watch's feed: a subscriber resumes from a position with nothing missed and nothing twice", arguments: backends)
  func feedResume(backend: Backend) async throws {
    let (store, _) = try await backend.make()
    let (key, _) = try await store.create("W", company("W"))
    let resumeFrom = store.changes.lastPosition
    for revision in 1...5 {
      _ = try await store.write(company("W", name: "r\(revision)"), to: key, expectedRevision: Int64(revision))
    }
    let subscription = try store.changes.subscribe(after: resumeFrom)
    #expect(subscription.after == resumeFrom)
    var iterator = subscription.makeAsyncIterator()
    var revisions: [Int64] = []
    for _ in 0..<5 { revisions.append(try #require(try await iterator.next()).revision) }
    // Live ones follow the backlog.
    _ = try await store.write(company("W", name: "live"), to: key, expectedRevision: 6)
    revisions.append(try #require(try await iterator.next()).revision)
    #expect(revisions == [2, 3, 4, 5, 6, 7])
    #expect(throws: StoreError.self) { _ = try store.changes.subscribe(after: store.changes.lastPosition + 10) }
    // Shutdown ends a subscription with UNAVAILABLE, so that the watcher reconnects.
    store.changes.finishAll()
    await #expect {
      _ = try await iterator.next()
    } throws: { error in
      (error as? StoreError)?.kind == .unavailable
    }
  }

  @Test("group commit: concurrent writes commit together; a refused one fails alone", arguments: backends)
  func groupCommit(backend: Backend) async throws {
    let (store, _) = try await backend.make()
    var keys: [CompanyKey] = []
    for index in 0..<32 { keys.append(try await store.create("C\(index)", company("C\(index)")).0) }
    let outcomes = await concurrently(keys) { index, key in
      // Every fourth names a stale revision, or throws in its body.
      let expected: Int64 = index % 4 == 0 ? 7 : 1
      _ = try await store.transaction(company: key, by: tester) { tx in
        _ = try tx.write(company(key.code, name: "v2"), secrets: [:], expectedRevision: expected)
        if index % 4 == 1 { throw Refused() }
      }
    }
    for (index, key) in keys.enumerated() {
      let ok = index % 4 >= 2
      #expect(outcomes[index] == ok, "write \(index)")
      #expect(try await store.read(Company.self, of: key)?.revision == (ok ? 2 : 1), "write \(index)")
    }
  }

  @Test("every change and every reveal is audited in its transaction; a rolled-back one is not", arguments: backends)
  func audit(backend: Backend) async throws {
    let (store, _) = try await backend.make()
    let field = Company.Secret.ksefToken.rawValue
    let (key, _) = try await store.create("AUD", company("AUD"), secrets: [field: .set("secret-value")])
    _ = try await store.write(company("AUD"), to: key, secrets: [field: .clear], expectedRevision: 1)
    await #expect(throws: Refused.self) {
      try await store.transaction(company: key, by: tester) { tx in
        _ = try tx.write(company("AUD"), secrets: [:], expectedRevision: 2)
        throw Refused()
      }
    }
    _ = try await store.reveal(Company.self, field, of: key)
    let records = try await store.registry.auditRecords(company: key, after: 0, limit: 100)
    #expect(
      records.map { "\($0.action) \($0.area) \($0.field) \($0.revision)" } == [
        "company.create erp.company  0", "create erp.company set ksef_token 1",
        "update erp.company cleared ksef_token 2", "reveal erp.company ksef_token 0",
      ])
    #expect(records.last?.detail == "test (not set)")
    #expect(records.allSatisfy { $0.actor == tester && $0.company == "AUD" })
    #expect(!records.contains { $0.detail.contains("secret-value") || $0.field.contains("secret-value") })
  }

  @Test(
    "documents and journal rows keep every character they were given, written alone or in a batch",
    arguments: backends)
  func oddText(backend: Backend) async throws {
    let (store, _) = try await backend.make()
    // What PostgreSQL's batches carry as JSON (`PostgresJournal`) must come back as sent:
    // quotes, backslashes, control characters, any script, text that looks like JSON or SQL.
    let odd = "say \"hi\" \\ and \\\\n\nnew line\ttab\r\u{1}\u{1F}\u{7F} Zażółć gęślą jaźń 🚀 {\"a\": [1]} '); --"
    let actor = AuditActor(login: "ł\"\\", peer: "[::1]:7411", userAgent: odd, requestID: "r\n\"1\"")
    let field = Company.Secret.ksefToken.rawValue
    var keys: [CompanyKey] = []
    for index in 0..<6 { keys.append(try await store.create("J\(index)", company("J\(index)")).0) }
    let outcomes = await concurrently(keys) { _, key in
      _ = try await store.transaction(company: key, by: actor) { tx in
        _ = try tx.write(company(key.code, name: odd), secrets: [:], expectedRevision: 1)
        _ = try tx.revealSecret(Company.self, field: field, reason: odd)
      }
    }
    #expect(outcomes.values.allSatisfy { $0 })
    // And alone: a batch of one, which a refused statement fails rather than runs again.
    let alone = try await store.create("J6", company("J6")).0
    _ = try await store.transaction(company: alone, by: actor) { tx in
      _ = try tx.write(company(alone.code, name: odd), secrets: [:], expectedRevision: 1)
      _ = try tx.revealSecret(Company.self, field: field, reason: odd)
    }
    for key in keys + [alone] {
      #expect(try await store.read(Company.self, of: key)?.value.name == odd)
      let records = try await store.registry.auditRecords(company: key, after: 0, limit: 10).filter {
        $0.actor == actor
      }
      #expect(records.map { "\($0.action) \($0.revision)" } == ["update 2", "reveal 0"])
      #expect(records.last?.detail == "\(odd) (not set)")
    }
  }
}
