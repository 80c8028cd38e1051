import DMSClient
import DMSDomain
import DMSMessages
import DMSRPC
import DMSStorage
import DMSStubs
import Foundation
import GRDB
import Testing

@Suite("Storage over the wire")
struct StorageOverTheWireTests {
  @Test("every change and every reveal over the wire is audited with its caller: address, user agent, request id")
  func audit() async throws {
    try await withTestServer { server async throws in
      let client = server.client()
      let companies = Dms_Settings_V1_Companies.Client(client)
      var create = Dms_Settings_V1_CreateCompanyRequest()
      create.company = companyMessage("AUD")
      create.secrets.operatorPassword = secret("Op-Passw0rd")
      _ = try await companies.create(create)
      var reveal = Dms_Settings_V1_RevealCompanySecretRequest()
      reveal.shortName = "AUD"
      reveal.field = .operatorPassword
      reveal.reason = "ticket 42"
      #expect(try await companies.revealSecret(reveal).value == "Op-Passw0rd")
      let key = try #require(try await server.store.registry.company(code: "AUD"))
      let records = try await server.store.registry.auditRecords(company: key, after: 0, limit: 10)
      #expect(records.map(\.action) == ["company.create", "create", "reveal"])
      #expect(records[1].field == "set operator_password")
      #expect(records[2].field == "operator_password" && records[2].detail == "ticket 42")
      for record in records {
        #expect(record.actor.peer.hasPrefix("127.0.0.1:"), "\(record.actor.peer)")
        #expect(!record.actor.userAgent.isEmpty && !record.actor.requestID.isEmpty)
        #expect(!record.detail.contains("Op-Passw0rd") && !record.field.contains("Op-Passw0rd"))
      }
      await client.close()
    }
  }

  @Test(
    "a damaged database: DATA_LOSS to the caller, and Health goes NOT_SERVING for the server and the storage",
    .enabled(if: TestBackend.current == .sqlite, "a damaged SQLite file"))
  func corruptDatabase() async throws {
    let folder = TestServer.temporaryDirectory()
    let path = (folder as NSString).appendingPathComponent("settings.sqlite")
    do {
      let server = try await TestServer.start(dataDirectory: folder)
      let client = server.client()
      var create = Dms_Settings_V1_CreateCompanyRequest()
      for code in ["AAA", "BBB"] {
        create.company = companyMessage(code)
        _ = try await Dms_Settings_V1_Companies.Client(client).create(create)
      }
      await client.close()
      try await server.stop()
    }
    // Checkpoint the WAL into the file, then overwrite the documents' root page.
    let queue = try DatabaseQueue(path: path)
    let root = try await queue.writeWithoutTransaction { db in
      try db.execute(sql: "PRAGMA wal_checkpoint(TRUNCATE)")
      return try Int.fetchOne(db, sql: "SELECT rootpage FROM sqlite_master WHERE name = 'company_document'")
    }
    try await queue.close()
    let handle = try FileHandle(forUpdating: URL(fileURLWithPath: path))
    try handle.seek(toOffset: UInt64((try #require(root) - 1) * 4096))
    try handle.write(contentsOf: Data((0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ 5) }))
    try handle.close()

    let server = try await TestServer.start(dataDirectory: folder)
    let client = server.client()
    let health = Dms_Rpc_V1_Health.Client(client)
    #expect(try await health.check(Dms_Rpc_V1_HealthCheckRequest()).status == .serving)
    await #expect {
      _ = try await Dms_Settings_V1_Companies.Client(client).list(Dms_Settings_V1_ListCompaniesRequest())
    } throws: { error in
      let error = error as? RPCError
      return error?.code == .dataLoss && error?.message.contains("damaged") == true
    }
    #expect(try await health.check(Dms_Rpc_V1_HealthCheckRequest()).status == .notServing)
    var storage = Dms_Rpc_V1_HealthCheckRequest()
    storage.service = "dms.settings.v1.storage"
    #expect(try await health.check(storage).status == .notServing)
    await client.close()
    try await server.stop()
  }
}
