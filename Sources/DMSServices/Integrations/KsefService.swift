import DMSDomain
import DMSIntegrations
import DMSMessages
import DMSRPC
import DMSStorage
import DMSStubs
import Foundation
import Logging

/// `dms.settings.v1.Ksef`: KSeF's token sign-in tried for real (INT-1 … INT-4b, ERP-13,
/// ERP-14, CFG-2), for the company the call names (multi-company mode) or the single
/// company, with the saved NIP and token or the request's; and its section
/// (`KsefService+Section`).
public struct KsefService: Dms_Settings_V1_Ksef.ServiceProtocol {
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
    self.threads = BlockingThreads(count: 2)
    self.logger = logger
  }

  public func testConnection(
    request: Dms_Settings_V1_TestKsefConnectionRequest, context: ServerContext
  ) async throws -> Dms_Settings_V1_KsefConnectionTest {
    var nip = request.nip.trimmingCharacters(in: .whitespaces)
    var token = request.token
    var v = Validator()
    if !nip.isEmpty {
      v.require(NIP.isValid(nip), "nip", "INT-1", "is not a valid NIP: 10 digits whose checksum matches")
    }
    v.require(token.count <= 4096, "token", "INT-2", "must be at most 4,096 characters")
    try v.check()
    var company = deployment.singleCompanyCode
    var saved: Stored<Company>?
    if let key = try await integrationCompany(context, store: store, deployment: deployment, area: "KSeF") {
      company = key.code
      saved = try await store.read(Company.self, of: key)
      if nip.isEmpty { nip = saved?.value.nip ?? "" }
      if token.isEmpty {
        token =
          try await store.secretForUse(Company.self, field: Company.Secret.ksefToken.rawValue, of: key) ?? ""
      }
    }
    // INT-3: the NIP first.
    guard !nip.isEmpty else {
      throw RPCError(
        code: .failedPrecondition,
        message: "enter the company's NIP first (ERP-13, INT-1, INT-3): KSeF signs in for a NIP")
    }
    guard !token.isEmpty else {
      throw RPCError(
        code: .failedPrecondition, message: "there is no KSeF token to sign in with: save one (ERP-14, INT-2)")
    }
    let mode = deployment.ksefWorkMode
    let baseURL = configuration.ksefBaseURLs[mode] ?? IntegrationsConfiguration.ksefDefaultURLs[mode]!
    let maxWait = context.seconds(atMost: configuration.ksefMaxWait, reserve: 1, floor: 1)
    let authentication = KSeFTokenAuthentication(
      endpoint: KSeFEndpoint(
        baseURL: baseURL, trustedCertificates: configuration.ksefTrustedCertificates,
        requestTimeout: min(configuration.ksefRequestTimeout, maxWait), maxWait: maxWait))
    let digits = NIP.digits(of: nip) ?? nip
    let started = ContinuousClock.now
    let secret = token
    let outcome = await threads.run { () -> Result<KSeFSignIn, KSeFFailure> in
      do throws(KSeFFailure) {
        return .success(try authentication.signIn(nip: digits, token: secret))
      } catch {
        return .failure(error)
      }
    }
    var response = Dms_Settings_V1_KsefConnectionTest()
    // The settings tried: a token (saved or given), the NIP, the saved certificate.
    var tried = saved?.value ?? Company(code: company)
    tried.nip = digits
    response.warnings = tried.ksefWarnings(
      secretsSet: (saved?.secretsSet ?? []).union([Company.Secret.ksefToken.rawValue]),
      file: tried.ksefCertificate.file, mode: mode, now: Date())
    response.environment = mode.rawValue
    response.baseURL = baseURL
    response.elapsedMs = (ContinuousClock.now - started).milliseconds
    switch outcome {
    case .success(let signIn):
      response.ok = true
      response.step = KSeFStep.redeem.rawValue
      response.referenceNumber = signIn.referenceNumber
      response.accessTokenValidUntil = signIn.accessTokenValidUntil
      response.refreshTokenValidUntil = signIn.refreshTokenValidUntil
      response.description_p = "signed in to KSeF (\(mode.rawValue)) for NIP \(digits)"
    case .failure(let failure):
      response.step = failure.step.rawValue
      response.httpStatus = Int32(failure.httpStatus)
      response.code = failure.code
      response.description_p = failure.description
      response.details = failure.details
    }
    logger.notice(
      "ksef: test connection \(response.ok ? "signed in" : "failed at \(response.step)")",
      metadata: [
        "company": "\(company)", "environment": "\(mode.rawValue)", "code": "\(response.code)",
        "operator": "\(context.auditActor.login)", MetadataKey.requestID: "\(context.requestID)",
      ])
    return response
  }
}
