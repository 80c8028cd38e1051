import DMSClient
import DMSDomain
import DMSMessages
import DMSRPC
import DMSStubs
import Foundation
import Testing

/// `Audit/List` over the wire: filters, both orders, paging.
@Suite("Audit/List")
struct AuditTests {
  static func list(_ client: RPCClient, _ change: (inout Dms_Settings_V1_ListAuditRequest) -> Void) async throws
    -> Dms_Settings_V1_ListAuditResponse
  {
    var request = Dms_Settings_V1_ListAuditRequest()
    change(&request)
    return try await Dms_Settings_V1_Audit.Client(client).list(request)
  }

  @Test("rows filtered by company, action, login and subject, newest or oldest first, a page at a time")
  func filtersAndPages() async throws {
    try await withTestServer { server in
      let admin = server.client()
      let companies = Dms_Settings_V1_Companies.Client(admin)
      for code in ["ONE", "TWO"] {
        var create = Dms_Settings_V1_CreateCompanyRequest()
        create.company = companyMessage(code)
        create.secrets.connectionPassword = secret("Db-Passw0rd-\(code)")
        _ = try await companies.create(create)
      }
      var reveal = Dms_Settings_V1_RevealCompanySecretRequest()
      reveal.shortName = "ONE"
      reveal.field = .connectionPassword
      reveal.reason = "ticket 42"
      _ = try await companies.revealSecret(reveal)
      var delete = Dms_Settings_V1_DeleteCompanyRequest()
      delete.shortName = "TWO"
      delete.revision = 1
      _ = try await companies.delete(delete)

      let newest = try await Self.list(admin) { $0.newestFirst = true }
      #expect(newest.entries.first?.action == "company.delete" && newest.entries.first?.company == "TWO")
      #expect(newest.entries.map(\.id) == newest.entries.map(\.id).sorted(by: >))
      #expect(newest.entries.allSatisfy { !$0.fields.contains("Passw0rd") && !$0.detail.contains("Passw0rd") })
      let one = try await Self.list(admin) { $0.company = "one" }
      #expect(Set(one.entries.map(\.action)) == ["company.create", "create", "reveal"], "\(one.entries.map(\.action))")
      let revealed = try #require(one.entries.first { $0.action == "reveal" })
      #expect(revealed.detail == "ticket 42" && revealed.fields == "connection.password" && revealed.login == "tester")
      #expect(revealed.userAgent.hasPrefix("dms-client") && !revealed.requestID.isEmpty)
      // A deleted company's rows are still found by its code.
      let two = try await Self.list(admin) { $0.company = "TWO" }
      #expect(two.entries.map(\.action) == ["company.create", "create", "company.delete"])
      let byAction = try await Self.list(admin) { $0.action = "create" }
      #expect(byAction.entries.count == 2)
      let byLogin = try await Self.list(admin) { $0.login = "TESTER" }
      #expect(byLogin.entries.map(\.id) == newest.entries.filter { $0.login == "tester" }.map(\.id).reversed())
      #expect(
        byLogin.entries.count == newest.entries.count - 2, "all but the set-up's operator.create and session.open")
      let bySubject = try await Self.list(admin) { $0.subject = "tester" }
      #expect(bySubject.entries.map(\.action) == ["operator.create", "session.open"])

      // Pages of two, oldest first, then newest first: every row once, in order.
      var seen: [Int64] = []
      var cursor: Int64 = 0
      repeat {
        let page = try await Self.list(admin) {
          $0.limit = 2
          $0.cursor = cursor
        }
        seen += page.entries.map(\.id)
        cursor = page.nextCursor
      } while cursor != 0
      #expect(seen == newest.entries.map(\.id).reversed())
      var back: [Int64] = []
      cursor = 0
      repeat {
        let page = try await Self.list(admin) {
          $0.limit = 3
          $0.cursor = cursor
          $0.newestFirst = true
        }
        back += page.entries.map(\.id)
        cursor = page.nextCursor
      } while cursor != 0
      #expect(back == newest.entries.map(\.id))

      let tooMany = await rpcError { _ = try await Self.list(admin) { $0.limit = 5000 } }
      #expect(rules(tooMany) == ["limit:"])
      await admin.close()
    }
  }
}
