import DMSClient
import DMSMessages
import DMSRPC
import DMSStubs
import Foundation
import Testing

/// Two servers on one PostgreSQL database, as a deployment behind a load balancer runs
/// them (issue 15): what is written through one is read and watched through the other,
/// a conflict across them is ABORTED, and stopping one loses nothing.
@Suite(
  "Two instances on one database", .enabled(if: TestBackend.current == .postgres, "needs DMS_TEST_BACKEND=postgres"))
struct TwoInstancesTests {
  @Test("a change through one is read and watched through the other; a stale revision there is ABORTED")
  func readAndWatchAcross() async throws {
    let folder = TestServer.temporaryDirectory()
    let one = try await TestServer.start(dataDirectory: folder)
    let two = try await TestServer.start(dataDirectory: folder)
    let first = one.client()
    // The administrator's session, opened through one, is accepted by the other.
    let second = two.client { $0.credentials = .token(one.adminToken) }
    var events = Dms_Settings_V1_SettingsEvents.Client(second).watch().makeAsyncIterator()
    #expect(try await events.next()?.kind == .subscribed)

    var create = Dms_Settings_V1_CreateCompanyRequest()
    create.company = companyMessage("BOTH", name: "Through one")
    let created = try await Dms_Settings_V1_Companies.Client(first).create(create)
    var get = Dms_Settings_V1_GetCompanyRequest()
    get.shortName = "both"
    var read = try await Dms_Settings_V1_Companies.Client(second).get(get)
    #expect(read == created)
    let event = try #require(try await events.next())
    #expect(event.shortName == "BOTH" && event.kind == .created && event.revision == 1, "\(event)")

    // Through two, then through one on the revision it read first: ABORTED.
    read.name = "Through two"
    var update = Dms_Settings_V1_UpdateCompanyRequest()
    update.company = read
    let updated = try await Dms_Settings_V1_Companies.Client(second).update(update)
    #expect(updated.revision == 2)
    var stale = Dms_Settings_V1_UpdateCompanyRequest()
    stale.company = created
    stale.company.name = "Lost update"
    let refused = await rpcError { _ = try await Dms_Settings_V1_Companies.Client(first).update(stale) }
    #expect(refused?.code == .aborted && refused?.trailers["current-revision"] == "2", "\(String(describing: refused))")
    // One reads two's write (its cache follows the other's commits).
    var seen = ""
    for _ in 0..<100 where seen != "Through two" {
      seen = try await Dms_Settings_V1_Companies.Client(first).get(get).name
      if seen != "Through two" { try await Task.sleep(for: .milliseconds(20)) }
    }
    #expect(seen == "Through two")
    #expect(try #require(try await events.next()).revision == 2)

    await first.close()
    await second.close()
    try await one.stop()
    try await two.stop()
  }

  @Test("stopping one instance loses nothing: a client listing both goes on through the other")
  func stopOne() async throws {
    let folder = TestServer.temporaryDirectory()
    let one = try await TestServer.start(dataDirectory: folder)
    let two = try await TestServer.start(dataDirectory: folder)
    let client = one.client {
      $0.failoverServers = [.init(host: "127.0.0.1", port: two.port)]
      $0.connectAttempts = 2
      $0.backoff = .init(initial: .milliseconds(10), maximum: .milliseconds(50))
    }
    let companies = Dms_Settings_V1_Companies.Client(client)
    for code in ["S1", "S2", "S3"] {
      var create = Dms_Settings_V1_CreateCompanyRequest()
      create.company = companyMessage(code)
      _ = try await companies.create(create)
    }
    #expect(client.server.port == one.port)
    try await one.stop()
    var created = false
    for _ in 0..<20 where !created {
      var create = Dms_Settings_V1_CreateCompanyRequest()
      create.company = companyMessage("S4")
      created = (try? await companies.create(create)) != nil
    }
    #expect(created)
    #expect(client.server.port == two.port)
    let listed = try await companies.list(Dms_Settings_V1_ListCompaniesRequest()).companies.map(\.shortName)
    #expect(listed == ["S1", "S2", "S3", "S4"])
    await client.close()
    try await two.stop()
  }
}
