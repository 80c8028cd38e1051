import DMSClient
import DMSDomain
import DMSMessages
import DMSRPC
import DMSServices
import DMSStorage
import DMSStubs
import Foundation
import Logging
import Testing

@Suite("Watch and mode switch")
struct WatchAndModeSwitchTests {
  @Test("Watch streams an event for every committed change, filtered by company")
  func watch() async throws {
    try await withTestServer { server async throws in
      let client = server.client()
      let all = Dms_Settings_V1_SettingsEvents.Client(client).watch()
      var events = all.makeAsyncIterator()
      let subscribed = try #require(try await events.next())
      #expect(subscribed.kind == .subscribed)

      let companies = Dms_Settings_V1_Companies.Client(client)
      var create = Dms_Settings_V1_CreateCompanyRequest()
      create.company = companyMessage("AAA")
      _ = try await companies.create(create)
      create.company = companyMessage("BBB")
      _ = try await companies.create(create)
      var shared = Dms_Settings_V1_UpdateSharedSettingsRequest()
      shared.settings = try await Dms_Settings_V1_SharedSettings.Client(client).get()
      _ = try await Dms_Settings_V1_SharedSettings.Client(client).update(shared)
      // A company's stream (named ignoring case), from where the first one started.
      var request = Dms_Settings_V1_WatchSettingsRequest()
      request.shortName = "bbb"
      request.resumeAfter = subscribed.position
      var bEvents = Dms_Settings_V1_SettingsEvents.Client(client).watch(request).makeAsyncIterator()
      #expect(try await bEvents.next()?.kind == .subscribed)

      let first = try #require(try await events.next())
      #expect(first.kind == .created && first.shortName == "AAA" && first.area == "erp.company" && first.revision == 1)
      #expect(try await events.next()?.shortName == "BBB")
      let sharedEvent = try #require(try await events.next())
      #expect(sharedEvent.kind == .created && sharedEvent.shortName.isEmpty && sharedEvent.area == "erp.shared")
      #expect(first.position > 0 && sharedEvent.position == first.position + 2, "positions follow commit order")

      let b = try #require(try await bEvents.next())
      #expect(b.shortName == "BBB", "the filtered stream skips AAA")
      #expect(try await bEvents.next()?.area == "erp.shared", "and still gets the shared section")
      await client.close()
    }
  }

  @Test("Watch resumes after a reconnect from the last position seen: nothing missed, nothing twice")
  func watchResume() async throws {
    try await withTestServer { server async throws in
      let client = server.client()
      let companies = Dms_Settings_V1_Companies.Client(client)
      var create = Dms_Settings_V1_CreateCompanyRequest()
      create.company = companyMessage("R1")
      _ = try await companies.create(create)

      // A watcher sees R1's creation, then goes away.
      var lastSeen: Int64 = 0
      do {
        var request = Dms_Settings_V1_WatchSettingsRequest()
        request.resumeAfter = 0
        var events = Dms_Settings_V1_SettingsEvents.Client(client).watch(request).makeAsyncIterator()
        let subscribed = try #require(try await events.next())
        #expect(subscribed.kind == .subscribed && subscribed.position == 0)
        let created = try #require(try await events.next())
        #expect(created.shortName == "R1" && created.kind == .created)
        lastSeen = created.position
      }
      // Changes while it is away.
      for code in ["R2", "R3"] {
        create.company = companyMessage(code)
        _ = try await companies.create(create)
      }
      var request = Dms_Settings_V1_WatchSettingsRequest()
      request.resumeAfter = lastSeen
      var events = Dms_Settings_V1_SettingsEvents.Client(client).watch(request).makeAsyncIterator()
      #expect(try await events.next()?.position == lastSeen)
      #expect(try await events.next()?.shortName == "R2")
      #expect(try await events.next()?.shortName == "R3")
      create.company = companyMessage("R4")
      _ = try await companies.create(create)
      #expect(try await events.next()?.shortName == "R4", "then the live ones")

      // A position the server never gave.
      request.resumeAfter = 1_000_000
      await #expect {
        for try await _ in Dms_Settings_V1_SettingsEvents.Client(client).watch(request) {}
      } throws: { error in
        (error as? RPCError)?.code == .outOfRange
      }
      await client.close()
    }
  }

  @Test("CFG-9: single → multi keeps every setting; back to single with one company keeps them too")
  func modeSwitch() async throws {
    let folder = TestServer.temporaryDirectory()
    let single = DeploymentConfiguration(mode: .singleCompany, singleCompanyCode: "MAIN")
    var server = try await TestServer.start(deployment: single, dataDirectory: folder)
    var client = server.client()
    var update = Dms_Settings_V1_UpdateApiAuthorizationRequest()
    update.settings.companyName = "Firma"
    update.settings.operatorLogin = "ADMIN"
    update.password = secret("Xl-Passw0rd")
    _ = try await Dms_Settings_V1_ApiAuthorization.Client(client).update(update)
    await client.close()
    try await server.stop()

    server = try await TestServer.start(deployment: DeploymentConfiguration(mode: .multiCompany), dataDirectory: folder)
    client = server.client()
    let companies = Dms_Settings_V1_Companies.Client(client)
    var get = Dms_Settings_V1_GetCompanyRequest()
    get.shortName = "MAIN"
    let company = try await companies.get(get)
    #expect(company.name == "Firma" && company.mappedDatabase == "Firma" && company.operatorLogin == "ADMIN")
    #expect(company.operatorPasswordSet)
    var reveal = Dms_Settings_V1_RevealCompanySecretRequest()
    reveal.shortName = "MAIN"
    reveal.field = .operatorPassword
    reveal.reason = "test"
    #expect(try await companies.revealSecret(reveal).value == "Xl-Passw0rd")
    await client.close()
    try await server.stop()

    server = try await TestServer.start(deployment: single, dataDirectory: folder)
    client = server.client()
    let auth = try await Dms_Settings_V1_ApiAuthorization.Client(client).get()
    #expect(auth.companyName == "Firma" && auth.operatorLogin == "ADMIN" && auth.passwordSet)
    var revealPassword = Dms_Settings_V1_RevealApiAuthorizationPasswordRequest()
    revealPassword.reason = "test"
    #expect(
      try await Dms_Settings_V1_ApiAuthorization.Client(client).revealPassword(revealPassword).value == "Xl-Passw0rd")
    await client.close()
    try await server.stop()
  }

  @Test("CFG-9: going back to single-company mode with more than one company is refused at start-up")
  func modeSwitchRefused() async throws {
    let folder = TestServer.temporaryDirectory()
    let server = try await TestServer.start(
      deployment: DeploymentConfiguration(mode: .multiCompany), dataDirectory: folder)
    let client = server.client()
    for code in ["ONE", "TWO"] {
      var create = Dms_Settings_V1_CreateCompanyRequest()
      create.company = companyMessage(code)
      _ = try await Dms_Settings_V1_Companies.Client(client).create(create)
    }
    await client.close()
    try await server.stop()
    do {
      _ = try await TestServer.start(deployment: DeploymentConfiguration(mode: .singleCompany), dataDirectory: folder)
      Issue.record("start-up should be refused")
    } catch let error as CompanyModeMigration.RefusedSwitch {
      #expect(error.description.contains("ONE, TWO"))
      #expect(error.description.contains("--settings-multi-company true (SETTINGS_MULTI_COMPANY=true"))
    }
  }
}
