import DMSClient
import DMSDomain
import DMSMessages
import DMSRPC
import DMSStubs
import Foundation
import Testing

/// Rules an administrator relies on, each a defect found by trying the server as one
/// would: saves that change nothing, centers published under a default center, reveals,
/// Watch of a company that does not exist, the single company after a switch.
@Suite("Administrator rules over the wire")
struct AdministratorRulesTests {
  @Test(
    "a save that changes nothing keeps the revision and sends no event (company, shared section, API authorization)")
  func unchangedSaves() async throws {
    try await withTestServer { server async throws in
      let client = server.client()
      let companies = Dms_Settings_V1_Companies.Client(client)
      var create = Dms_Settings_V1_CreateCompanyRequest()
      create.company = companyMessage("SAME")
      create.secrets.operatorPassword = secret("Op-Passw0rd")
      let created = try await companies.create(create)
      var events = Dms_Settings_V1_SettingsEvents.Client(client).watch().makeAsyncIterator()
      #expect(try await events.next()?.kind == .subscribed)

      var update = Dms_Settings_V1_UpdateCompanyRequest()
      update.company = created
      var clear = Dms_Settings_V1_SecretInput()
      clear.clear = true
      update.secrets.ksefToken = clear  // not set: clearing it changes nothing either
      let again = try await companies.update(update)
      #expect(again.revision == created.revision)
      let shared = Dms_Settings_V1_SharedSettings.Client(client)
      var sharedUpdate = Dms_Settings_V1_UpdateSharedSettingsRequest()
      sharedUpdate.settings = try await shared.get()
      let first = try await shared.update(sharedUpdate)
      sharedUpdate.settings = first
      #expect(try await shared.update(sharedUpdate).revision == first.revision)

      // The next event is the shared section's first save: the unchanged saves sent none.
      let event = try #require(try await events.next())
      #expect(event.area == "erp.shared" && event.kind == .created, "\(event)")
      let key = try #require(try await server.store.registry.company(code: "SAME"))
      for company in [key, nil] {
        let audit = try await server.store.registry.auditRecords(company: company, after: 0, limit: 100)
        #expect(audit.filter { $0.action == "update" }.isEmpty, "\(audit.map(\.action))")
      }
      await client.close()
    }
  }

  @Test("API authorization: a save that changes nothing keeps the revision")
  func unchangedAPIAuthorization() async throws {
    try await withTestServer(deployment: DeploymentConfiguration(mode: .singleCompany)) { server async throws in
      let client = server.client()
      let auth = Dms_Settings_V1_ApiAuthorization.Client(client)
      var request = Dms_Settings_V1_UpdateApiAuthorizationRequest()
      request.settings.companyName = "Firma"
      request.settings.operatorLogin = "ADMIN"
      request.password = secret("Xl-Passw0rd")
      let saved = try await auth.update(request)
      request.settings = saved
      request.clearPassword()
      #expect(try await auth.update(request).revision == saved.revision)
      await client.close()
    }
  }

  @Test("ERP-7: publishing centers without the default center clears it, with an event and a warning")
  func centersClearTheDefault() async throws {
    try await withTestServer { server async throws in
      let client = server.client()
      let companies = Dms_Settings_V1_Companies.Client(client)
      var create = Dms_Settings_V1_CreateCompanyRequest()
      create.company = companyMessage("CEN")
      _ = try await companies.create(create)
      var publish = Dms_Settings_V1_SetCentersRequest()
      publish.shortName = "CEN"
      publish.centers = ["North", "South"]
      #expect(try await companies.setCenters(publish).warnings.isEmpty)
      var get = Dms_Settings_V1_GetCompanyRequest()
      get.shortName = "CEN"
      var update = Dms_Settings_V1_UpdateCompanyRequest()
      update.company = try await companies.get(get)
      update.company.defaultCenter = "South"
      let withDefault = try await companies.update(update)

      var events = Dms_Settings_V1_SettingsEvents.Client(client).watch().makeAsyncIterator()
      #expect(try await events.next()?.kind == .subscribed)
      publish.centers = ["North"]
      let published = try await companies.setCenters(publish)
      #expect(published.centers == ["North"])
      #expect(
        published.warnings == [
          "the default center South (ERP-7) is no longer published: company CEN's default center was cleared "
            + "(revision \(withDefault.revision + 1)); choose another with Update"
        ])
      let stored = try await companies.get(get)
      #expect(stored.defaultCenter.isEmpty && stored.revision == withDefault.revision + 1)
      #expect(try await events.next()?.area == "erp.centers")
      let companyEvent = try #require(try await events.next())
      #expect(companyEvent.area == "erp.company" && companyEvent.kind == .updated)
      // The company as stored saves as it is: the next unrelated edit is accepted.
      update.company = stored
      update.company.name = "Renamed"
      #expect(try await companies.update(update).name == "Renamed")
      // An empty list clears nothing more and is accepted.
      publish.centers = []
      #expect(try await companies.setCenters(publish).warnings.isEmpty)
      await client.close()
    }
  }

  @Test("reveals need a reason; a secret that is not set is NOT_FOUND and the attempt is audited")
  func reveals() async throws {
    try await withTestServer { server async throws in
      let client = server.client()
      let companies = Dms_Settings_V1_Companies.Client(client)
      var create = Dms_Settings_V1_CreateCompanyRequest()
      create.company = companyMessage("REV")
      create.secrets.operatorPassword = secret("Op-Passw0rd")
      _ = try await companies.create(create)
      var reveal = Dms_Settings_V1_RevealCompanySecretRequest()
      reveal.shortName = "REV"
      reveal.field = .operatorPassword
      reveal.reason = "  "
      let noReason = await rpcError { _ = try await companies.revealSecret(reveal) }
      #expect(noReason?.code == .invalidArgument && rules(noReason) == ["reason:"], "\(String(describing: noReason))")
      var download = Dms_Settings_V1_DownloadPrivateKeyRequest()
      download.shortName = "REV"
      #expect(await rpcError { _ = try await companies.downloadPrivateKey(download) }?.code == .invalidArgument)

      reveal.reason = "ticket 7"
      reveal.field = .ksefToken
      let notSet = await rpcError { _ = try await companies.revealSecret(reveal) }
      #expect(notSet?.code == .notFound && notSet?.message == "company REV has no KSeF token (ERP-14) set")
      let key = try #require(try await server.store.registry.company(code: "REV"))
      let audit = try await server.store.registry.auditRecords(company: key, after: 0, limit: 100)
      #expect(audit.contains { $0.action == "reveal" && $0.detail == "ticket 7 (not set)" }, "\(audit)")
      await client.close()
    }
  }

  @Test("API authorization: revealing the password needs a reason; an unset password is NOT_FOUND")
  func revealAPIAuthorization() async throws {
    try await withTestServer(deployment: DeploymentConfiguration(mode: .singleCompany)) { server async throws in
      let client = server.client()
      let auth = Dms_Settings_V1_ApiAuthorization.Client(client)
      var reveal = Dms_Settings_V1_RevealApiAuthorizationPasswordRequest()
      #expect(await rpcError { _ = try await auth.revealPassword(reveal) }?.code == .invalidArgument)
      reveal.reason = "test"
      #expect(await rpcError { _ = try await auth.revealPassword(reveal) }?.code == .notFound)
      await client.close()
    }
  }

  @Test("Watch of a company that does not exist is NOT_FOUND")
  func watchUnknownCompany() async throws {
    try await withTestServer { server async throws in
      let client = server.client()
      var request = Dms_Settings_V1_WatchSettingsRequest()
      request.shortName = "OTHER"
      let error = await rpcError {
        for try await _ in Dms_Settings_V1_SettingsEvents.Client(client).watch(request) {}
      }
      #expect(error?.code == .notFound && error?.message == "no company with the short name OTHER")
      await client.close()
    }
  }

  @Test("a server shutting down ends Watch with UNAVAILABLE, not a silent end")
  func watchEndsOnShutdown() async throws {
    let server = try await TestServer.start()
    let client = server.client()
    var events = Dms_Settings_V1_SettingsEvents.Client(client).watch().makeAsyncIterator()
    #expect(try await events.next()?.kind == .subscribed)
    let stopping = Task { try await server.stop() }
    let error = await rpcError { while try await events.next() != nil {} }
    #expect(error?.code == .unavailable, "\(String(describing: error))")
    try await stopping.value
    await client.close()
  }

  @Test("ERP-17: an RSA key under 2048 bits is refused with its size and the minimum")
  func smallRSAKey() async throws {
    let pem = try makePrivateKeyPEM("rsa", bits: 1024)
    try await withTestServer { server async throws in
      let client = server.client()
      var request = Dms_Settings_V1_CreateCompanyRequest()
      request.company = companyMessage("SMALL")
      request.secrets.edeliveryPrivateKey = secret(pem)
      let error = await rpcError { _ = try await Dms_Settings_V1_Companies.Client(client).create(request) }
      #expect(
        error?.violations.first?.description == "is an RSA key of 1024 bits; at least 2048 are required",
        "\(String(describing: error))")
      await client.close()
    }
  }

  @Test("ERP-S2: the document control mode matches ignoring case and is stored as the list spells it")
  func documentControlModeCase() async throws {
    try await withTestServer { server async throws in
      let client = server.client()
      let shared = Dms_Settings_V1_SharedSettings.Client(client)
      var request = Dms_Settings_V1_UpdateSharedSettingsRequest()
      request.settings = try await shared.get()
      request.settings.documentControlMode = "extended"
      #expect(try await shared.update(request).documentControlMode == "Extended")
      #expect(try await shared.get().documentControlMode == "Extended")
      await client.close()
    }
  }

  @Test("CFG-9: after multi → single, ServerInfo names the company that became the single one")
  func serverInfoAfterSwitch() async throws {
    let folder = TestServer.temporaryDirectory()
    var server = try await TestServer.start(
      deployment: DeploymentConfiguration(mode: .multiCompany), dataDirectory: folder)
    var client = server.client()
    var create = Dms_Settings_V1_CreateCompanyRequest()
    create.company = companyMessage("ACME")
    _ = try await Dms_Settings_V1_Companies.Client(client).create(create)
    await client.close()
    try await server.stop()

    server = try await TestServer.start(
      deployment: DeploymentConfiguration(mode: .singleCompany), dataDirectory: folder)
    client = server.client()
    #expect(try await Dms_Settings_V1_ServerInfo.Client(client).get().singleCompanyCode == "ACME")
    await client.close()
    try await server.stop()
  }
}
