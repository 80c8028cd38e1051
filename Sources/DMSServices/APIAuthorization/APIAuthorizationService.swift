import DMSDomain
import DMSMessages
import DMSRPC
import DMSStorage
import DMSStubs
import Logging

/// `dms.settings.v1.ApiAuthorization`: the default ERP operator of single-company
/// mode, APIAUTH-1 … APIAUTH-5. Stored under the single company.
public struct APIAuthorizationService: Dms_Settings_V1_ApiAuthorization.ServiceProtocol {
  private let store: any SettingsStore
  private let configuration: DeploymentConfiguration
  private let audit: SecretAudit

  /// The service over `store`.
  public init(
    store: any SettingsStore, configuration: DeploymentConfiguration, logger: Logger
  ) {
    self.store = store
    self.configuration = configuration
    self.audit = SecretAudit(logger: logger)
  }

  private func requireSingleCompany() throws {
    try requireMode(.singleCompany, current: configuration.mode, area: "API authorization (ApiAuthorization)")
  }

  private func message(_ stored: Stored<APIAuthorization>?) -> Dms_Settings_V1_ApiAuthorizationSettings {
    var message = Dms_Settings_V1_ApiAuthorizationSettings()
    if let stored {
      message.companyName = stored.value.companyName
      message.operatorLogin = stored.value.operatorLogin
      message.passwordSet = stored.secretsSet.contains(APIAuthorization.passwordField)
      message.revision = stored.revision
    }
    return message
  }

  public func get(
    request: Dms_Settings_V1_GetApiAuthorizationRequest,
    context: ServerContext
  ) async throws -> Dms_Settings_V1_ApiAuthorizationSettings {
    try requireSingleCompany()
    guard let key = try await SingleCompany.key(in: store, configuration: configuration) else { return message(nil) }
    return message(try await store.read(APIAuthorization.self, of: key))
  }

  public func update(
    request: Dms_Settings_V1_UpdateApiAuthorizationRequest,
    context: ServerContext
  ) async throws -> Dms_Settings_V1_ApiAuthorizationSettings {
    try requireSingleCompany()
    let input = request.settings
    let value = APIAuthorization(companyName: input.companyName, operatorLogin: input.operatorLogin)
    var v = Validator()
    let change = secretChange(
      request.hasPassword ? request.password : nil, field: "password", rule: "APIAUTH-3", into: &v)
    try v.check()
    var newPassword: String?
    if case .set(let password) = change { newPassword = password }
    do {
      try value.validate(password: newPassword)
    } catch {
      throw error.under("settings", keeping: ["password"])
    }
    let secrets = [APIAuthorization.passwordField: change]
    let code = configuration.singleCompanyCode
    let revision = input.revision
    let stored: Stored<APIAuthorization>
    if let key = try await SingleCompany.key(in: store, configuration: configuration) {
      stored = try await store.transaction(company: key, by: context.auditActor) { tx in
        try tx.write(value, secrets: secrets, expectedRevision: revision)
      }
    } else {
      // The first save registers the single company, in the same transaction.
      stored = try await store.registry.transaction(by: context.auditActor) { tx in
        let key = try SingleCompany.key(in: tx, code: code) ?? tx.createCompany(code: code)
        return try tx.scoped(to: key).write(value, secrets: secrets, expectedRevision: revision)
      }
    }
    return message(stored)
  }

  public func revealPassword(
    request: Dms_Settings_V1_RevealApiAuthorizationPasswordRequest,
    context: ServerContext
  ) async throws -> Dms_Settings_V1_RevealSecretResponse {
    try requireSingleCompany()
    try requireRevealReason(request.reason)
    let notSet = RPCError(code: .notFound, message: "the API authorization has no password set (APIAUTH-3)")
    guard let key = try await SingleCompany.key(in: store, configuration: configuration) else { throw notSet }
    return try await audit.reveal(
      APIAuthorization.self, field: APIAuthorization.passwordField, of: key, reason: request.reason, in: store,
      context: context, notSet: notSet)
  }
}
