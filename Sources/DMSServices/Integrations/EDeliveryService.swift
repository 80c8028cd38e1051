import DMSDomain
import DMSHTTP
import DMSIntegrations
import DMSMessages
import DMSRPC
import DMSStorage
import DMSStubs
import Foundation
import Logging

/// `dms.settings.v1.EDelivery`: e-Delivery's system login tried for real (INT-5 …
/// INT-7a, ERP-15 … ERP-17, CFG-8), for the company the call names (multi-company mode)
/// or the single company, with the saved values or the request's; and its section
/// (`EDeliveryService+Section`).
public struct EDeliveryService: Dms_Settings_V1_EDelivery.ServiceProtocol {
  let store: any SettingsStore
  let deployment: DeploymentConfiguration
  private let configuration: IntegrationsConfiguration
  private let threads: BlockingThreads
  let logger: Logger

  public init(
    store: any SettingsStore, deployment: DeploymentConfiguration, configuration: IntegrationsConfiguration,
    logger: Logger
  ) {
    self.store = store
    self.deployment = deployment
    self.configuration = configuration
    self.threads = BlockingThreads(count: 1)
    self.logger = logger
  }

  public func testConnection(
    request: Dms_Settings_V1_TestEDeliveryConnectionRequest, context: ServerContext
  ) async throws -> Dms_Settings_V1_EDeliveryConnectionTest {
    var address = request.address.trimmingCharacters(in: .whitespaces)
    var systemName = request.systemName.trimmingCharacters(in: .whitespaces)
    var key = request.privateKey
    var v = Validator()
    if !address.isEmpty {
      v.require(
        EDeliveryAddress.isValid(address), "address", "INT-5", "must have the form AE:PL-NNNNN-NNNNN-XXXXX-NN")
    }
    v.require(systemName.count <= 256, "system_name", "INT-6", "must be at most 256 characters")
    if !key.isEmpty {
      v.require(
        key.utf8.count <= 16_384 && PrivateKeyInspector.inspect(pem: key) != nil, "private_key", "INT-7",
        "must be an RSA or EC private key in PEM")
    }
    try v.check()
    var company = deployment.singleCompanyCode
    if let stored = try await integrationCompany(context, store: store, deployment: deployment, area: "e-Delivery") {
      company = stored.code
      let saved = try await store.read(Company.self, of: stored)?.value
      if address.isEmpty { address = saved?.eDeliveryAddress ?? "" }
      if systemName.isEmpty { systemName = saved?.eDeliverySystemName ?? "" }
      if key.isEmpty {
        key =
          try await store.secretForUse(Company.self, field: Company.Secret.eDeliveryPrivateKey.rawValue, of: stored)
          ?? ""
      }
    }
    for (value, what) in [
      (address, "the mailbox address (ERP-15, INT-5)"), (systemName, "the system name (ERP-16, INT-6)"),
      (key, "the private key (ERP-17, INT-7)"),
    ] where value.isEmpty {
      throw RPCError(code: .failedPrecondition, message: "e-Delivery's system login needs \(what): save it first")
    }
    let environment = deployment.eDeliveryEnvironment
    let tokenURL =
      configuration.eDeliveryTokenURLs[environment] ?? IntegrationsConfiguration.eDeliveryDefaultTokenURLs[environment]!
    var response = Dms_Settings_V1_EDeliveryConnectionTest()
    response.environment = environment.rawValue
    response.tokenURL = tokenURL
    let started = ContinuousClock.now

    // The self-test: the assertion, verified with the key's public half.
    let assertion: EDeliveryClientAssertion
    do throws(EDeliveryClientAssertion.UnusableKey) {
      assertion = try EDeliveryClientAssertion.make(
        address: address, systemName: systemName, audience: EDeliverySystemLogin.realm(ofTokenURL: tokenURL),
        privateKeyPEM: key)
    } catch {
      throw RPCError(
        code: .failedPrecondition,
        message: "the saved private key (ERP-17) is not an RSA or EC private key in PEM: replace it")
    }
    response.algorithm = assertion.algorithm
    response.clientID = assertion.clientID
    response.step = "self_test"
    guard assertion.verifies(privateKeyPEM: key) else {
      response.description_p = "the client assertion does not verify with the private key's public half"
      return response
    }

    // The login, as the DMS will make it.
    response.step = "token"
    let wait = context.seconds(atMost: configuration.eDeliveryTimeout, reserve: 0.5, floor: 0.5)
    let trusted = configuration.eDeliveryTrustedCertificates
    let mailbox = address
    let login = await threads.run { () -> Result<OAuthTokenEndpoint.Tokens, OAuthTokenEndpoint.Failure> in
      do throws(OAuthTokenEndpoint.Failure) {
        return .success(
          try EDeliverySystemLogin.signIn(
            tokenURL: tokenURL, assertion: assertion, address: mailbox, trustedCertificates: trusted,
            timeout: wait))
      } catch {
        return .failure(error)
      }
    }
    switch login {
    case .success(let tokens):
      response.ok = true
      response.tokenType = tokens.tokenType
      response.expiresInSeconds = Int64(tokens.expiresIn)
      response.description_p = "signed in to e-Delivery (\(environment.rawValue)) as \(assertion.clientID)"
    case .failure(let failure):
      response.httpStatus = Int32(failure.status)
      response.error = failure.error
      response.description_p = failure.message
    }
    response.elapsedMs = (ContinuousClock.now - started).milliseconds
    logger.notice(
      "edelivery: test connection \(response.ok ? "signed in" : "failed at \(response.step)")",
      metadata: [
        "company": "\(company)", "environment": "\(environment.rawValue)", "error": "\(response.error)",
        "operator": "\(context.auditActor.login)", MetadataKey.requestID: "\(context.requestID)",
      ])
    return response
  }
}
