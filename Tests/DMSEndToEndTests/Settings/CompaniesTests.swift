import DMSClient
import DMSDomain
import DMSMessages
import DMSRPC
import DMSStubs
import Foundation
import Testing

/// ERP connections (multi-company mode) over TCP, rules ERP-1 … ERP-19.
@Suite("Companies")
struct CompaniesTests {
  @Test("ERP-18, ERP-19: create, read, update with the revision read, refuse a stale one, delete")
  func lifecycle() async throws {
    try await withTestServer { server async throws in
      let client = server.client()
      let companies = Dms_Settings_V1_Companies.Client(client)
      var request = Dms_Settings_V1_CreateCompanyRequest()
      request.company = companyMessage("ACME", name: "Acme")
      let created = try await companies.create(request)
      #expect(created.revision == 1)
      #expect(created.shortName == "ACME" && created.name == "Acme")

      var get = Dms_Settings_V1_GetCompanyRequest()
      get.shortName = "acme"  // ERP-3: found ignoring case
      var read = try await companies.get(get)
      #expect(read == created)

      read.name = "Acme Sp. z o.o."
      var update = Dms_Settings_V1_UpdateCompanyRequest()
      update.company = read
      let updated = try await companies.update(update)
      #expect(updated.revision == 2 && updated.name == "Acme Sp. z o.o.")

      // A second administrator still holding revision 1 is refused.
      let stale = await rpcError { _ = try await companies.update(update) }
      #expect(stale?.code == .aborted)
      #expect(stale?.trailers["current-revision"] == "2")

      #expect(try await companies.list().companies.map(\.shortName) == ["ACME"])

      var delete = Dms_Settings_V1_DeleteCompanyRequest()
      delete.shortName = "ACME"
      delete.revision = 1
      #expect(await rpcError { _ = try await companies.delete(delete) }?.code == .aborted)
      delete.revision = 2
      _ = try await companies.delete(delete)
      #expect(await rpcError { _ = try await companies.get(get) }?.code == .notFound)
      #expect(try await companies.list().companies.isEmpty)
      await client.close()
    }
  }

  @Test("ERP-3: a short name taken (ignoring case) is ALREADY_EXISTS naming the rule")
  func duplicateShortName() async throws {
    try await withTestServer { server async throws in
      let client = server.client()
      let companies = Dms_Settings_V1_Companies.Client(client)
      var request = Dms_Settings_V1_CreateCompanyRequest()
      request.company = companyMessage("Acme")
      _ = try await companies.create(request)
      request.company = companyMessage("ACME")
      let error = await rpcError { _ = try await companies.create(request) }
      #expect(error?.code == .alreadyExists)
      #expect(rules(error) == ["company.short_name:ERP-3"])
      await client.close()
    }
  }

  @Test("bad input: every broken rule named by field and rule, and nothing is stored")
  func violations() async throws {
    try await withTestServer { server async throws in
      let client = server.client()
      let companies = Dms_Settings_V1_Companies.Client(client)
      var company = companyMessage("TOOLONG")
      company.mode = .unspecified
      company.name = ""
      company.nip = "8567346216"
      company.edeliveryAddress = "AE:PL-00000"
      company.connection.server = ""
      company.domainName = "corp.local"
      var request = Dms_Settings_V1_CreateCompanyRequest()
      request.company = company
      request.secrets.edeliveryPrivateKey = secret("not a key")
      let error = await rpcError { _ = try await companies.create(request) }
      #expect(error?.code == .invalidArgument)
      #expect(
        Set(rules(error)) == [
          "company.mode:ERP-1", "company.short_name:ERP-3", "company.name:ERP-2", "company.connection.server:ERP-4",
          "company.nip:ERP-13", "company.edelivery_address:ERP-15", "company.domain_name:ERP-11",
          "secrets.edelivery_private_key:ERP-17",
        ])
      #expect(try await companies.list().companies.isEmpty)
      await client.close()
    }
  }

  @Test("ERP-4, ERP-5, ERP-6, ERP-8, ERP-10, ERP-11, ERP-12, ERP-16: every field round-trips as saved")
  func fieldsRoundTrip() async throws {
    try await withTestServer { server async throws in
      let client = server.client()
      var company = companyMessage("ALT")
      company.mode = .altum
      company.altumConfiguration.server = "cfg01"
      company.altumConfiguration.database = "CDN_KNF_Konfiguracja"
      company.altumConfiguration.authentication = .integrated
      company.licenseKeyName = "KLUCZ-01"
      company.mappedDatabase = "Firma Demo"
      company.operatorLogin = "ADMIN"
      company.useDomain = true
      company.domainName = "corp.local"
      company.domainGroup = "All"
      company.edeliveryAddress = "AE:PL-12345-67890-ABCDE-12"
      company.edeliverySystemName = "DMS"
      var request = Dms_Settings_V1_CreateCompanyRequest()
      request.company = company
      request.secrets.altumConfigurationPassword = secret("cfg-pass")
      let created = try await Dms_Settings_V1_Companies.Client(client).create(request)
      var expected = company
      expected.revision = 1
      expected.altumConfiguration.passwordSet = true
      #expect(created == expected)
      await client.close()
    }
  }

  @Test("ERP-13 (INT-1): a NIP is stored as its 10 digits")
  func nipNormalized() async throws {
    try await withTestServer { server async throws in
      let client = server.client()
      var request = Dms_Settings_V1_CreateCompanyRequest()
      request.company = companyMessage("NIP")
      request.company.nip = "PL 856-734-62-15"
      #expect(try await Dms_Settings_V1_Companies.Client(client).create(request).nip == "8567346215")
      await client.close()
    }
  }

  @Test("ERP-9, ERP-14, ERP-17: secrets are write-only; reveal and download are explicit")
  func secrets() async throws {
    let pem = try makePrivateKeyPEM("ec")
    try await withTestServer { server async throws in
      let client = server.client()
      let companies = Dms_Settings_V1_Companies.Client(client)
      var request = Dms_Settings_V1_CreateCompanyRequest()
      request.company = companyMessage("SEC")
      request.secrets.operatorPassword = secret("op-Passw0rd")
      request.secrets.ksefToken = secret("ksef-token-123")
      request.secrets.connectionPassword = secret("db-pass")
      request.secrets.edeliveryPrivateKey = secret(pem)
      let created = try await companies.create(request)
      #expect(created.operatorPasswordSet && created.ksefTokenSet && created.connection.passwordSet)
      #expect(created.edeliveryPrivateKeySet)
      #expect(created.edeliveryKeyFingerprint.hasPrefix("SHA256:") && created.edeliveryKeyFingerprint.count == 71)
      let serialized = try created.jsonString()
      #expect(
        !serialized.contains("op-Passw0rd") && !serialized.contains("ksef-token-123") && !serialized.contains("PRIVATE")
      )

      var reveal = Dms_Settings_V1_RevealCompanySecretRequest()
      reveal.shortName = "SEC"
      reveal.field = .operatorPassword
      reveal.reason = "test"
      #expect(try await companies.revealSecret(reveal).value == "op-Passw0rd")
      reveal.field = .ksefToken
      #expect(try await companies.revealSecret(reveal).value == "ksef-token-123")
      var download = Dms_Settings_V1_DownloadPrivateKeyRequest()
      download.shortName = "SEC"
      download.reason = "test"
      #expect(try await companies.downloadPrivateKey(download).value == pem)

      // Keep (absent), then clear.
      var update = Dms_Settings_V1_UpdateCompanyRequest()
      update.company = created
      var clear = Dms_Settings_V1_SecretInput()
      clear.clear = true
      update.secrets.ksefToken = clear
      update.secrets.edeliveryPrivateKey = clear
      let updated = try await companies.update(update)
      #expect(updated.operatorPasswordSet && !updated.ksefTokenSet && !updated.edeliveryPrivateKeySet)
      #expect(updated.edeliveryKeyFingerprint.isEmpty)
      // A secret that is not set: NOT_FOUND (the attempt is audited), not an empty value.
      await #expect {
        _ = try await companies.revealSecret(reveal)
      } throws: { error in
        (error as? RPCError)?.code == .notFound
          && (error as? RPCError)?.message == "company SEC has no KSeF token (ERP-14) set"
      }

      // The secrets are not in the database files in plaintext.
      for name in try FileManager.default.contentsOfDirectory(atPath: server.dataDirectory) {
        let data = try Data(contentsOf: URL(fileURLWithPath: server.dataDirectory).appendingPathComponent(name))
        #expect(data.range(of: Data("op-Passw0rd".utf8)) == nil, "plaintext password in \(name)")
        #expect(data.range(of: Data("BEGIN PRIVATE KEY".utf8)) == nil, "plaintext key in \(name)")
      }
      await client.close()
    }
  }

  @Test("ERP-17: an RSA private key is accepted too")
  func rsaKey() async throws {
    let pem = try makePrivateKeyPEM("rsa")
    try await withTestServer { server async throws in
      let client = server.client()
      var request = Dms_Settings_V1_CreateCompanyRequest()
      request.company = companyMessage("RSA")
      request.secrets.edeliveryPrivateKey = secret(pem)
      #expect(
        try await Dms_Settings_V1_Companies.Client(client).create(request).edeliveryKeyFingerprint.hasPrefix("SHA256:"))
      await client.close()
    }
  }

  @Test("ERP-7: the default center is one of the centers published by SetCenters")
  func centers() async throws {
    try await withTestServer { server async throws in
      let client = server.client()
      let companies = Dms_Settings_V1_Companies.Client(client)
      var request = Dms_Settings_V1_CreateCompanyRequest()
      request.company = companyMessage("CTR")
      request.company.defaultCenter = "North"
      #expect(rules(await rpcError { _ = try await companies.create(request) }) == ["company.default_center:ERP-7"])
      request.company.defaultCenter = ""
      var company = try await companies.create(request)

      var publish = Dms_Settings_V1_SetCentersRequest()
      publish.shortName = "CTR"
      publish.centers = ["North", "South"]
      #expect(try await companies.setCenters(publish).centers == ["North", "South"])
      var list = Dms_Settings_V1_ListCentersRequest()
      list.shortName = "ctr"
      #expect(try await companies.listCenters(list).centers == ["North", "South"])

      var update = Dms_Settings_V1_UpdateCompanyRequest()
      company.defaultCenter = "East"
      update.company = company
      #expect(rules(await rpcError { _ = try await companies.update(update) }) == ["company.default_center:ERP-7"])
      company.defaultCenter = "South"
      update.company = company
      #expect(try await companies.update(update).defaultCenter == "South")
      await client.close()
    }
  }

  @Test("two companies never see each other's data")
  func isolation() async throws {
    try await withTestServer { server async throws in
      let client = server.client()
      let companies = Dms_Settings_V1_Companies.Client(client)
      for (code, password) in [("A", "alpha-secret"), ("B", "beta-secret")] {
        var request = Dms_Settings_V1_CreateCompanyRequest()
        request.company = companyMessage(code, name: "Company \(code)")
        request.secrets.operatorPassword = secret(password)
        _ = try await companies.create(request)
      }
      var publish = Dms_Settings_V1_SetCentersRequest()
      publish.shortName = "A"
      publish.centers = ["A-only"]
      _ = try await companies.setCenters(publish)
      var list = Dms_Settings_V1_ListCentersRequest()
      list.shortName = "B"
      #expect(try await companies.listCenters(list).centers.isEmpty)
      var reveal = Dms_Settings_V1_RevealCompanySecretRequest()
      reveal.shortName = "B"
      reveal.field = .operatorPassword
      reveal.reason = "test"
      #expect(try await companies.revealSecret(reveal).value == "beta-secret")
      var get = Dms_Settings_V1_GetCompanyRequest()
      get.shortName = "B"
      #expect(try await companies.get(get).name == "Company B")
      await client.close()
    }
  }

  @Test("everything is still there after a restart on the same data folder")
  func restart() async throws {
    let folder = TestServer.temporaryDirectory()
    let first = try await TestServer.start(dataDirectory: folder)
    var client = first.client()
    var request = Dms_Settings_V1_CreateCompanyRequest()
    request.company = companyMessage("KEEP", name: "Kept")
    request.secrets.operatorPassword = secret("kept-pw")
    _ = try await Dms_Settings_V1_Companies.Client(client).create(request)
    await client.close()
    try await first.stop()

    let second = try await TestServer.start(dataDirectory: folder)
    client = second.client()
    var get = Dms_Settings_V1_GetCompanyRequest()
    get.shortName = "KEEP"
    let company = try await Dms_Settings_V1_Companies.Client(client).get(get)
    #expect(company.name == "Kept" && company.operatorPasswordSet && company.revision == 1)
    await client.close()
    try await second.stop()
  }

  @Test("CFG-1: Companies is unavailable in single-company mode, naming the mode")
  func singleModeRefuses() async throws {
    try await withTestServer(deployment: DeploymentConfiguration(mode: .singleCompany)) { server async throws in
      let client = server.client()
      let error = await rpcError { _ = try await Dms_Settings_V1_Companies.Client(client).list() }
      #expect(error?.code == .failedPrecondition)
      #expect(error?.message.contains("multi-company mode") == true)
      await client.close()
    }
  }
}
