import DMSClient
import DMSDomain
import DMSMessages
import DMSRPC
import DMSServices
import DMSStubs
import Foundation
import Testing

/// e-Delivery's system login tried for real (INT-5 … INT-7a, ERP-15 … ERP-17, CFG-8) over
/// the wire, against a stand-in token endpoint (`scripts/lib/edelivery_server.py`, HTTPS on
/// a certificate of the test's) that verifies the client assertion with Python's own JWT
/// library: the signature with the key's public half, the claims, a fresh jti.
@Suite(
  "e-Delivery test connection",
  .enabled(
    if: FileManager.default.fileExists(atPath: "/usr/lib/python3/dist-packages/jwt"), "python3-jwt is not installed"))
struct EDeliveryTests {
  static let address = "AE:PL-12345-67890-ABCDE-12"
  static let system = "DMS"
  static let acme = MailTests.acting(for: "ACME")

  /// A private key made with openssl (`rsa` 2048 bits, or `ec` P-256) and its public half.
  static func keyPair(_ kind: String) async throws -> (privateKey: String, publicKeyFile: String) {
    try await offPool { try makeKeyPair(kind) }
  }

  private static func makeKeyPair(_ kind: String) throws -> (privateKey: String, publicKeyFile: String) {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("dms-edo-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    let key = folder.appendingPathComponent("key.pem").path
    let pub = folder.appendingPathComponent("pub.pem").path
    let options =
      kind == "rsa"
      ? ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]
      : ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]
    _ = try SMTPTestServer.run("/usr/bin/openssl", ["genpkey"] + options + ["-out", key])
    _ = try SMTPTestServer.run("/usr/bin/openssl", ["pkey", "-in", key, "-pubout", "-out", pub])
    return (try String(contentsOfFile: key, encoding: .utf8), pub)
  }

  static func standIn(publicKeyFile: String) async throws -> HTTPSStandIn {
    try await HTTPSStandIn.start(
      "edelivery_server.py", ["--public-key", publicKeyFile, "--address", address, "--system", system])
  }

  /// The test environment (CFG-8) at the stand-in, its certificate trusted.
  static func integrations(_ endpoint: HTTPSStandIn) -> IntegrationsConfiguration {
    var integrations = IntegrationsConfiguration(eDeliveryTrustedCertificates: endpoint.certificatePEM)
    integrations.eDeliveryTokenURLs[.test] = endpoint.origin + "/auth/realms/EDOR/protocol/openid-connect/token"
    return integrations
  }

  static let deployment = DeploymentConfiguration(mode: .multiCompany, eDeliveryEnvironment: .test)

  static func createACME(_ client: RPCClient, privateKey: String?) async throws {
    var create = Dms_Settings_V1_CreateCompanyRequest()
    create.company = companyMessage("ACME")
    create.company.edeliveryAddress = address
    create.company.edeliverySystemName = system
    if let privateKey { create.secrets.edeliveryPrivateKey = secret(privateKey) }
    _ = try await Dms_Settings_V1_Companies.Client(client).create(create)
  }

  static func test(_ client: RPCClient, _ request: Dms_Settings_V1_TestEDeliveryConnectionRequest = .init())
    async throws -> Dms_Settings_V1_EDeliveryConnectionTest
  {
    try await Dms_Settings_V1_EDelivery.Client(client).testConnection(request, options: acme)
  }

  @Test(
    "INT-5, INT-6, INT-7a: the saved key signs the client assertion for <address>.SYSTEM.<system name> (RS256 for RSA, ES256 for EC), which verifies, and the token endpoint takes it; a second test is a new jti",
    arguments: ["rsa", "ec"])
  func signsIn(kind: String) async throws {
    let (privateKey, publicKeyFile) = try await Self.keyPair(kind)
    let endpoint = try await Self.standIn(publicKeyFile: publicKeyFile)
    try await withTestServer(deployment: Self.deployment, integrations: Self.integrations(endpoint)) { server in
      let client = server.client()
      try await Self.createACME(client, privateKey: privateKey)
      let result = try await Self.test(client)
      #expect(result.ok, "\(result) \(endpoint.lines("checked"))")
      #expect(result.algorithm == (kind == "rsa" ? "RS256" : "ES256") && result.step == "token")
      #expect(result.clientID == "\(Self.address).SYSTEM.\(Self.system)" && result.environment == "test")
      #expect(result.tokenType == "Bearer" && result.expiresInSeconds == 300 && result.httpStatus == 0)
      let again = try await Self.test(client)
      #expect(again.ok, "a fresh jti each time: \(endpoint.lines("checked"))")
      #expect(endpoint.lines("checked") == Array(repeating: "ok \(result.algorithm)", count: 2))
      await client.close()
    }
  }

  @Test(
    "INT-7a: the endpoint's refusal reaches the administrator (its OAuth error and description); a key the endpoint does not know fails its signature check"
  )
  func refused() async throws {
    let (privateKey, publicKeyFile) = try await Self.keyPair("ec")
    let (otherKey, _) = try await Self.keyPair("ec")
    let endpoint = try await Self.standIn(publicKeyFile: publicKeyFile)
    try await withTestServer(deployment: Self.deployment, integrations: Self.integrations(endpoint)) { server in
      let client = server.client()
      try await Self.createACME(client, privateKey: privateKey)
      try endpoint.write("refuse", "unauthorized_client")
      let refused = try await Self.test(client)
      #expect(!refused.ok && refused.step == "token" && refused.httpStatus == 401)
      #expect(refused.error == "unauthorized_client" && refused.description_p.contains("not registered"), "\(refused)")
      try endpoint.write("refuse", nil)
      // Another key, given in the request (tried before saving): the signature fails there.
      var request = Dms_Settings_V1_TestEDeliveryConnectionRequest()
      request.privateKey = otherKey
      let unknown = try await Self.test(client, request)
      #expect(
        !unknown.ok && unknown.error == "invalid_client" && unknown.description_p.contains("Signature"), "\(unknown)")
      // The endpoint not trusted: a TLS failure, named.
      await client.close()
    }
    var untrusted = Self.integrations(endpoint)
    untrusted.eDeliveryTrustedCertificates = ""
    try await withTestServer(deployment: Self.deployment, integrations: untrusted) { server in
      let client = server.client()
      try await Self.createACME(client, privateKey: privateKey)
      let tls = try await Self.test(client)
      #expect(!tls.ok && tls.error == "tls" && tls.httpStatus == 0, "\(tls)")
      await client.close()
    }
  }

  @Test("ERP-15 … ERP-17: a missing address, system name or key is named first; a malformed one in the request too")
  func preconditions() async throws {
    try await withTestServer(deployment: Self.deployment) { server in
      let client = server.client()
      try await Self.createACME(client, privateKey: nil)
      let noKey = await rpcError { _ = try await Self.test(client) }
      #expect(noKey?.code == .failedPrecondition && noKey?.message.contains("ERP-17") == true)
      var request = Dms_Settings_V1_TestEDeliveryConnectionRequest()
      request.address = "AE:PL-1234"
      request.privateKey = "not a key"
      let bad = await rpcError { _ = try await Self.test(client, request) }
      #expect(bad?.code == .invalidArgument && rules(bad) == ["address:INT-5", "private_key:INT-7"])
      await client.close()
    }
  }
}
