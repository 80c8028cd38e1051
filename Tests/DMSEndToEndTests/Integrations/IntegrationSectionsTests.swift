import Crypto
import DMSClient
import DMSDomain
import DMSMessages
import DMSRPC
import DMSServices
import DMSStubs
import Foundation
import Testing
import X509

/// The KSeF and e-Delivery sections over the wire (INT-1 … INT-8; ERP-13 … ERP-17 per
/// company): single-company mode's own section, the same fields per company in
/// multi-company mode, and INT-4a's certificate fallback with the secret rules.
@Suite("KSeF and e-Delivery sections")
struct IntegrationSectionsTests {
  static let single = DeploymentConfiguration(mode: .singleCompany, ksefWorkMode: .test, singleCompanyCode: "MAIN")
  static let nip = "8567346215"

  /// A self-signed certificate for a P-256 key, valid `from` … `until`, and its key.
  static func certificate(
    _ commonName: String = "ACME KSeF", from: Date = Date().addingTimeInterval(-86_400),
    until: Date = Date().addingTimeInterval(365 * 86_400)
  ) throws -> (pem: String, key: String) {
    let key = P256.Signing.PrivateKey()
    let name = try DistinguishedName {
      CountryName("PL")
      OrganizationName("ACME sp. z o.o.")
      CommonName(commonName)
    }
    let certificate = try Certificate(
      version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: .init(key.publicKey),
      notValidBefore: from, notValidAfter: until, issuer: name, subject: name,
      signatureAlgorithm: .ecdsaWithSHA256, extensions: Certificate.Extensions(), issuerPrivateKey: .init(key))
    // Both as in a PEM file, ending with a newline: as the server keeps them.
    return (try certificate.serializeAsPEM().pemString + "\n", key.pemRepresentation + "\n")
  }

  /// The SHA-1 thumbprint as openssl prints it, colons removed.
  static func opensslThumbprint(_ pem: String) async throws -> String {
    try await offPool {
      let file = FileManager.default.temporaryDirectory.appendingPathComponent("dms-cert-\(UUID().uuidString).pem")
      try pem.write(to: file, atomically: true, encoding: .utf8)
      let output = String(
        decoding: try SMTPTestServer.run(
          "/usr/bin/openssl", ["x509", "-in", file.path, "-noout", "-fingerprint", "-sha1"]), as: UTF8.self)
      return String(output.split(separator: "=").last ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        .replacingOccurrences(of: ":", with: "")
    }
  }

  static func update(
    _ client: RPCClient, _ settings: Dms_Settings_V1_KsefSettings, options: CallOptions = CallOptions(),
    _ change: (inout Dms_Settings_V1_UpdateKsefSettingsRequest) -> Void = { _ in }
  ) async throws -> Dms_Settings_V1_KsefSettings {
    var request = Dms_Settings_V1_UpdateKsefSettingsRequest()
    request.settings = settings
    change(&request)
    return try await Dms_Settings_V1_Ksef.Client(client).update(request, options: options)
  }

  @Test(
    "INT-1, INT-2, INT-8: single-company mode's KSeF section: empty at first, its rules named INT-*, saved on its own with the revision read; the token write-only and revealed under audit"
  )
  func singleCompanyKsef() async throws {
    try await withTestServer(deployment: Self.single) { server in
      let client = server.client()
      let ksef = Dms_Settings_V1_Ksef.Client(client)
      let empty = try await ksef.get()
      #expect(empty.company == "MAIN" && empty.revision == 0 && empty.nip.isEmpty && !empty.tokenSet)
      #expect(empty.environment == "Test" && empty.warnings.isEmpty)

      // Broken rules: each named, nothing saved.
      let bad = await rpcError {
        _ = try await Self.update(client, empty) {
          $0.settings.nip = "8567346216"
          $0.settings.certificate.thumbprint = "not hex"
          $0.token = secret(String(repeating: "t", count: 5000))
        }
      }
      #expect(bad?.code == .invalidArgument)
      #expect(
        rules(bad) == ["settings.nip:INT-1", "settings.certificate.thumbprint:INT-4a", "token:INT-2"], "\(rules(bad))")
      #expect(try await ksef.get().revision == 0)

      let saved = try await Self.update(client, empty) {
        $0.settings.nip = "PL 856-734-62-15"
        $0.token = secret("20251201-EC-0123|nip-8567346215|0a1b")
      }
      #expect(saved.nip == Self.nip && saved.tokenSet && saved.revision == 1 && saved.company == "MAIN")
      // INT-4a: token-only while token login ends on 31.12.2026.
      #expect(saved.warnings.count == 1 && saved.warnings[0].contains("31.12.2026"), "\(saved.warnings)")
      #expect(try await ksef.get() == saved)

      // A save on a stale revision: ABORTED, nothing changed.
      var stale = saved
      stale.revision = 0
      let aborted = await rpcError { _ = try await Self.update(client, stale) { $0.settings.nip = "5260250274" } }
      #expect(aborted?.code == .aborted)
      // A save that changes nothing keeps the revision.
      #expect(try await Self.update(client, saved).revision == 1)

      var reveal = Dms_Settings_V1_RevealKsefSecretRequest()
      reveal.field = .ksefSecretToken
      let noReason = await rpcError { _ = try await ksef.revealSecret(reveal) }
      #expect(noReason?.code == .invalidArgument && rules(noReason) == ["reason:"])
      reveal.reason = "ticket 7"
      #expect(try await ksef.revealSecret(reveal).value == "20251201-EC-0123|nip-8567346215|0a1b")
      reveal.field = .ksefSecretCertificateKey
      let none = await rpcError { _ = try await ksef.revealSecret(reveal) }
      #expect(none?.code == .notFound)
      var audit = Dms_Settings_V1_ListAuditRequest()
      audit.company = "MAIN"
      audit.action = "reveal"
      let revealed = try await Dms_Settings_V1_Audit.Client(client).list(audit).entries
      #expect(revealed.map(\.fields).sorted() == ["ksef_certificate_key", "ksef_token"], "\(revealed)")
      #expect(revealed.allSatisfy { $0.detail.contains("ticket 7") }, "\(revealed)")

      // Cleared: the token goes, the warning with it.
      let cleared = try await Self.update(client, saved) { $0.token.clear = true }
      #expect(!cleared.tokenSet && cleared.revision == 2 && cleared.warnings.isEmpty)
      await client.close()
    }
  }

  @Test(
    "INT-4a: the KSeF certificate with its private key: the thumbprint, subject and validity shown; the key must be its own; expired, not yet valid, a chain or no key refused; it silences the token-only warning; removed with its key"
  )
  func certificateFallback() async throws {
    let (pem, key) = try Self.certificate()
    let other = try Self.certificate("Someone else")
    try await withTestServer(deployment: Self.single) { server in
      let client = server.client()
      let ksef = Dms_Settings_V1_Ksef.Client(client)
      let base = try await Self.update(client, try await ksef.get()) {
        $0.settings.nip = Self.nip
        $0.token = secret("token|with|bars")
      }
      var withCertificate = base
      withCertificate.certificate.pem = pem

      // Refusals, each named: no key, another certificate's key, not a key.
      let noKey = await rpcError { _ = try await Self.update(client, withCertificate) }
      #expect(
        rules(noKey) == ["certificate_key:INT-4a"] && noKey?.violations.first?.description.contains("required") == true)
      let wrongKey = await rpcError {
        _ = try await Self.update(client, withCertificate) { $0.certificateKey = secret(other.key) }
      }
      #expect(rules(wrongKey) == ["certificate_key:INT-4a"])
      #expect(
        wrongKey?.violations.first?.description.contains("not the private key") == true,
        "\(String(describing: wrongKey))")
      let notAKey = await rpcError {
        _ = try await Self.update(client, withCertificate) { $0.certificateKey = secret("-----BEGIN PRIVATE KEY-----") }
      }
      #expect(rules(notAKey) == ["certificate_key:INT-4a"])
      // Not a certificate; a chain of two; expired; not yet valid.
      for (text, expected) in [
        ("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "one X.509 certificate"),
        (pem + other.pem, "2 certificates"),
        (
          try Self.certificate(from: Date(timeIntervalSinceNow: -864_000), until: Date(timeIntervalSinceNow: -86_400))
            .pem, "expired on"
        ),
        (try Self.certificate(from: Date(timeIntervalSinceNow: 86_400)).pem, "not valid before"),
      ] {
        var settings = base
        settings.certificate.pem = text
        let refused = await rpcError { _ = try await Self.update(client, settings) { $0.certificateKey = secret(key) } }
        #expect(refused?.code == .invalidArgument && rules(refused).first == "settings.certificate.pem:INT-4a")
        #expect(refused?.violations.first?.description.contains(expected) == true, "\(String(describing: refused))")
      }
      // Too long: said once, not parsed.
      var huge = base
      huge.certificate.pem = String(repeating: "A", count: 70_000)
      #expect(rules(await rpcError { _ = try await Self.update(client, huge) }) == ["settings.certificate.pem:"])
      // A key without a certificate.
      let keyAlone = await rpcError { _ = try await Self.update(client, base) { $0.certificateKey = secret(key) } }
      #expect(rules(keyAlone) == ["certificate_key:INT-4a"])
      #expect(try await ksef.get().revision == base.revision, "nothing saved")

      // Saved: what the certificate says of itself, its thumbprint as openssl computes it.
      let saved = try await Self.update(client, withCertificate) { $0.certificateKey = secret(key) }
      let thumbprint = try await Self.opensslThumbprint(pem)
      #expect(saved.certificate.thumbprint == thumbprint && thumbprint.count == 40)
      #expect(saved.certificate.privateKeySet && saved.certificate.pem == pem)
      #expect(
        saved.certificate.subject.contains("CN=ACME KSeF") && saved.certificate.issuer == saved.certificate.subject)
      #expect(
        saved.certificate.validUntil.hasPrefix("20") && saved.certificate.validFrom < saved.certificate.validUntil)
      #expect(saved.warnings.isEmpty, "the certificate is the fallback: \(saved.warnings)")

      // A thumbprint that is not the PEM's is refused; the PEM kept, its key kept.
      var mismatch = saved
      mismatch.certificate.thumbprint = String(repeating: "A", count: 40)
      #expect(
        rules(await rpcError { _ = try await Self.update(client, mismatch) }) == [
          "settings.certificate.thumbprint:INT-4a"
        ])
      #expect(try await Self.update(client, saved).revision == saved.revision, "unchanged with the key kept")

      // The key downloaded under audit.
      var reveal = Dms_Settings_V1_RevealKsefSecretRequest()
      reveal.field = .ksefSecretCertificateKey
      reveal.reason = "backup"
      #expect(try await ksef.revealSecret(reveal).value == key)

      // A new certificate whose key is not the one saved: the key is required again.
      var replaced = saved
      replaced.certificate.pem = other.pem
      replaced.certificate.thumbprint = ""
      #expect(rules(await rpcError { _ = try await Self.update(client, replaced) }) == ["certificate_key:INT-4a"])
      // Removing the certificate without its key is refused; removing it removes the key.
      var removed = saved
      removed.certificate = Dms_Settings_V1_KsefCertificate()
      let clearKeyOnly = await rpcError { _ = try await Self.update(client, saved) { $0.certificateKey.clear = true } }
      #expect(rules(clearKeyOnly) == ["certificate_key:INT-4a"])
      let gone = try await Self.update(client, removed)
      #expect(!gone.certificate.privateKeySet && gone.certificate.thumbprint.isEmpty)
      #expect(gone.warnings.count == 1 && gone.warnings[0].contains("31.12.2026"))
      #expect(await rpcError { _ = try await ksef.revealSecret(reveal) }?.code == .notFound)

      // A thumbprint alone (a certificate installed where the DMS runs): normalized.
      var byThumbprint = gone
      byThumbprint.certificate.thumbprint = "ab:cd " + String(repeating: "0", count: 36)
      let installed = try await Self.update(client, byThumbprint)
      #expect(installed.certificate.thumbprint == "ABCD" + String(repeating: "0", count: 36))
      #expect(installed.warnings.isEmpty && !installed.certificate.privateKeySet)
      await client.close()
    }
  }

  @Test(
    "INT-4a: a certificate about to expire, and one that has, is said in the warnings; one that expired after its save does not block the section's other saves"
  )
  func certificateExpiry() async throws {
    let soon = try Self.certificate(until: Date(timeIntervalSinceNow: 10 * 86_400))
    try await withTestServer(deployment: Self.single) { server in
      let client = server.client()
      let ksef = Dms_Settings_V1_Ksef.Client(client)
      let saved = try await Self.update(client, try await ksef.get()) {
        $0.settings.nip = Self.nip
        $0.settings.certificate.pem = soon.pem
        $0.certificateKey = secret(soon.key)
      }
      #expect(saved.warnings.count == 1 && saved.warnings[0].contains("expires on"), "\(saved.warnings)")
      // Valid when saved (with room for a loaded machine), expired soon after.
      let end = Date(timeIntervalSinceNow: 30)
      let brief = try Self.certificate(until: end)
      var replaced = saved
      replaced.certificate = Dms_Settings_V1_KsefCertificate()
      replaced.certificate.pem = brief.pem
      _ = try await Self.update(client, replaced) { $0.certificateKey = secret(brief.key) }
      try await Task.sleep(for: .seconds(max(0, end.timeIntervalSinceNow) + 1.5))
      let expired = try await ksef.get()
      #expect(expired.warnings.count == 1 && expired.warnings[0].contains("expired on"), "\(expired.warnings)")
      var renumbered = expired
      renumbered.nip = "5260250274"
      let kept = try await Self.update(client, renumbered)
      #expect(kept.nip == "5260250274" && kept.certificate.pem == brief.pem && kept.certificate.privateKeySet)
      await client.close()
    }
  }

  @Test(
    "INT-4a, INT-7: certificate and key files as administrators bring them (CRLF, a byte-order mark, openssl's attributes and text, other blocks) are taken, and only their own blocks kept; a key beside the certificate, an encrypted key or two keys are refused by name"
  )
  func filesAsBrought() async throws {
    let (pem, key) = try Self.certificate()
    let windows = { (text: String) in "\u{FEFF}" + text.replacingOccurrences(of: "\n", with: "\r\n") }
    // As `openssl pkcs12 -nodes` and `openssl x509 -text` write them.
    let bagged = "Bag Attributes\n    localKeyID: 01 02 03\nsubject=/C=PL/CN=ACME KSeF\n" + pem
    let parameters = "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n"
    try await withTestServer(deployment: Self.single) { server in
      let client = server.client()
      let ksef = Dms_Settings_V1_Ksef.Client(client)
      var base = try await ksef.get()
      base.nip = Self.nip

      // The key beside the certificate, in the certificate's field: refused, and not echoed.
      var together = base
      together.certificate.pem = bagged + "Bag Attributes\n    localKeyID: 01 02 03\n" + key
      let refused = await rpcError { _ = try await Self.update(client, together) { $0.certificateKey = secret(key) } }
      #expect(rules(refused) == ["settings.certificate.pem:INT-4a"], "\(rules(refused))")
      #expect(refused?.violations.first?.description.contains("holds a private key") == true)
      let keyBody = key.split(separator: "\n").dropFirst().first.map(String.init) ?? "?"
      #expect(refused.map { !"\($0)".contains(keyBody) } == true, "the key is not echoed")
      // An encrypted key, and two keys.
      var withCertificate = base
      withCertificate.certificate.pem = pem
      let encrypted = "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAECAwQF\n-----END ENCRYPTED PRIVATE KEY-----\n"
      for (text, words) in [(encrypted, "is encrypted"), (key + "\n" + key, "holds 2 private keys")] {
        let error = await rpcError {
          _ = try await Self.update(client, withCertificate) { $0.certificateKey = secret(text) }
        }
        #expect(rules(error) == ["certificate_key:INT-4a"])
        #expect(error?.violations.first?.description.contains(words) == true, "\(String(describing: error))")
      }

      // From Windows, with openssl's attributes and EC parameters: taken; stored and shown
      // as the blocks themselves.
      var brought = base
      brought.certificate.pem = windows(bagged)
      let saved = try await Self.update(client, brought) {
        $0.certificateKey = secret(windows(parameters + "Key Attributes: <No Attributes>\n" + key))
      }
      #expect(saved.certificate.pem == pem && saved.certificate.privateKeySet, "\(saved.certificate.pem)")
      #expect(saved.certificate.thumbprint == (try await Self.opensslThumbprint(pem)))
      var reveal = Dms_Settings_V1_RevealKsefSecretRequest()
      reveal.field = .ksefSecretCertificateKey
      reveal.reason = "backup"
      #expect(try await ksef.revealSecret(reveal).value == key)
      // The same file again is the same certificate: unchanged, the key kept.
      var again = saved
      again.certificate.pem = windows(bagged)
      #expect(try await Self.update(client, again).revision == saved.revision)

      // e-Delivery's key (INT-7) likewise.
      let edelivery = Dms_Settings_V1_EDelivery.Client(client)
      var request = Dms_Settings_V1_UpdateEDeliverySettingsRequest()
      request.settings = try await edelivery.get()
      request.privateKey = secret(windows(bagged + parameters + key))
      let delivered = try await edelivery.update(request)
      #expect(delivered.privateKeySet && delivered.keyFingerprint.hasPrefix("SHA256:"))
      var download = Dms_Settings_V1_DownloadEDeliveryPrivateKeyRequest()
      download.reason = "move to the new server"
      #expect(try await edelivery.downloadPrivateKey(download).value == key)
      await client.close()
    }
  }

  @Test(
    "INT-5 … INT-7: single-company mode's e-Delivery section: rules named INT-*, the key's fingerprint shown, downloaded under audit, removed"
  )
  func singleCompanyEDelivery() async throws {
    let pem = try makePrivateKeyPEM("ec")
    try await withTestServer(deployment: Self.single) { server in
      let client = server.client()
      let edelivery = Dms_Settings_V1_EDelivery.Client(client)
      let empty = try await edelivery.get()
      #expect(
        empty.company == "MAIN" && empty.revision == 0 && !empty.privateKeySet && empty.environment == "production")
      var request = Dms_Settings_V1_UpdateEDeliverySettingsRequest()
      request.settings = empty
      request.settings.address = "AE:PL-1"
      request.settings.systemName = String(repeating: "s", count: 300)
      request.privateKey = secret("-----BEGIN RSA PRIVATE KEY-----\nxx\n")
      let bad = await rpcError { _ = try await edelivery.update(request) }
      #expect(rules(bad) == ["settings.address:INT-5", "settings.system_name:", "private_key:INT-7"], "\(rules(bad))")
      request.settings.address = "AE:PL-12345-67890-ABCDE-12"
      request.settings.systemName = "DMS"
      request.privateKey = secret(pem)
      let saved = try await edelivery.update(request)
      #expect(saved.revision == 1 && saved.privateKeySet && saved.keyFingerprint.hasPrefix("SHA256:"))
      #expect(saved.address == "AE:PL-12345-67890-ABCDE-12" && saved.systemName == "DMS")
      var download = Dms_Settings_V1_DownloadEDeliveryPrivateKeyRequest()
      download.reason = "move to the new server"
      #expect(try await edelivery.downloadPrivateKey(download).value == pem)
      // The KSeF section is in the same definition: its save does not touch e-Delivery's.
      let ksef = try await Self.update(client, try await Dms_Settings_V1_Ksef.Client(client).get()) {
        $0.settings.nip = Self.nip
      }
      #expect(ksef.revision == 2)
      let after = try await edelivery.get()
      #expect(after.revision == 2 && after.privateKeySet && after.address == saved.address)
      var clear = Dms_Settings_V1_UpdateEDeliverySettingsRequest()
      clear.settings = after
      clear.privateKey.clear = true
      let cleared = try await edelivery.update(clear)
      #expect(!cleared.privateKeySet && cleared.keyFingerprint.isEmpty)
      #expect(await rpcError { _ = try await edelivery.downloadPrivateKey(download) }?.code == .notFound)
      await client.close()
    }
  }

  @Test(
    "ERP-13 … ERP-17: in multi-company mode the sections are the company's fields (the same revision as Companies'); the company is required; the certificate through Companies too"
  )
  func multiCompany() async throws {
    let (pem, key) = try Self.certificate()
    try await withTestServer(deployment: DeploymentConfiguration(mode: .multiCompany, ksefWorkMode: .production)) {
      server in
      let client = server.client()
      let companies = Dms_Settings_V1_Companies.Client(client)
      var create = Dms_Settings_V1_CreateCompanyRequest()
      create.company = companyMessage("ACME")
      _ = try await companies.create(create)
      let ksef = Dms_Settings_V1_Ksef.Client(client)
      let missing = await rpcError { _ = try await ksef.get() }
      #expect(missing?.code == .invalidArgument && missing?.message.contains("company") == true)
      let unknown = await rpcError { _ = try await ksef.get(options: MailTests.acting(for: "NOPE")) }
      #expect(unknown?.code == .notFound)
      let acme = MailTests.acting(for: "ACME")
      let read = try await ksef.get(options: acme)
      #expect(read.company == "ACME" && read.revision == 1)
      let bad = await rpcError { _ = try await Self.update(client, read, options: acme) { $0.settings.nip = "1" } }
      #expect(rules(bad) == ["settings.nip:ERP-13"], "per company the rule is ERP-13")
      let saved = try await Self.update(client, read, options: acme) {
        $0.settings.nip = Self.nip
        $0.settings.certificate.pem = pem
        $0.certificateKey = secret(key)
      }
      #expect(saved.revision == 2 && saved.warnings.count == 1 && saved.warnings[0].contains("Production"))
      var get = Dms_Settings_V1_GetCompanyRequest()
      get.shortName = "ACME"
      let company = try await companies.get(get)
      #expect(company.revision == 2 && company.nip == Self.nip && company.name == "Company")
      #expect(company.ksefCertificate == saved.certificate && company.ksefWarnings == saved.warnings)
      var reveal = Dms_Settings_V1_RevealCompanySecretRequest()
      reveal.shortName = "ACME"
      reveal.field = .ksefCertificatePrivateKey
      reveal.reason = "test"
      #expect(try await companies.revealSecret(reveal).value == key)
      // Companies' update keeps the certificate as read; one without it removes the key.
      var update = Dms_Settings_V1_UpdateCompanyRequest()
      update.company = company
      update.company.name = "ACME S.A."
      let renamed = try await companies.update(update)
      #expect(renamed.ksefCertificate.privateKeySet && renamed.revision == 3)
      update.company = renamed
      update.company.ksefCertificate.pem = ""
      update.company.ksefCertificate.thumbprint = ""
      let without = try await companies.update(update)
      #expect(!without.ksefCertificate.privateKeySet && without.ksefCertificate.subject.isEmpty)
      // The e-Delivery section on the same definition.
      var edelivery = Dms_Settings_V1_UpdateEDeliverySettingsRequest()
      edelivery.settings = try await Dms_Settings_V1_EDelivery.Client(client).get(options: acme)
      #expect(edelivery.settings.revision == 4)
      edelivery.settings.address = "AE:PL-1"
      let badAddress = await rpcError {
        _ = try await Dms_Settings_V1_EDelivery.Client(client).update(edelivery, options: acme)
      }
      #expect(rules(badAddress) == ["settings.address:ERP-15"])
      await client.close()
    }
  }

  @Test("CFG-9: the single company's sections become the company's fields in multi-company mode, and come back")
  func modeSwitch() async throws {
    let folder = TestServer.temporaryDirectory()
    let (pem, key) = try Self.certificate()
    var server = try await TestServer.start(deployment: Self.single, dataDirectory: folder)
    var client = server.client()
    _ = try await Self.update(client, try await Dms_Settings_V1_Ksef.Client(client).get()) {
      $0.settings.nip = Self.nip
      $0.settings.certificate.pem = pem
      $0.certificateKey = secret(key)
      $0.token = secret("a|token")
    }
    var edelivery = Dms_Settings_V1_UpdateEDeliverySettingsRequest()
    edelivery.settings = try await Dms_Settings_V1_EDelivery.Client(client).get()
    edelivery.settings.address = "AE:PL-12345-67890-ABCDE-12"
    _ = try await Dms_Settings_V1_EDelivery.Client(client).update(edelivery)
    await client.close()
    try await server.stop()

    server = try await TestServer.start(deployment: DeploymentConfiguration(mode: .multiCompany), dataDirectory: folder)
    client = server.client()
    var get = Dms_Settings_V1_GetCompanyRequest()
    get.shortName = "MAIN"
    let company = try await Dms_Settings_V1_Companies.Client(client).get(get)
    #expect(company.nip == Self.nip && company.ksefTokenSet && company.ksefCertificate.privateKeySet)
    #expect(company.edeliveryAddress == "AE:PL-12345-67890-ABCDE-12")
    await client.close()
    try await server.stop()

    server = try await TestServer.start(deployment: Self.single, dataDirectory: folder)
    client = server.client()
    let back = try await Dms_Settings_V1_Ksef.Client(client).get()
    #expect(back.nip == Self.nip && back.tokenSet && back.certificate.pem == pem && back.certificate.privateKeySet)
    await client.close()
    try await server.stop()
  }
}
