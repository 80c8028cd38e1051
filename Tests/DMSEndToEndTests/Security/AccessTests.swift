import DMSClient
import DMSDomain
import DMSMessages
import DMSRPC
import DMSStorage
import DMSStubs
import Foundation
import SwiftProtobuf
import Testing

/// Who may call what, enforced before the handler (docs/SECURITY.md): every method
/// Reflection lists is called as each kind of caller, so a method added later is
/// covered without anyone adding it here.
@Suite("Access: every method, every kind of caller")
struct AccessTests {
  /// A method as Reflection describes it.
  struct Listed {
    var descriptor: MethodDescriptor
    var access: Dms_Rpc_V1_Access
    var companyScoped: Bool
    /// The number of the request's `short_name` field (the company named in the
    /// request), if it has one.
    var shortNameField: Int?
  }

  /// Every generated method, from Reflection and the descriptor set it serves.
  static func listed(_ client: RPCClient) async throws -> [Listed] {
    let reflection = Dms_Rpc_V1_Reflection.Client(client)
    let set = try Google_Protobuf_FileDescriptorSet(
      serializedBytes: try await reflection.getFileDescriptorSet().fileDescriptorSet)
    var shortNames: [String: Int] = [:]
    for file in set.file {
      for message in file.messageType {
        if let field = message.field.first(where: { $0.name == "short_name" }) {
          shortNames[file.package + "." + message.name] = Int(field.number)
        }
      }
    }
    return try await reflection.listMethods().methods.filter { !$0.name.hasPrefix("/dms.test.v1.") }.map { info in
      let parts = info.name.dropFirst().split(separator: "/")
      return Listed(
        descriptor: MethodDescriptor(
          service: String(parts[0]), method: String(parts[1]), requestType: info.requestType,
          responseType: info.responseType, kind: info.serverStreaming ? .serverStreaming : .unary),
        access: info.access, companyScoped: info.companyScoped, shortNameField: shortNames[info.requestType])
    }
  }

  /// The status a call of `method` ends with (OK when it answers), its request the
  /// empty message or one naming `company` in its `short_name`.
  static func status(
    _ client: RPCClient, _ method: Listed, metadata: [String: String] = [:], company: String? = nil
  ) async -> StatusCode {
    var request = Google_Protobuf_Empty()
    if let company, let number = method.shortNameField {
      var bytes: [UInt8] = [UInt8(number << 3 | 2), UInt8(company.utf8.count)]
      bytes += Array(company.utf8)
      request = (try? Google_Protobuf_Empty(serializedBytes: bytes)) ?? request
    }
    let options = CallOptions(timeout: .seconds(10), metadata: metadata)
    do {
      switch method.descriptor.kind {
      case .unary:
        let _: Google_Protobuf_Empty = try await client.unary(method.descriptor, request: request, options: options)
      case .serverStreaming:
        let stream: RPCResponseStream<Google_Protobuf_Empty> = client.serverStreaming(
          method.descriptor, request: request, options: options)
        for try await _ in stream { break }
      }
      return .ok
    } catch let error as RPCError {
      return error.code
    } catch {
      return .unknown
    }
  }

  /// Methods a password-change-only session may call.
  static let passwordChangeMethods: Set = [
    "/dms.auth.v1.Auth/ChangePassword", "/dms.auth.v1.Auth/WhoAmI", "/dms.auth.v1.Auth/Logout",
  ]

  @Test("no session, a malformed or expired one: UNAUTHENTICATED for every method but the public ones")
  func withoutSession() async throws {
    try await withTestServer { server in
      let admin = server.client()
      let methods = try await Self.listed(admin)
      #expect(methods.count >= 30)
      let expired = try await server.session(
        of: Operator(login: "old", administrator: true), expiresIn: .seconds(-1))
      let anonymous = server.client { $0.credentials = nil }
      for method in methods {
        for metadata in [
          [:], ["authorization": "Bearer \(expired)"], ["authorization": "Bearer not-a-token"],
          ["authorization": "Basic dGVzdDp0ZXN0"],
        ] {
          let code = await Self.status(anonymous, method, metadata: metadata)
          if method.access == .public {
            #expect(code != .unauthenticated, "\(method.descriptor) \(metadata)")
          } else {
            #expect(code == .unauthenticated, "\(method.descriptor) \(metadata): \(code)")
          }
        }
      }
      await anonymous.close()
      await admin.close()
    }
  }

  @Test("an operator who is not an administrator: PERMISSION_DENIED for ADMINISTRATOR and SYSTEM methods only")
  func nonAdministrator() async throws {
    try await withTestServer { server in
      let admin = server.client()
      let methods = try await Self.listed(admin)
      let token = try await server.session(of: Operator(login: "reader"))
      let reader = server.client { $0.credentials = .token(token) }
      for method in methods where method.descriptor.fullName != "/dms.auth.v1.Auth/Logout" {
        let code = await Self.status(reader, method)
        switch method.access {
        case .administrator, .system:
          #expect(code == .permissionDenied, "\(method.descriptor): \(code)")
        default:
          #expect(code != .permissionDenied && code != .unauthenticated, "\(method.descriptor): \(code)")
        }
      }
      await reader.close()
      await admin.close()
    }
  }

  /// Methods an enrolment-only session may call (TOOLS-4).
  static let enrolmentMethods: Set = [
    "/dms.auth.v1.Auth/EnrolTwoStep", "/dms.auth.v1.Auth/ConfirmTwoStep", "/dms.auth.v1.Auth/WhoAmI",
    "/dms.auth.v1.Auth/Logout",
  ]

  @Test(
    "a session that may only change the password, or only enrol in two-step login: FAILED_PRECONDITION for the rest",
    arguments: [SessionRecord.Scope.changePassword, .enrolTwoStep])
  func restrictedScope(_ scope: SessionRecord.Scope) async throws {
    try await withTestServer { server in
      let admin = server.client()
      let methods = try await Self.listed(admin)
      let allowed = scope == .changePassword ? Self.passwordChangeMethods : Self.enrolmentMethods
      let token = try await server.session(of: Operator(login: "newcomer", administrator: true), scope: scope)
      let newcomer = server.client { $0.credentials = .token(token) }
      for method in methods where method.access != .public && !allowed.contains(method.descriptor.fullName) {
        let code = await Self.status(newcomer, method)
        #expect(code == .failedPrecondition, "\(method.descriptor): \(code)")
      }
      let me = try await Dms_Auth_V1_Auth.Client(newcomer).whoAmI()
      #expect(me.scope == (scope == .changePassword ? .changePassword : .enrolTwoStep) && me.login == "newcomer")
      await newcomer.close()
      await admin.close()
    }
  }

  @Test("an API system's session: PERMISSION_DENIED for ADMINISTRATOR methods only; every company reachable")
  func apiSystem() async throws {
    try await withTestServer { server in
      let admin = server.client()
      let methods = try await Self.listed(admin)
      var create = Dms_Settings_V1_CreateCompanyRequest()
      create.company = companyMessage("ANY")
      _ = try await Dms_Settings_V1_Companies.Client(admin).create(create)
      let added = try await ApiSystemsTests.add(admin, "Connector")
      let anonymous = server.client { $0.credentials = nil }
      let token = try await ApiSystemsTests.loginSystem(anonymous, added.system.identifier, added.secret).token
      let system = server.client { $0.credentials = .token(token) }
      for method in methods where method.descriptor.fullName != "/dms.auth.v1.Auth/Logout" {
        let code = await Self.status(
          system, method, metadata: method.companyScoped ? ["company": "ANY"] : [:], company: "ANY")
        switch method.access {
        case .administrator:
          #expect(code == .permissionDenied, "\(method.descriptor): \(code)")
        default:
          #expect(
            code != .permissionDenied && code != .unauthenticated && code != .notFound, "\(method.descriptor): \(code)")
        }
      }
      for client in [admin, anonymous, system] { await client.close() }
    }
  }

  @Test("a company the caller does not belong to answers NOT_FOUND, as one that does not exist")
  func foreignCompany() async throws {
    try await withTestServer { server in
      let admin = server.client()
      let companies = Dms_Settings_V1_Companies.Client(admin)
      for code in ["MINE", "OTHER"] {
        var create = Dms_Settings_V1_CreateCompanyRequest()
        create.company = companyMessage(code)
        _ = try await companies.create(create)
      }
      let methods = try await Self.listed(admin)
      let token = try await server.session(of: Operator(login: "member", companies: ["MINE"]))
      let member = server.client { $0.credentials = .token(token) }
      var checked = 0
      for method in methods where method.access == .session && (method.shortNameField != nil || method.companyScoped) {
        let metadata = method.companyScoped ? ["company": "OTHER"] : [:]
        let foreign = await Self.status(member, method, metadata: metadata, company: "OTHER")
        let missing = await Self.status(
          member, method, metadata: method.companyScoped ? ["company": "NOPE"] : [:], company: "NOPE")
        let own = await Self.status(
          member, method, metadata: method.companyScoped ? ["company": "MINE"] : [:], company: "MINE")
        #expect(foreign == .notFound && missing == .notFound, "\(method.descriptor): \(foreign), \(missing)")
        #expect(own != .notFound, "\(method.descriptor): \(own)")
        checked += 1
      }
      #expect(checked >= 3, "Companies/Get, Companies/ListCenters, SettingsEvents/Watch at least")
      // The list holds only the caller's companies; the messages do not tell the two apart.
      let list = try await Dms_Settings_V1_Companies.Client(member).list()
      #expect(list.companies.map(\.shortName) == ["MINE"])
      var get = Dms_Settings_V1_GetCompanyRequest()
      get.shortName = "OTHER"
      let foreign = await rpcError { _ = try await Dms_Settings_V1_Companies.Client(member).get(get) }
      get.shortName = "NOPE"
      let missing = await rpcError { _ = try await Dms_Settings_V1_Companies.Client(member).get(get) }
      #expect(
        foreign?.message.replacingOccurrences(of: "OTHER", with: "X")
          == missing?.message.replacingOccurrences(of: "NOPE", with: "X"))
      await member.close()
      await admin.close()
    }
  }

  @Test("Watch sends an operator only its companies' changes and the shared section's")
  func watchFiltered() async throws {
    try await withTestServer { server in
      let admin = server.client()
      let companies = Dms_Settings_V1_Companies.Client(admin)
      var create = Dms_Settings_V1_CreateCompanyRequest()
      create.company = companyMessage("MINE")
      _ = try await companies.create(create)
      let token = try await server.session(of: Operator(login: "watcher", companies: ["MINE"]))
      let watcher = server.client { $0.credentials = .token(token) }
      let stream = Dms_Settings_V1_SettingsEvents.Client(watcher).watch(Dms_Settings_V1_WatchSettingsRequest())
      var iterator = stream.makeAsyncIterator()
      #expect(try await iterator.next()?.kind == .subscribed)
      create.company = companyMessage("OTHER")
      _ = try await companies.create(create)
      var update = Dms_Settings_V1_UpdateCompanyRequest()
      var get = Dms_Settings_V1_GetCompanyRequest()
      get.shortName = "MINE"
      update.company = try await companies.get(get)
      update.company.name = "Mine, renamed"
      _ = try await companies.update(update)
      let event = try await iterator.next()
      #expect(
        event?.shortName == "MINE" && event?.kind == .updated,
        "OTHER's creation is not sent: \(String(describing: event))")
      await watcher.close()
      await admin.close()
    }
  }
}
