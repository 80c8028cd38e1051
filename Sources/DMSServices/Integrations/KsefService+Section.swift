import DMSDomain
import DMSIntegrations
import DMSMessages
import DMSRPC
import DMSStorage
import Foundation

/// The KSeF section (INT-1 … INT-4a; ERP-13, ERP-14 and the certificate per company):
/// read, saved on its own (INT-8), its secrets revealed under audit.
extension KsefService {
  private var sections: IntegrationSections { IntegrationSections(store: store, deployment: deployment) }

  public func get(
    request: Dms_Settings_V1_GetKsefSettingsRequest, context: ServerContext
  ) async throws -> Dms_Settings_V1_KsefSettings {
    let (key, stored) = try await sections.read(context, area: "KSeF")
    return settingsMessage(stored, code: sections.code(key))
  }

  public func update(
    request: Dms_Settings_V1_UpdateKsefSettingsRequest, context: ServerContext
  ) async throws -> Dms_Settings_V1_KsefSettings {
    let (key, previous) = try await sections.read(context, area: "KSeF")
    try IntegrationSections.requireCurrent(request.settings.revision, stored: previous, field: "settings.revision")
    let rules = sections.rules
    var v = Validator()
    let given = KSeFSection(
      nip: request.settings.nip, certificate: KSeFCertificate(request.settings.certificate))
    var checked = Validator()
    var section = given.validated(rules: rules, certificateField: "certificate", into: &checked)
    v.append(
      checked.violations.map { RuleViolation(field: "settings.\($0.field)", rule: $0.rule, message: $0.message) })
    let token = secretChange(
      request.hasToken ? request.token : nil, field: "token", rule: rules.ksefToken, into: &v)
    var certificateKey = secretChange(
      request.hasCertificateKey ? request.certificateKey : nil, field: "certificate_key", rule: KSeFCertificate.rule,
      maxLength: TextLimits.pem, into: &v)
    try await KSeFCertificateRules.check(
      &section.certificate, key: &certificateKey, previousPEM: previous?.value.ksefCertificate.pem ?? "",
      company: key, store: store, field: "settings.certificate", keyField: "certificate_key", now: Date(), into: &v)
    try v.check()
    var company = previous?.value ?? Company(code: sections.code(key))
    company.ksef = section
    let stored = try await sections.save(
      company,
      secrets: [Company.Secret.ksefToken.rawValue: token, Company.Secret.ksefCertificateKey.rawValue: certificateKey],
      key: key, revision: request.settings.revision, context: context)
    return settingsMessage(stored, code: stored.value.code)
  }

  public func revealSecret(
    request: Dms_Settings_V1_RevealKsefSecretRequest, context: ServerContext
  ) async throws -> Dms_Settings_V1_RevealSecretResponse {
    let secret: Company.Secret
    switch request.field {
    case .ksefSecretToken: secret = .ksefToken
    case .ksefSecretCertificateKey: secret = .ksefCertificateKey
    default:
      throw ValidationFailure([
        RuleViolation(
          field: "field", rule: "", message: "must name a secret: KSEF_SECRET_TOKEN, KSEF_SECRET_CERTIFICATE_KEY")
      ])
    }
    try requireRevealReason(request.reason)
    let name = secret == .ksefToken ? "KSeF token (\(sections.rules.ksefToken))" : secret.displayName
    let notSet = RPCError(code: .notFound, message: "no \(name) is saved")
    guard let key = try await integrationCompany(context, store: store, deployment: deployment, area: "KSeF") else {
      throw notSet
    }
    return try await SecretAudit(logger: logger).reveal(
      Company.self, field: secret.rawValue, of: key, reason: request.reason, in: store, context: context,
      notSet: notSet)
  }

  private func settingsMessage(_ stored: Stored<Company>?, code: String) -> Dms_Settings_V1_KsefSettings {
    let mode = deployment.ksefWorkMode
    var message = Dms_Settings_V1_KsefSettings()
    message.company = code
    message.environment = mode.rawValue
    guard let stored else { return message }
    let company = stored.value
    message.nip = company.nip
    message.tokenSet = stored.secretsSet.contains(Company.Secret.ksefToken.rawValue)
    let keySet = stored.secretsSet.contains(Company.Secret.ksefCertificateKey.rawValue)
    let file = company.ksefCertificate.file
    if company.ksefCertificate.isSet || keySet {
      message.certificate = company.ksefCertificate.message(keySet: keySet, file: file)
    }
    message.warnings = company.ksefWarnings(secretsSet: stored.secretsSet, file: file, mode: mode, now: Date())
    message.revision = stored.revision
    return message
  }
}
