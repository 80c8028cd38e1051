import Crypto
import DMSDomain
import DMSStorage
import Foundation
import Testing

/// What every `SettingsStore` backend must do. Each backend adds itself to
/// `StoreConformanceTests.backends`; PostgreSQL will be the second.
struct Backend: CustomTestStringConvertible, Sendable {
  let name: String
  /// Opens a store on a fresh, empty database; `reopen` opens the same one again.
  let make: @Sendable () throws -> (store: any SettingsStore, reopen: @Sendable () throws -> any SettingsStore)
  var testDescription: String { name }
}

func company(_ code: String, name: String = "Company") -> Company {
  Company(
    code: code, mode: .erpXL, name: name,
    connection: ERPConnection(server: "sql01", database: "ERPXL_\(code)", authentication: .sql, user: "dms"))
}

@Suite("Store conformance")
struct StoreConformanceTests {
  static let backends: [Backend] = [.sqlite]

  @Test("create, read, update with the right revision, refuse a stale one", arguments: backends)
  func revisions(backend: Backend) async throws {
    let (store, _) = try backend.make()
    let (key, created) = try await store.createCompany(code: "ACME", document: company("ACME"), secrets: [:])
    #expect(created.revision == 1)
    let scoped = store.scoped(to: key)
    var value = try #require(try await scoped.read(Company.self))
    #expect(value.value == company("ACME"))
    value.value.name = "Acme Sp. z o.o."
    let updated = try await scoped.write(value.value, secrets: [:], expectedRevision: 1)
    #expect(updated.revision == 2)
    await #expect {
      _ = try await scoped.write(value.value, secrets: [:], expectedRevision: 1)
    } throws: { error in
      (error as? StoreError)?.kind == .staleRevision && (error as? StoreError)?.currentRevision == 2
    }
    #expect(try await scoped.read(Company.self)?.value.name == "Acme Sp. z o.o.")
  }

  @Test("ERP-3: codes are unique ignoring case, and found ignoring case", arguments: backends)
  func uniqueCodes(backend: Backend) async throws {
    let (store, _) = try backend.make()
    _ = try await store.createCompany(code: "Acme", document: company("Acme"), secrets: [:])
    await #expect {
      _ = try await store.createCompany(code: "ACME", document: company("ACME"), secrets: [:])
    } throws: { error in
      (error as? StoreError)?.kind == .alreadyExists
    }
    #expect(try await store.company(code: "aCmE")?.code == "Acme")
    #expect(try await store.companies().map(\.code) == ["Acme"])
  }

  @Test("two companies never see each other's data", arguments: backends)
  func isolation(backend: Backend) async throws {
    let (store, _) = try backend.make()
    let (a, _) = try await store.createCompany(
      code: "A", document: company("A", name: "Alpha"),
      secrets: [Company.Secret.operatorPassword.rawValue: .set("alpha-pw")])
    let (b, _) = try await store.createCompany(code: "B", document: company("B", name: "Beta"), secrets: [:])
    _ = try await store.scoped(to: a).write(CompanyCenters(centers: ["North"]), secrets: [:], expectedRevision: 0)
    #expect(try await store.scoped(to: b).read(CompanyCenters.self) == nil)
    #expect(try await store.scoped(to: b).read(Company.self)?.value.name == "Beta")
    #expect(
      try await store.scoped(to: b).revealSecret(Company.self, field: Company.Secret.operatorPassword.rawValue) == nil)
    #expect(
      try await store.scoped(to: a).revealSecret(Company.self, field: Company.Secret.operatorPassword.rawValue)
        == "alpha-pw")
  }

  @Test("secrets: set, keep, clear, reveal; only their presence is read", arguments: backends)
  func secrets(backend: Backend) async throws {
    let (store, _) = try backend.make()
    let field = Company.Secret.ksefToken.rawValue
    let (key, created) = try await store.createCompany(
      code: "S", document: company("S"), secrets: [field: .set("tok-1")])
    #expect(created.secretsSet == [field])
    let scoped = store.scoped(to: key)
    let kept = try await scoped.write(company("S"), secrets: [field: .keep], expectedRevision: 1)
    #expect(kept.secretsSet == [field])
    #expect(try await scoped.revealSecret(Company.self, field: field) == "tok-1")
    _ = try await scoped.write(company("S"), secrets: [field: .set("tok-2")], expectedRevision: 2)
    #expect(try await scoped.revealSecret(Company.self, field: field) == "tok-2")
    let cleared = try await scoped.write(company("S"), secrets: [field: .clear], expectedRevision: 3)
    #expect(cleared.secretsSet.isEmpty)
    #expect(try await scoped.revealSecret(Company.self, field: field) == nil)
  }

  @Test("ERP-19: deleting a company removes all its state; its code can be used again", arguments: backends)
  func delete(backend: Backend) async throws {
    let (store, _) = try backend.make()
    let (key, _) = try await store.createCompany(
      code: "DEL", document: company("DEL"), secrets: [Company.Secret.ksefToken.rawValue: .set("t")])
    _ = try await store.scoped(to: key).write(CompanyCenters(centers: ["X"]), secrets: [:], expectedRevision: 0)
    await #expect {
      try await store.deleteCompany(key, checking: Company.self, expectedRevision: 7)
    } throws: { error in
      (error as? StoreError)?.kind == .staleRevision
    }
    try await store.deleteCompany(key, checking: Company.self, expectedRevision: 1)
    #expect(try await store.company(code: "DEL") == nil)
    #expect(try await store.scoped(to: key).read(CompanyCenters.self) == nil)
    let (again, fresh) = try await store.createCompany(code: "del", document: company("del"), secrets: [:])
    #expect(again.id != key.id, "ids are never reused")
    #expect(fresh.revision == 1 && fresh.secretsSet.isEmpty)
    #expect(try await store.scoped(to: again).read(CompanyCenters.self) == nil)
  }

  @Test("every company's document in one read, in code order, with its secrets' presence", arguments: backends)
  func documentOfEveryCompany(backend: Backend) async throws {
    let (store, _) = try backend.make()
    let field = Company.Secret.ksefToken.rawValue
    _ = try await store.createCompany(code: "Beta", document: company("Beta"), secrets: [field: .set("t")])
    _ = try await store.createCompany(code: "alpha", document: company("alpha"), secrets: [:])
    let (gamma, _) = try await store.createCompany(
      code: "GAMMA", document: CompanyCenters(centers: ["X"]), secrets: [:])
    let all = try await store.documentOfEveryCompany(Company.self)
    #expect(all.map(\.0.code) == ["alpha", "Beta"], "GAMMA has no company document")
    #expect(all.map(\.1.secretsSet) == [[], [field]])
    #expect(all.allSatisfy { $0.1.revision == 1 })
    #expect(try await store.documentOfEveryCompany(CompanyCenters.self).map(\.0) == [gamma])
  }

  @Test("the shared section has its own revisions", arguments: backends)
  func shared(backend: Backend) async throws {
    let (store, _) = try backend.make()
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
    let (store, reopen) = try backend.make()
    let (key, _) = try await store.createCompany(
      code: "KEEP", document: company("KEEP"), secrets: [Company.Secret.operatorPassword.rawValue: .set("pw")])
    _ = try await store.writeShared(
      SharedSettings(apiVersion: 20232, documentControlMode: "Extended"), expectedRevision: 0)
    try await store.setServerValue("mode", "multi")
    let again = try reopen()
    let found = try #require(try await again.company(code: "keep"))
    #expect(found == key)
    #expect(try await again.scoped(to: found).read(Company.self)?.value == company("KEEP"))
    #expect(
      try await again.scoped(to: found).revealSecret(Company.self, field: Company.Secret.operatorPassword.rawValue)
        == "pw")
    #expect(try await again.readShared(SharedSettings.self)?.value.documentControlMode == "Extended")
    #expect(try await again.serverValue("mode") == "multi")
    #expect(await again.isHealthy())
  }
}
