import DMSDomain
import DMSMessages
import DMSRPC
import DMSStorage
import Foundation

/// The e-Delivery section (INT-5 … INT-7; ERP-15 … ERP-17 per company): read, saved on
/// its own (INT-8), the private key downloaded under audit.
extension EDeliveryService {
  private var sections: IntegrationSections { IntegrationSections(store: store, deployment: deployment) }

  public func get(
    request: Dms_Settings_V1_GetEDeliverySettingsRequest, context: ServerContext
  ) async throws -> Dms_Settings_V1_EDeliverySettings {
    let (key, stored) = try await sections.read(context, area: "e-Delivery")
    return settingsMessage(stored, code: sections.code(key))
  }

  public func update(
    request: Dms_Settings_V1_UpdateEDeliverySettingsRequest, context: ServerContext
  ) async throws -> Dms_Settings_V1_EDeliverySettings {
    let (key, previous) = try await sections.read(context, area: "e-Delivery")
    try IntegrationSections.requireCurrent(request.settings.revision, stored: previous, field: "settings.revision")
    let rules = sections.rules
    var v = Validator()
    var section = EDeliverySection(
      address: request.settings.address.trimmingCharacters(in: .whitespaces),
      systemName: request.settings.systemName,
      keyFingerprint: previous?.value.eDeliveryKeyFingerprint ?? "")
    section.validate(rules: rules, prefix: "settings.", into: &v)
    var change = secretChange(
      request.hasPrivateKey ? request.privateKey : nil, field: "private_key", rule: rules.eDeliveryPrivateKey,
      maxLength: TextLimits.pem, into: &v)
    switch change {
    case .set(let pem):
      if let key = PrivateKeyInspector.inspect(pem: pem) {
        section.keyFingerprint = key.fingerprint
        change = .set(key.stored)
      } else {
        v.add("private_key", rules.eDeliveryPrivateKey, PrivateKeyInspector.refusal(pem: pem))
      }
    case .clear: section.keyFingerprint = ""
    case .keep: break
    }
    try v.check()
    var company = previous?.value ?? Company(code: sections.code(key))
    company.eDelivery = section
    let stored = try await sections.save(
      company, secrets: [Company.Secret.eDeliveryPrivateKey.rawValue: change], key: key,
      revision: request.settings.revision, context: context)
    return settingsMessage(stored, code: stored.value.code)
  }

  public func downloadPrivateKey(
    request: Dms_Settings_V1_DownloadEDeliveryPrivateKeyRequest, context: ServerContext
  ) async throws -> Dms_Settings_V1_RevealSecretResponse {
    try requireRevealReason(request.reason)
    let notSet = RPCError(code: .notFound, message: "no e-Delivery private key is saved (INT-7)")
    guard let key = try await integrationCompany(context, store: store, deployment: deployment, area: "e-Delivery")
    else { throw notSet }
    return try await SecretAudit(logger: logger).reveal(
      Company.self, field: Company.Secret.eDeliveryPrivateKey.rawValue, of: key, reason: request.reason, in: store,
      context: context, notSet: notSet)
  }

  private func settingsMessage(_ stored: Stored<Company>?, code: String) -> Dms_Settings_V1_EDeliverySettings {
    var message = Dms_Settings_V1_EDeliverySettings()
    message.company = code
    message.environment = deployment.eDeliveryEnvironment.rawValue
    guard let stored else { return message }
    message.address = stored.value.eDeliveryAddress
    message.systemName = stored.value.eDeliverySystemName
    message.privateKeySet = stored.secretsSet.contains(Company.Secret.eDeliveryPrivateKey.rawValue)
    message.keyFingerprint = stored.value.eDeliveryKeyFingerprint
    message.revision = stored.revision
    return message
  }
}
