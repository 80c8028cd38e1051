import DMSClient
import DMSDomain
import DMSMessages
import DMSRPC
import DMSServices
import DMSStubs
import Foundation
import Testing

/// KSeF's token sign-in tried for real (INT-1 … INT-4b, ERP-13, ERP-14, CFG-2) over the
/// wire, against a stand-in of KSeF 2.0's endpoints written from INT-4b
/// (`scripts/lib/ksef_server.py`, HTTPS on a certificate of the test's): it decrypts the
/// token with its own key and checks it, answers 202, then 100, then 200, and refuses a
/// second redeem.
@Suite(
  "KSeF test connection",
  .enabled(
    if: FileManager.default.fileExists(atPath: "/usr/lib/python3/dist-packages/cryptography"),
    "python3-cryptography is not installed"))
struct KsefTests {
  static let nip = "8567346215"
  /// KSeF tokens hold `|`.
  static let token = "20251201-EC-0123456789-ABCDEF0123|nip-8567346215|0a1b2c3d4e5f"
  static let acme = MailTests.acting(for: "ACME")

  static func standIn() async throws -> HTTPSStandIn {
    try await HTTPSStandIn.start("ksef_server.py", ["--nip", nip, "--token", token])
  }

  /// The test environment (CFG-2) at the stand-in, its certificate trusted.
  static func integrations(_ ksef: HTTPSStandIn, maxWait: Double = 10) -> IntegrationsConfiguration {
    var integrations = IntegrationsConfiguration(ksefTrustedCertificates: ksef.certificatePEM, ksefMaxWait: maxWait)
    integrations.ksefBaseURLs[.test] = ksef.origin + "/v2"
    return integrations
  }

  static let deployment = DeploymentConfiguration(mode: .multiCompany, ksefWorkMode: .test)

  /// ACME with a NIP and the token (or none).
  static func createACME(_ client: RPCClient, nip: String = nip, token: String? = token) async throws {
    var create = Dms_Settings_V1_CreateCompanyRequest()
    create.company = companyMessage("ACME")
    create.company.nip = nip
    if let token { create.secrets.ksefToken = secret(token) }
    _ = try await Dms_Settings_V1_Companies.Client(client).create(create)
  }

  static func test(_ client: RPCClient, nip: String = "", token: String = "") async throws
    -> Dms_Settings_V1_KsefConnectionTest
  {
    var request = Dms_Settings_V1_TestKsefConnectionRequest()
    request.nip = nip
    request.token = token
    return try await Dms_Settings_V1_Ksef.Client(client).testConnection(request, options: acme)
  }

  @Test(
    "INT-2, INT-4, INT-4b: the saved NIP and token sign in, in the environment of CFG-2, through the whole flow (challenge, a valid KsefTokenEncryption key, the encrypted token|timestampMs, 202, 100 then 200, one redeem); the tokens are not kept"
  )
  func signsIn() async throws {
    let ksef = try await Self.standIn()
    try await withTestServer(deployment: Self.deployment, integrations: Self.integrations(ksef)) { server in
      let client = server.client()
      try await Self.createACME(client)
      let result = try await Self.test(client)
      #expect(result.ok, "\(result)")
      #expect(result.environment == "Test" && result.baseURL == ksef.origin + "/v2" && result.step == "redeem")
      #expect(result.referenceNumber.contains("-AU-") && !result.accessTokenValidUntil.isEmpty)
      #expect(!result.refreshTokenValidUntil.isEmpty && result.code.isEmpty)
      #expect(ksef.lines("checked") == ["valid"], "the stand-in decrypted the token and its challenge's time")
      // INT-4a: token-only, with token login ending on 31.12.2026 (or ended), said here and
      // with the company's settings.
      #expect(result.warnings.count == 1 && result.warnings[0].contains("31.12.2026"), "\(result.warnings)")
      var get = Dms_Settings_V1_GetCompanyRequest()
      get.shortName = "ACME"
      let company = try await Dms_Settings_V1_Companies.Client(client).get(get)
      #expect(company.ksefWarnings == result.warnings)
      let requests = ksef.lines("requests")
      #expect(
        requests.map {
          $0.replacingOccurrences(
            of: #"/v2/auth/\d{8}-AU-[0-9A-F]+"#, with: "/v2/auth/REF", options: .regularExpression)
        }
          == [
            "POST /v2/auth/challenge", "GET /v2/security/public-key-certificates", "POST /v2/auth/ksef-token",
            "GET /v2/auth/REF", "GET /v2/auth/REF", "POST /v2/auth/token/redeem",
          ])
      // The request's NIP and token instead of the saved ones (tried before saving).
      let typed = try await Self.test(client, nip: "PL 856-734-62-15", token: Self.token)
      #expect(typed.ok, "\(typed)")
      await client.close()
    }
  }

  @Test("INT-1, INT-2, INT-4b: in single-company mode the test signs in with the section's saved NIP and token")
  func singleCompany() async throws {
    let ksef = try await Self.standIn()
    let single = DeploymentConfiguration(mode: .singleCompany, ksefWorkMode: .test)
    try await withTestServer(deployment: single, integrations: Self.integrations(ksef)) { server in
      let client = server.client()
      let service = Dms_Settings_V1_Ksef.Client(client)
      let nothing = await rpcError { _ = try await service.testConnection(Dms_Settings_V1_TestKsefConnectionRequest()) }
      #expect(nothing?.code == .failedPrecondition && nothing?.message.contains("NIP") == true)
      var update = Dms_Settings_V1_UpdateKsefSettingsRequest()
      update.settings = try await service.get()
      update.settings.nip = Self.nip
      update.token = secret(Self.token)
      _ = try await service.update(update)
      let result = try await service.testConnection(Dms_Settings_V1_TestKsefConnectionRequest())
      #expect(result.ok && result.environment == "Test", "\(result)")
      #expect(ksef.lines("checked") == ["valid"])
      await client.close()
    }
  }

  @Test(
    "INT-4b: a wrong token reaches the administrator as KSeF said it (450, Nieprawidłowy token); a NIP that is not the token's too"
  )
  func wrongToken() async throws {
    let ksef = try await Self.standIn()
    try await withTestServer(deployment: Self.deployment, integrations: Self.integrations(ksef)) { server in
      let client = server.client()
      try await Self.createACME(client)
      let wrong = try await Self.test(client, token: Self.token + "x")
      #expect(!wrong.ok && wrong.step == "status" && wrong.code == "450" && wrong.httpStatus == 200)
      #expect(wrong.details == ["Nieprawidłowy token"] && wrong.description_p.contains("błędnego tokenu"), "\(wrong)")
      let otherNIP = try await Self.test(client, nip: "5260250274")
      #expect(!otherNIP.ok && otherNIP.code == "450")
      #expect(ksef.lines("checked") == ["invalid", "invalid"])
      #expect(!ksef.lines("requests").contains("POST /v2/auth/token/redeem"), "nothing redeemed")
      await client.close()
    }
  }

  @Test(
    "INT-4b: each documented refusal reaches the administrator with its code and description: an exception list (400), problem+json (401), 429 with Retry-After, a bare 500",
    arguments: [
      ("challenge 429", "challenge", 429, "429", "Retry-After: 30"),
      ("ksef-token 400", "ksef_token", 400, "21405", "Błąd walidacji danych wejściowych."),
      ("certificates 401", "public_key", 401, "401", "Unauthorized"),
      ("redeem 500", "redeem", 500, "500", "HTTP 500"),
    ])
  func refusals(fault: String, step: String, status: Int, code: String, text: String) async throws {
    let ksef = try await Self.standIn()
    try ksef.write("faults", fault + "\n")
    try await withTestServer(deployment: Self.deployment, integrations: Self.integrations(ksef)) { server in
      let client = server.client()
      try await Self.createACME(client)
      let result = try await Self.test(client)
      #expect(!result.ok && result.step == step && result.httpStatus == status && result.code == code, "\(result)")
      #expect(result.description_p.contains(text), "\(result)")
      if code == "21405" { #expect(result.details == ["contextIdentifier.value: nieprawidłowy NIP"]) }
      await client.close()
    }
  }

  @Test(
    "INT-4b: a sign-in that stays in progress ends within the wait, saying so; a server that does not answer is a timeout"
  )
  func bounded() async throws {
    let ksef = try await Self.standIn()
    try ksef.write("faults", "status stall\n")
    try await withTestServer(deployment: Self.deployment, integrations: Self.integrations(ksef, maxWait: 2)) {
      server in
      let client = server.client()
      try await Self.createACME(client)
      let started = ContinuousClock.now
      let stalled = try await Self.test(client)
      #expect(!stalled.ok && stalled.step == "status" && stalled.code == "100", "\(stalled)")
      // Bounded (polling for ever otherwise): the wait, and what a loaded machine adds.
      #expect(ContinuousClock.now - started < .seconds(20))
      try ksef.write("faults", "challenge sleep 5\n")
      let slow = try await Self.test(client)
      #expect(!slow.ok && slow.step == "challenge" && slow.code == "timeout" && slow.httpStatus == 0, "\(slow)")
      await client.close()
    }
  }

  @Test(
    "transport failures are named: an untrusted certificate (tls), nothing listening (connect), a host that does not resolve"
  )
  func transport() async throws {
    let ksef = try await Self.standIn()
    var untrusted = Self.integrations(ksef)
    untrusted.ksefTrustedCertificates = ""
    try await withTestServer(deployment: Self.deployment, integrations: untrusted) { server in
      let client = server.client()
      try await Self.createACME(client)
      let tls = try await Self.test(client)
      #expect(!tls.ok && tls.step == "challenge" && tls.code == "tls" && tls.httpStatus == 0, "\(tls)")
      await client.close()
    }
    var closed = Self.integrations(ksef)
    closed.ksefBaseURLs[.test] = "https://127.0.0.1:\(try freePort())/v2"
    try await withTestServer(deployment: Self.deployment, integrations: closed) { server in
      let client = server.client()
      try await Self.createACME(client)
      let refused = try await Self.test(client)
      #expect(!refused.ok && refused.code == "connect", "\(refused)")
      await client.close()
    }
    // A resolver that gets no answer takes seconds here: room for it to say so.
    var nowhere = Self.integrations(ksef, maxWait: 25)
    nowhere.ksefBaseURLs[.test] = "https://ksef.invalid/v2"
    try await withTestServer(deployment: Self.deployment, integrations: nowhere) { server in
      let client = server.client()
      try await Self.createACME(client)
      let unresolved = try await Self.test(client)
      #expect(!unresolved.ok && unresolved.code == "resolve" && unresolved.description_p.contains("ksef.invalid"))
      await client.close()
    }
  }

  @Test(
    "INT-3: without a NIP the test asks for it; without a token, for one; a malformed NIP is named; nothing is sent")
  func preconditions() async throws {
    let ksef = try await Self.standIn()
    try await withTestServer(deployment: Self.deployment, integrations: Self.integrations(ksef)) { server in
      let client = server.client()
      try await Self.createACME(client, nip: "", token: nil)
      let noNIP = await rpcError { _ = try await Self.test(client) }
      #expect(noNIP?.code == .failedPrecondition && noNIP?.message.contains("NIP") == true)
      let noToken = await rpcError { _ = try await Self.test(client, nip: Self.nip) }
      #expect(noToken?.code == .failedPrecondition && noToken?.message.contains("ERP-14") == true)
      let bad = await rpcError { _ = try await Self.test(client, nip: "8567346216") }
      #expect(bad?.code == .invalidArgument && rules(bad) == ["nip:INT-1"])
      #expect(ksef.lines("requests").isEmpty, "nothing sent")
      await client.close()
    }
  }
}
