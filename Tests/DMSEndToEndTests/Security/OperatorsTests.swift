import DMSClient
import DMSDomain
import DMSMessages
import DMSRPC
import DMSStorage
import DMSStubs
import Foundation
import Testing

/// The Operators service over the wire: its rules and its audit.
@Suite("Operators")
struct OperatorsTests {
  static func operatorMessage(_ login: String) -> Dms_Settings_V1_Operator {
    var value = Dms_Settings_V1_Operator()
    value.login = login
    value.fullName = "Operator \(login)"
    value.email = "\(login.lowercased())@example.com"
    return value
  }

  static func create(_ client: RPCClient, _ value: Dms_Settings_V1_Operator, password: String = "")
    async throws -> Dms_Settings_V1_Operator
  {
    var request = Dms_Settings_V1_CreateOperatorRequest()
    request.operator = value
    request.password = password
    return try await Dms_Settings_V1_Operators.Client(client).create(request)
  }

  static func get(_ client: RPCClient, _ login: String) async throws -> Dms_Settings_V1_Operator {
    var request = Dms_Settings_V1_GetOperatorRequest()
    request.login = login
    return try await Dms_Settings_V1_Operators.Client(client).get(request)
  }

  static func update(_ client: RPCClient, _ login: String, _ change: (inout Dms_Settings_V1_Operator) -> Void)
    async throws -> Dms_Settings_V1_Operator
  {
    var request = Dms_Settings_V1_UpdateOperatorRequest()
    request.login = login
    request.operator = try await get(client, login)
    change(&request.operator)
    return try await Dms_Settings_V1_Operators.Client(client).update(request)
  }

  @Test("logins are unique ignoring case; every broken rule is named by field, and nothing is stored")
  func validation() async throws {
    try await withTestServer { server in
      let admin = server.client()
      var create = Dms_Settings_V1_CreateCompanyRequest()
      create.company = companyMessage("ACME")
      _ = try await Dms_Settings_V1_Companies.Client(admin).create(create)
      var jan = Self.operatorMessage("Jan")
      jan.companies = ["acme"]
      let created = try await Self.create(admin, jan, password: "open sesame twice over")
      #expect(created.companies == ["ACME"] && created.passwordSet && created.revision == 1)
      let taken = await rpcError { _ = try await Self.create(admin, Self.operatorMessage("JAN")) }
      #expect(taken?.code == .alreadyExists && taken?.violations.first?.field == "operator.login")

      var bad = Self.operatorMessage("two words")
      bad.email = "not an address"
      bad.companies = ["NOPE"]
      bad.domainLogin = true
      let refused = await rpcError { _ = try await Self.create(admin, bad) }
      #expect(refused?.code == .invalidArgument)
      #expect(
        Set(rules(refused)) == [
          "operator.login:operator login", "operator.email:e-mail address", "operator.domain_account:DOM-4",
        ], "\(rules(refused))")
      var unknownCompany = Self.operatorMessage("ewa")
      unknownCompany.companies = ["ACME", "NOPE"]
      let noCompany = await rpcError { _ = try await Self.create(admin, unknownCompany) }
      #expect(rules(noCompany) == ["operator.companies[1]:ERP-3"], "\(String(describing: noCompany))")
      let weak = await rpcError { _ = try await Self.create(admin, Self.operatorMessage("ola"), password: "ola") }
      #expect(rules(weak).allSatisfy { $0 == "password:password policy" })
      let list = try await Dms_Settings_V1_Operators.Client(admin).list()
      #expect(list.operators.map(\.login) == ["Jan", "tester"], "nothing of the refused ones stored")
      await admin.close()
    }
  }

  @Test("DOM-4, STORE-2: the fields later areas hang on an operator are stored and read back")
  func laterFields() async throws {
    try await withTestServer { server in
      let admin = server.client()
      var value = Self.operatorMessage("dom")
      value.domainLogin = true
      value.domainAccount = "CORP\\dom"
      value.repositoryPermission = true
      let created = try await Self.create(admin, value)
      #expect(created.domainLogin && created.domainAccount == "CORP\\dom" && created.repositoryPermission)
      #expect(!created.passwordSet, "a domain operator needs no password here (DOM-5)")
      let read = try await Self.get(admin, "DOM")
      #expect(read.domainAccount == "CORP\\dom" && read.repositoryPermission)
      // APISYS-4: a cooperating system must be one of the API systems (HRM is predefined).
      let refused = await rpcError { _ = try await Self.update(admin, "dom") { $0.cooperatingSystem = "CRM" } }
      #expect(rules(refused) == ["operator.cooperating_system:APISYS-4"])
      #expect(try await Self.update(admin, "dom") { $0.cooperatingSystem = "hrm" }.cooperatingSystem == "HRM")
      await admin.close()
    }
  }

  @Test("in single-company mode an operator belongs to no list of companies")
  func singleCompany() async throws {
    try await withTestServer(deployment: DeploymentConfiguration(mode: .singleCompany)) { server in
      let admin = server.client()
      var value = Self.operatorMessage("ola")
      value.companies = ["MAIN"]
      let refused = await rpcError { _ = try await Self.create(admin, value) }
      #expect(rules(refused) == ["operator.companies:CFG-1"])
      await admin.close()
    }
  }

  @Test("updates carry the revision read; one that changes nothing keeps it; renaming keeps the sessions' owner")
  func revisions() async throws {
    try await withTestServer { server in
      let admin = server.client()
      _ = try await Self.create(admin, Self.operatorMessage("ola"))
      let first = try await Self.get(admin, "ola")
      let same = try await Self.update(admin, "ola") { _ in }
      #expect(same.revision == first.revision)
      let renamed = try await Self.update(admin, "OLA") { $0.login = "ola.nowak" }
      #expect(renamed.login == "ola.nowak" && renamed.revision == first.revision + 1)
      var stale = Dms_Settings_V1_UpdateOperatorRequest()
      stale.login = "ola.nowak"
      stale.operator = first
      stale.operator.fullName = "late"
      let aborted = await rpcError { _ = try await Dms_Settings_V1_Operators.Client(admin).update(stale) }
      #expect(aborted?.code == .aborted)
      await admin.close()
    }
  }

  @Test("the last enabled administrator stays; nobody removes or demotes themselves")
  func administratorsKept() async throws {
    try await withTestServer { server in
      let admin = server.client()
      // tester is the only administrator and the caller.
      let selfDemote = await rpcError { _ = try await Self.update(admin, "tester") { $0.administrator = false } }
      #expect(selfDemote?.code == .failedPrecondition)
      var delete = Dms_Settings_V1_DeleteOperatorRequest()
      delete.login = "tester"
      let selfDelete = await rpcError { _ = try await Dms_Settings_V1_Operators.Client(admin).delete(delete) }
      #expect(selfDelete?.code == .failedPrecondition)
      // Another administrator may not remove the last one other than itself either.
      var second = Self.operatorMessage("boss")
      second.administrator = true
      _ = try await Self.create(admin, second)
      let token = try await server.session(of: Operator(login: "boss", administrator: true))
      let boss = server.client { $0.credentials = .token(token) }
      _ = try await Self.update(boss, "tester") { $0.administrator = false }
      let last = await rpcError { _ = try await Self.update(admin, "boss") { $0.disabled = true } }
      #expect(last?.code == .permissionDenied, "tester is no administrator any more")
      let lastDisabled = await rpcError { _ = try await Self.update(boss, "boss") { $0.disabled = true } }
      #expect(lastDisabled?.code == .failedPrecondition)
      await boss.close()
      await admin.close()
    }
  }

  @Test("operator changes and sign-ins are audited with who and what changed; a refused change leaves no row")
  func audited() async throws {
    try await withTestServer { server in
      let admin = server.client()
      _ = try await Self.create(admin, Self.operatorMessage("ola"), password: "purple monkey dishwasher")
      _ = try await Self.update(admin, "ola") {
        $0.administrator = true
        $0.email = "ola@example.org"
      }
      _ = await rpcError { _ = try await Self.update(admin, "ola") { $0.email = "broken" } }
      var login = Dms_Auth_V1_LoginRequest()
      login.login = "ola"
      login.password = "purple monkey dishwasher"
      let anonymous = server.client { $0.credentials = nil }
      let token = try await Dms_Auth_V1_Auth.Client(anonymous).login(login).token
      let ola = server.client { $0.credentials = .token(token) }
      _ = try await Dms_Auth_V1_Auth.Client(ola).logout()
      var delete = Dms_Settings_V1_DeleteOperatorRequest()
      delete.login = "ola"
      _ = try await Dms_Settings_V1_Operators.Client(admin).delete(delete)

      let rows = try await server.store.registry.auditRecords(company: nil, after: 0, limit: 100)
        .filter { $0.subject == "ola" }
      #expect(
        rows.map(\.action) == ["operator.create", "operator.update", "session.open", "session.end", "operator.delete"])
      #expect(rows[0].field == "set password" && rows[0].actor.login == "tester")
      #expect(rows[1].field == "email, administrator" && rows[1].revision == 2)
      #expect(rows[2].actor.login == "ola" && rows[3].actor.login == "ola")
      #expect(rows.allSatisfy { !$0.field.contains("purple") && !$0.detail.contains("purple") })
      for client in [admin, anonymous, ola] { await client.close() }
    }
  }
}
