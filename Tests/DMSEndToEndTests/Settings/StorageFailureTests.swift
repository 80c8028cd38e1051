import DMSClient
import DMSDomain
import DMSMessages
import DMSRPC
import DMSStorage
import DMSStubs
import Foundation
import GRDB
import Testing

@Suite("Storage failures over the wire")
struct StorageFailureTests {
  @Test("a damaged database: DATA_LOSS to the caller, and Health goes NOT_SERVING for the server and the storage")
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
