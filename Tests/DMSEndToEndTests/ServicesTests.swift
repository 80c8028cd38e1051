import DMSClient
import DMSMessages
import DMSRPC
import DMSServices
import DMSStubs
import SwiftProtobuf
import Testing

/// The built-in services, through the client library.
@Suite("Health and Reflection")
struct ServicesTests {
  @Test("Health/Check answers SERVING for the server, NOT_FOUND for an unknown service")
  func healthCheck() async throws {
    try await withTestServer { server async throws in
      let client = server.client()
      let health = Dms_Rpc_V1_Health.Client(client)
      #expect(try await health.check().status == .serving)
      server.health.setStatus(.notServing)
      #expect(try await health.check().status == .notServing)

      var storage = Dms_Rpc_V1_HealthCheckRequest()
      storage.service = "dms.settings.v1.storage"
      #expect(try await health.check(storage).status == .serving, "the storage answers its probe")

      var request = Dms_Rpc_V1_HealthCheckRequest()
      request.service = "dms.nope.v1.Nope"
      await #expect {
        _ = try await health.check(request)
      } throws: { error in
        (error as? RPCError)?.code == .notFound
      }
      await client.close()
    }
  }

  @Test("a service whose probe fails is NOT_SERVING")
  func failingProbe() async throws {
    let health = HealthService(probes: ["dms.settings.v1.storage": { false }])
    var request = Dms_Rpc_V1_HealthCheckRequest()
    request.service = "dms.settings.v1.storage"
    let context = ServerContext(
      method: Dms_Rpc_V1_Health.Method.check, metadata: [:], requestID: "t", deadline: nil, peer: "test")
    #expect(try await health.check(request: request, context: context).status == .notServing)
    request.service = ""
    #expect(try await health.check(request: request, context: context).status == .serving)
  }

  @Test("Health/Check's immediate answer follows status changes; a probed service waits for its probe")
  func immediateHealth() throws {
    let health = HealthService(probes: ["dms.settings.v1.storage": { true }])
    let context = ServerContext(
      method: Dms_Rpc_V1_Health.Method.check, metadata: [:], requestID: "t", deadline: nil, peer: "test")
    var request = Dms_Rpc_V1_HealthCheckRequest()
    #expect(try health.checkImmediately(request: request, context: context)?.status == .serving)
    health.setStatus(.notServing)
    #expect(try health.checkImmediately(request: request, context: context)?.status == .notServing)
    health.setStatus(.serving)
    #expect(try health.checkImmediately(request: request, context: context)?.status == .serving)
    request.service = "dms.settings.v1.storage"
    #expect(try health.checkImmediately(request: request, context: context) == nil, "the probe runs in a task")
    request.service = "dms.nope.v1.Nope"
    #expect(throws: RPCError.self) { _ = try health.checkImmediately(request: request, context: context) }
    health.shutDown()
    request.service = ""
    #expect(try health.checkImmediately(request: request, context: context)?.status == .notServing)
  }

  @Test("Health/Watch streams the status, then each change, until cancelled")
  func healthWatch() async throws {
    try await withTestServer { server async throws in
      let client = server.client()
      let stream = Dms_Rpc_V1_Health.Client(client).watch()
      var iterator = stream.makeAsyncIterator()
      #expect(try await iterator.next()?.status == .serving)
      server.health.setStatus(.notServing)
      #expect(try await iterator.next()?.status == .notServing)
      server.health.setStatus(.serving)
      #expect(try await iterator.next()?.status == .serving)
      await client.close()
    }
  }

  @Test("Reflection/ListMethods lists every method with its types and shape")
  func listMethods() async throws {
    try await withTestServer { server async throws in
      let client = server.client()
      let list = try await Dms_Rpc_V1_Reflection.Client(client).listMethods()
      let byName = Dictionary(uniqueKeysWithValues: list.methods.map { ($0.name, $0) })
      let check = try #require(byName["/dms.rpc.v1.Health/Check"])
      #expect(check.requestType == "dms.rpc.v1.HealthCheckRequest")
      #expect(check.responseType == "dms.rpc.v1.HealthCheckResponse")
      #expect(!check.serverStreaming)
      #expect(byName["/dms.rpc.v1.Health/Watch"]?.serverStreaming == true)
      #expect(byName["/dms.rpc.v1.Reflection/ListMethods"] != nil)
      #expect(byName["/dms.rpc.v1.Reflection/GetFileDescriptorSet"] != nil)
      #expect(byName[TestService.echo.fullName] != nil)
      await client.close()
    }
  }

  @Test("every method declares who may call it; only Health, Reflection and Auth's logins are open to anyone")
  func declaredAccess() async throws {
    try await withTestServer { server async throws in
      let client = server.client()
      let list = try await Dms_Rpc_V1_Reflection.Client(client).listMethods()
      // The test service's methods are made by hand (dms.test.v1); the rest are generated.
      let generated = list.methods.filter { !$0.name.hasPrefix("/dms.test.v1.") }
      #expect(generated.count == ServiceCatalog.methods.count)
      for method in generated {
        #expect(method.access != .unspecified, "\(method.name)")
        let entry = try #require(ServiceCatalog.methods.first { $0.descriptor.fullName == method.name })
        #expect(method.access.rawValue == Dms_Rpc_V1_Access(rawValue: accessNumber(entry.descriptor.access))?.rawValue)
      }
      let open = Set(generated.filter { $0.access == .public }.map(\.name))
      #expect(
        open == [
          "/dms.rpc.v1.Health/Check", "/dms.rpc.v1.Health/Watch", "/dms.rpc.v1.Reflection/ListMethods",
          "/dms.rpc.v1.Reflection/GetFileDescriptorSet", "/dms.auth.v1.Auth/Login", "/dms.auth.v1.Auth/LoginSystem",
        ])
      let byName = Dictionary(uniqueKeysWithValues: generated.map { ($0.name, $0.access) })
      #expect(byName["/dms.settings.v1.Companies/RevealSecret"] == .administrator)
      #expect(byName["/dms.settings.v1.Companies/SetCenters"] == .system)
      #expect(byName["/dms.settings.v1.SharedSettings/Get"] == .session)
      await client.close()
    }
  }

  private func accessNumber(_ access: MethodDescriptor.Access) -> Int {
    switch access {
    case .public: 1
    case .session: 2
    case .administrator: 3
    case .system: 4
    }
  }

  @Test("Reflection/GetFileDescriptorSet returns every .proto, enough to build messages dynamically")
  func fileDescriptorSet() async throws {
    try await withTestServer { server async throws in
      let client = server.client()
      let response = try await Dms_Rpc_V1_Reflection.Client(client).getFileDescriptorSet()
      let set = try Google_Protobuf_FileDescriptorSet(serializedBytes: response.fileDescriptorSet)
      let files = Dictionary(uniqueKeysWithValues: set.file.map { ($0.name, $0) })
      let health = try #require(files["dms/rpc/v1/health.proto"])
      #expect(health.package == "dms.rpc.v1")
      let service = try #require(health.service.first { $0.name == "Health" })
      #expect(service.method.map(\.name) == ["Check", "Watch"])
      let frame = try #require(files["dms/rpc/v1/frame.proto"])
      let callMeta = try #require(frame.messageType.first { $0.name == "CallMeta" })
      #expect(callMeta.field.map(\.number) == [1, 2, 3])
      await client.close()
    }
  }
}
