import DMSClient
import DMSDomain
import DMSMessages
import DMSRPC
import DMSStorage
import DMSStubs
import Foundation
import Testing

/// API systems over the wire (APISYS-1 … 4): the list, their secrets, their sign-in
/// and what their sessions may call.
@Suite("API systems")
struct ApiSystemsTests {
  static func add(_ client: RPCClient, _ name: String) async throws -> Dms_Settings_V1_ApiSystemSecret {
    var request = Dms_Settings_V1_AddApiSystemRequest()
    request.name = name
    return try await Dms_Settings_V1_ApiSystems.Client(client).add(request)
  }

  static func list(_ client: RPCClient) async throws -> [Dms_Settings_V1_ApiSystem] {
    try await Dms_Settings_V1_ApiSystems.Client(client).list().systems
  }

  static func loginSystem(_ client: RPCClient, _ identifier: String, _ secret: String) async throws
    -> Dms_Auth_V1_LoginResponse
  {
    var request = Dms_Auth_V1_LoginSystemRequest()
    request.identifier = identifier
    request.secret = secret
    return try await Dms_Auth_V1_Auth.Client(client).loginSystem(request)
  }

  static func rotate(_ client: RPCClient, _ identifier: String) async throws -> Dms_Settings_V1_ApiSystemSecret {
    var request = Dms_Settings_V1_RotateApiSystemSecretRequest()
    request.identifier = identifier
    return try await Dms_Settings_V1_ApiSystems.Client(client).rotateSecret(request)
  }

  static func delete(_ client: RPCClient, _ identifier: String) async throws {
    var request = Dms_Settings_V1_DeleteApiSystemRequest()
    request.identifier = identifier
    _ = try await Dms_Settings_V1_ApiSystems.Client(client).delete(request)
  }

  @Test(
    "APISYS-1, APISYS-3: a name of at least 2 characters, unique ignoring case; a generated identifier; the secret once"
  )
  func add() async throws {
    try await withTestServer { server in
      let admin = server.client()
      for (name, message) in [("", "is required"), ("A", "at least 2"), (" B ", "at least 2"), ("X\u{7}Y", "control")] {
        let refused = await rpcError { _ = try await Self.add(admin, name) }
        #expect(refused?.code == .invalidArgument && rules(refused) == ["name:APISYS-3"], "\(name)")
        #expect(refused?.violations.first?.description.contains(message) == true, "\(String(describing: refused))")
      }
      let crm = try await Self.add(admin, "  CRM ")
      #expect(crm.system.name == "CRM" && crm.system.secretSet && crm.secret.count == 43)
      #expect(
        UUID(uuidString: crm.system.identifier) != nil && crm.system.identifier == crm.system.identifier.lowercased())
      let other = try await Self.add(admin, "Payroll")
      #expect(other.system.identifier != crm.system.identifier && other.secret != crm.secret)
      let taken = await rpcError { _ = try await Self.add(admin, "crm") }
      #expect(taken?.code == .alreadyExists && rules(taken) == ["name:api system name"])
      let listed = try await Self.list(admin)
      #expect(listed.map(\.name) == ["CRM", "HRM", "Payroll"])
      #expect(listed.first { $0.name == "CRM" } == crm.system, "the list shows what Add answered, without the secret")

      // The secret is stored only as its hash; the audit says "changed".
      let stored = try #require(try await server.store.operators.systemCredentials(identifier: crm.system.identifier))
      #expect(stored.secretHash?.count == 32 && stored.secretHash != Data(crm.secret.utf8))
      var audit = Dms_Settings_V1_ListAuditRequest()
      audit.action = "api-system.add"
      let rows = try await Dms_Settings_V1_Audit.Client(admin).list(audit).entries
      #expect(rows.map(\.subject) == ["CRM", "Payroll"] && rows.allSatisfy { $0.fields == "secret: changed" })
      #expect(rows.allSatisfy { $0.login == "tester" })
      await admin.close()
    }
  }

  @Test(
    "Auth/LoginSystem: a system's session calls SYSTEM and SESSION methods in every company, not ADMINISTRATOR ones")
  func systemSession() async throws {
    try await withTestServer { server in
      let admin = server.client()
      var create = Dms_Settings_V1_CreateCompanyRequest()
      create.company = companyMessage("ACME")
      _ = try await Dms_Settings_V1_Companies.Client(admin).create(create)
      let crm = try await Self.add(admin, "CRM")
      let anonymous = SignInTests.anonymous(server)

      let wrong = await rpcError {
        _ = try await Self.loginSystem(anonymous, crm.system.identifier, String(crm.secret.reversed()))
      }
      let unknown = await rpcError { _ = try await Self.loginSystem(anonymous, UUID().uuidString, crm.secret) }
      let malformed = await rpcError { _ = try await Self.loginSystem(anonymous, crm.system.identifier, "short") }
      for refused in [wrong, unknown, malformed] {
        #expect(refused?.code == .unauthenticated && refused?.message == "wrong API system identifier or secret")
      }
      let missing = await rpcError { _ = try await Self.loginSystem(anonymous, "", "") }
      #expect(Set(rules(missing)) == ["identifier:APISYS-1", "secret:"])

      let session = try await Self.loginSystem(anonymous, crm.system.identifier.uppercased(), crm.secret)
      #expect(session.login == "CRM" && !session.administrator && session.scope == .full)
      let system = SignInTests.signedIn(server, session.token)
      let me = try await Dms_Auth_V1_Auth.Client(system).whoAmI()
      #expect(me.login == "CRM" && !me.administrator && me.companies.isEmpty)

      // An inter-service call: SetCenters is SYSTEM and company-scoped.
      var publish = Dms_Settings_V1_SetCentersRequest()
      publish.shortName = "ACME"
      publish.centers = ["North"]
      _ = try await Dms_Settings_V1_Companies.Client(system).setCenters(
        publish, options: CallOptions(metadata: ["company": "ACME"]))
      #expect(try await Dms_Settings_V1_Companies.Client(system).list().companies.map(\.shortName) == ["ACME"])
      let admins = await rpcError { _ = try await Dms_Settings_V1_Operators.Client(system).list() }
      #expect(admins?.code == .permissionDenied)
      var change = Dms_Auth_V1_ChangePasswordRequest()
      change.currentPassword = "anything at all here"
      change.newPassword = "something else entirely"
      let password = await rpcError { _ = try await Dms_Auth_V1_Auth.Client(system).changePassword(change) }
      #expect(password?.code == .failedPrecondition)

      // The audit names the system as the actor of its changes.
      var audit = Dms_Settings_V1_ListAuditRequest()
      audit.company = "ACME"
      audit.newestFirst = true
      let last = try await Dms_Settings_V1_Audit.Client(admin).list(audit).entries.first
      #expect(last?.login == "CRM", "\(String(describing: last))")

      _ = try await Dms_Auth_V1_Auth.Client(system).logout()
      let ended = await rpcError { _ = try await Dms_Auth_V1_Auth.Client(system).whoAmI() }
      #expect(ended?.code == .unauthenticated)

      // The client library signs a service in with its identifier and secret, and again
      // when its session ends.
      let credentials = ClientConfiguration.Credentials.system(identifier: crm.system.identifier, secret: crm.secret)
      #expect(!"\(credentials)".contains(crm.secret) && !String(reflecting: credentials).contains(crm.secret))
      let service = server.client { $0.credentials = credentials }
      #expect(try await Dms_Auth_V1_Auth.Client(service).whoAmI().system)
      _ = try await Dms_Auth_V1_Auth.Client(service).logout()
      #expect(try await Dms_Auth_V1_Auth.Client(service).whoAmI().login == "CRM", "signed in again")
      for client in [admin, anonymous, system, service] { await client.close() }
    }
  }

  @Test("rotating a secret ends the system's sessions and the old secret stops working; HRM gets its first one so")
  func rotate() async throws {
    try await withTestServer { server in
      let admin = server.client()
      let anonymous = SignInTests.anonymous(server)
      let crm = try await Self.add(admin, "CRM")
      let token = try await Self.loginSystem(anonymous, crm.system.identifier, crm.secret).token
      let system = SignInTests.signedIn(server, token)
      _ = try await Dms_Auth_V1_Auth.Client(system).whoAmI()
      let rotated = try await Self.rotate(admin, crm.system.identifier)
      #expect(rotated.secret != crm.secret && rotated.system.identifier == crm.system.identifier)
      #expect(await rpcError { _ = try await Dms_Auth_V1_Auth.Client(system).whoAmI() }?.code == .unauthenticated)
      let old = await rpcError { _ = try await Self.loginSystem(anonymous, crm.system.identifier, crm.secret) }
      #expect(old?.code == .unauthenticated)
      _ = try await Self.loginSystem(anonymous, crm.system.identifier, rotated.secret)

      // HRM (APISYS-2) has no secret until an administrator makes one.
      let hrm = try #require(try await Self.list(admin).first { $0.name == "HRM" })
      #expect(!hrm.secretSet && hrm.secretSetAtUnixMs == 0)
      let none = await rpcError { _ = try await Self.loginSystem(anonymous, hrm.identifier, crm.secret) }
      #expect(none?.code == .unauthenticated)
      let first = try await Self.rotate(admin, hrm.identifier)
      #expect(first.system.secretSet && first.system.secretSetAtUnixMs > 0)
      _ = try await Self.loginSystem(anonymous, hrm.identifier, first.secret)
      await #expect(throws: RPCError.self) { _ = try await Self.rotate(admin, UUID().uuidString.lowercased()) }
      do {
        let rotated = try await Self.rotate(admin, UUID().uuidString.lowercased())
        Issue.record("rotated \(rotated)")
      } catch let error as RPCError {
        #expect(error.code == .notFound, "\(error)")
      } catch {
        Issue.record("\(type(of: error)): \(error)")
      }
      for client in [admin, anonymous, system] { await client.close() }
    }
  }

  @Test("APISYS-4: an operator's cooperating system is one of the list; a system in use is not deleted")
  func cooperatingSystem() async throws {
    try await withTestServer { server in
      let admin = server.client()
      let anonymous = SignInTests.anonymous(server)
      var jan = OperatorsTests.operatorMessage("jan")
      jan.cooperatingSystem = "CRM"
      let unknown = await rpcError { _ = try await OperatorsTests.create(admin, jan) }
      #expect(unknown?.code == .invalidArgument && rules(unknown) == ["operator.cooperating_system:APISYS-4"])
      let crm = try await Self.add(admin, "CRM")
      jan.cooperatingSystem = "crm"
      let created = try await OperatorsTests.create(admin, jan)
      #expect(created.cooperatingSystem == "CRM", "stored as the system is named")
      let token = try await Self.loginSystem(anonymous, crm.system.identifier, crm.secret).token
      let system = SignInTests.signedIn(server, token)

      let inUse = await rpcError { try await Self.delete(admin, crm.system.identifier) }
      #expect(inUse?.code == .failedPrecondition && inUse?.message.contains("jan") == true)
      #expect(try await Self.list(admin).contains { $0.name == "CRM" }, "nothing deleted")
      _ = try await OperatorsTests.update(admin, "jan") { $0.cooperatingSystem = "HRM" }
      try await Self.delete(admin, crm.system.identifier)
      #expect(try await Self.list(admin).map(\.name) == ["HRM"])
      #expect(await rpcError { _ = try await Dms_Auth_V1_Auth.Client(system).whoAmI() }?.code == .unauthenticated)
      let again = await rpcError { try await Self.delete(admin, crm.system.identifier) }
      #expect(again?.code == .notFound)
      var audit = Dms_Settings_V1_ListAuditRequest()
      audit.subject = "CRM"
      let actions = try await Dms_Settings_V1_Audit.Client(admin).list(audit).entries.map(\.action)
      #expect(actions == ["api-system.add", "session.open", "api-system.delete"], "\(actions)")
      for client in [admin, anonymous, system] { await client.close() }
    }
  }

  @Test("APISYS-2: HRM is added once by the migration; deleted, it stays deleted across restarts")
  func predefinedHRM() async throws {
    let folder = TestServer.temporaryDirectory()
    var server = try await TestServer.start(dataDirectory: folder)
    var admin = server.client()
    let first = try await Self.list(admin)
    #expect(first.map(\.name) == ["HRM"])
    await admin.close()
    try await server.stop()

    server = try await TestServer.start(dataDirectory: folder)
    admin = server.client()
    #expect(try await Self.list(admin) == first, "a restart adds nothing")
    try await Self.delete(admin, first[0].identifier)
    await admin.close()
    try await server.stop()

    server = try await TestServer.start(dataDirectory: folder)
    admin = server.client()
    #expect(try await Self.list(admin).isEmpty, "a deleted HRM does not come back")
    _ = try await Self.add(admin, "hrm")
    #expect(try await Self.list(admin).map(\.name) == ["hrm"], "and may be added again by hand")
    await admin.close()
    try await server.stop()
  }
}
