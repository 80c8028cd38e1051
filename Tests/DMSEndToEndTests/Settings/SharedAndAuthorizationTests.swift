import DMSClient
import DMSDomain
import DMSMessages
import DMSRPC
import DMSStubs
import Foundation
import Testing

/// The shared section (ERP-S1 … S3), API authorization (APIAUTH-1 … 5) and ServerInfo.
@Suite("Shared section, API authorization, server info")
struct SharedAndAuthorizationTests {
  @Test("ERP-S1, ERP-S2, ERP-S3: defaults, update with revisions, closed lists")
  func shared() async throws {
    try await withTestServer { server async throws in
      let client = server.client()
      let shared = Dms_Settings_V1_SharedSettings.Client(client)
      var settings = try await shared.get()
      #expect(settings.revision == 0)
      #expect(settings.supportedApiVersions == [20232, 20240, 20241])
      #expect(settings.apiVersion == 20241 && settings.documentControlMode == "Standard")

      settings.apiVersion = 20240
      settings.analyticalDescription = true
      var update = Dms_Settings_V1_UpdateSharedSettingsRequest()
      update.settings = settings
      let saved = try await shared.update(update)
      #expect(saved.revision == 1 && saved.apiVersion == 20240 && saved.analyticalDescription)
      #expect(await rpcError { _ = try await shared.update(update) }?.code == .aborted)

      update.settings = saved
      update.settings.apiVersion = 20250
      update.settings.documentControlMode = "Turbo"
      let error = await rpcError { _ = try await shared.update(update) }
      #expect(rules(error) == ["settings.api_version:ERP-S1", "settings.document_control_mode:ERP-S2"])
      #expect(try await shared.get() == saved)
      await client.close()
    }
  }

  static let single = DeploymentConfiguration(mode: .singleCompany)

  @Test("APIAUTH-1, APIAUTH-2, APIAUTH-3, APIAUTH-5: the three values are saved together; the password is write-only")
  func apiAuthorization() async throws {
    try await withTestServer(deployment: Self.single) { server async throws in
      let client = server.client()
      let auth = Dms_Settings_V1_ApiAuthorization.Client(client)
      #expect(try await auth.get().revision == 0)
      var update = Dms_Settings_V1_UpdateApiAuthorizationRequest()
      update.settings.companyName = "Firma Sp. z o.o."
      update.settings.operatorLogin = "ADMIN"
      update.password = secret("Xl-Passw0rd")
      let saved = try await auth.update(update)
      #expect(saved.revision == 1 && saved.passwordSet && saved.companyName == "Firma Sp. z o.o.")
      #expect(try await auth.get() == saved)
      var reveal = Dms_Settings_V1_RevealApiAuthorizationPasswordRequest()
      reveal.reason = "test"
      #expect(try await auth.revealPassword(reveal).value == "Xl-Passw0rd")

      // Stale revision.
      #expect(await rpcError { _ = try await auth.update(update) }?.code == .aborted)
      await client.close()
    }
  }

  @Test(
    "APIAUTH-4: a space before or after a value is refused naming the field, and nothing changes",
    arguments: [
      (" Firma", "ADMIN", "pw", "settings.company_name"),
      ("Firma", "ADMIN ", "pw", "settings.operator_login"),
      ("Firma", "ADMIN", " pw", "password"),
    ])
  func apiAuthorizationSpaces(company: String, login: String, password: String, field: String) async throws {
    try await withTestServer(deployment: Self.single) { server async throws in
      let client = server.client()
      let auth = Dms_Settings_V1_ApiAuthorization.Client(client)
      var update = Dms_Settings_V1_UpdateApiAuthorizationRequest()
      update.settings.companyName = company
      update.settings.operatorLogin = login
      update.password = secret(password)
      let error = await rpcError { _ = try await auth.update(update) }
      #expect(error?.code == .invalidArgument)
      #expect(rules(error) == ["\(field):APIAUTH-4"])
      #expect(try await auth.get().revision == 0)
      await client.close()
    }
  }

  @Test("APIAUTH: unavailable in multi-company mode, naming the mode")
  func apiAuthorizationInMultiMode() async throws {
    try await withTestServer { server async throws in
      let client = server.client()
      let error = await rpcError { _ = try await Dms_Settings_V1_ApiAuthorization.Client(client).get() }
      #expect(error?.code == .failedPrecondition)
      #expect(error?.message.contains("single-company mode") == true)
      await client.close()
    }
  }

  @Test("CFG-1, CFG-2, CFG-3, CFG-4, CFG-5, CFG-6, CFG-7, CFG-8: ServerInfo reports the configuration in force")
  func serverInfo() async throws {
    let deployment = DeploymentConfiguration(
      mode: .multiCompany, ksefWorkMode: .production, deleteMailsAfterSending: true,
      useNewModeOfDocumentPermissions: true, destinationAttachmentWorkflow: .externalStorage,
      destinationAttachmentsRepository: .database, useRepository: true, eDeliveryEnvironment: .test,
      sharedChoices: .init(apiVersions: [20241, 20250], documentControlModes: ["A"]))
    try await withTestServer(deployment: deployment) { server async throws in
      let client = server.client()
      let info = try await Dms_Settings_V1_ServerInfo.Client(client).get()
      #expect(info.mode == .multiCompany)
      #expect(info.ksefWorkMode == "Production")
      #expect(info.deleteMailsAfterSending && info.useNewModeOfDocumentPermissions && info.useRepository)
      #expect(info.destinationAttachmentWorkflow == "IBARD" && info.destinationAttachmentsRepository == "DO")
      #expect(info.edeliveryEnvironment == "test")
      #expect(info.supportedApiVersions == [20241, 20250] && info.documentControlModes == ["A"])
      #expect(info.protocolVersions == [1])
      await client.close()
    }
  }
}
