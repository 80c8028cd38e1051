import DMSDomain
import DMSIntegrations
import DMSMessages
import DMSRPC
import DMSStorage
import DMSStubs
import Foundation
import Logging

/// `dms.settings.v1.Companies`: the ERP connections of multi-company mode,
/// ERP-1 … ERP-19.
public struct CompaniesService: Dms_Settings_V1_Companies.ServiceProtocol {
  private let store: any SettingsStore
  private let configuration: DeploymentConfiguration
  private let audit: SecretAudit

  /// The service over `store`.
  public init(
    store: any SettingsStore,
    configuration: DeploymentConfiguration,
    logger: Logger
  ) {
    self.store = store
    self.configuration = configuration
    self.audit = SecretAudit(logger: logger)
  }

  private func requireMultiCompany() throws {
    try requireMode(.multiCompany, current: configuration.mode, area: "ERP connections (Companies)")
  }

  /// The company `code`, if it exists and the caller belongs to it (administrators
  /// belong to every one): NOT_FOUND otherwise, the same answer either way.
  private func existing(_ code: String, field: String = "short_name", context: ServerContext) async throws
    -> CompanyKey
  {
    guard !code.isEmpty else {
      throw ValidationFailure([RuleViolation(field: field, rule: "ERP-3", message: "is required")])
    }
    return try await reachableCompany(code, in: store.registry, context: context)
  }

  public func list(
    request: Dms_Settings_V1_ListCompaniesRequest,
    context: ServerContext
  ) async throws -> Dms_Settings_V1_ListCompaniesResponse {
    try requireMultiCompany()
    var response = Dms_Settings_V1_ListCompaniesResponse()
    for (key, stored) in try await store.registry.documentOfEveryCompany(Company.self)
    where context.mayReach(company: key.code) {
      var summary = Dms_Settings_V1_CompanySummary()
      summary.shortName = stored.value.code
      summary.name = stored.value.name
      summary.mode = stored.value.mode.message
      summary.revision = stored.revision
      response.companies.append(summary)
    }
    return response
  }

  public func get(
    request: Dms_Settings_V1_GetCompanyRequest,
    context: ServerContext
  ) async throws -> Dms_Settings_V1_Company {
    try requireMultiCompany()
    let key = try await existing(request.shortName, context: context)
    guard let stored = try await store.read(Company.self, of: key) else {
      throw RPCError(code: .notFound, message: "no company with the short name \(request.shortName)")
    }
    return Company.message(stored, ksef: configuration.ksefWorkMode)
  }

  /// The domain value and secret changes of a request, validated (ERP-1 … ERP-17).
  private func prepare(
    _ message: Dms_Settings_V1_Company,
    secrets: Dms_Settings_V1_CompanySecrets,
    centers: [String],
    previous: Company?,
    key: CompanyKey?
  ) async throws -> (Company, [String: SecretChange]) {
    var v = Validator()
    var company = Company(message: message, validator: &v)
    var changes: [String: SecretChange] = [:]
    let inputs: [(Company.Secret, Dms_Settings_V1_SecretInput?, String, String)] = [
      (
        .connectionPassword, secrets.hasConnectionPassword ? secrets.connectionPassword : nil,
        "secrets.connection_password", "ERP-4"
      ),
      (
        .altumConfigurationPassword, secrets.hasAltumConfigurationPassword ? secrets.altumConfigurationPassword : nil,
        "secrets.altum_configuration_password", "ERP-4"
      ),
      (
        .operatorPassword, secrets.hasOperatorPassword ? secrets.operatorPassword : nil, "secrets.operator_password",
        "ERP-9"
      ),
      (.ksefToken, secrets.hasKsefToken ? secrets.ksefToken : nil, "secrets.ksef_token", "ERP-14"),
    ]
    for (secret, input, field, rule) in inputs {
      changes[secret.rawValue] = secretChange(input, field: field, rule: rule, into: &v)
    }
    var keyChange = secretChange(
      secrets.hasEdeliveryPrivateKey ? secrets.edeliveryPrivateKey : nil, field: "secrets.edelivery_private_key",
      rule: "ERP-17", maxLength: TextLimits.pem, into: &v)
    switch keyChange {
    case .set(let pem):
      if let key = PrivateKeyInspector.inspect(pem: pem) {
        company.eDeliveryKeyFingerprint = key.fingerprint
        keyChange = .set(key.stored)
      } else if !pem.isEmpty {
        v.add("secrets.edelivery_private_key", "ERP-17", PrivateKeyInspector.refusal(pem: pem))
      }
    case .clear:
      company.eDeliveryKeyFingerprint = ""
    case .keep:
      company.eDeliveryKeyFingerprint = previous?.eDeliveryKeyFingerprint ?? ""
    }
    changes[Company.Secret.eDeliveryPrivateKey.rawValue] = keyChange
    var certificateKey = secretChange(
      secrets.hasKsefCertificateKey ? secrets.ksefCertificateKey : nil, field: "secrets.ksef_certificate_key",
      rule: KSeFCertificate.rule, maxLength: TextLimits.pem, into: &v)
    try await KSeFCertificateRules.check(
      &company.ksefCertificate, key: &certificateKey, previousPEM: previous?.ksefCertificate.pem ?? "",
      company: key, store: store, field: "company.ksef_certificate", keyField: "secrets.ksef_certificate_key",
      now: Date(), into: &v)
    changes[Company.Secret.ksefCertificateKey.rawValue] = certificateKey
    if company.altumConfiguration == nil, case .set = changes[Company.Secret.altumConfigurationPassword.rawValue] {
      v.add("secrets.altum_configuration_password", "ERP-4", "needs altum_configuration")
    }
    do {
      company = try company.validated(centers: centers)
    } catch {
      throw ValidationFailure(
        v.violations
          + error.under("company").violations)
    }
    try v.check()
    return (company, changes)
  }

  public func create(
    request: Dms_Settings_V1_CreateCompanyRequest,
    context: ServerContext
  ) async throws -> Dms_Settings_V1_Company {
    try requireMultiCompany()
    let (company, secrets) = try await prepare(
      request.company, secrets: request.secrets, centers: [], previous: nil, key: nil)
    let stored: Stored<Company>
    do {
      stored = try await store.registry.transaction(by: context.auditActor) { tx in
        let key = try tx.createCompany(code: company.code)
        return try tx.scoped(to: key).write(company, secrets: secrets, expectedRevision: 0)
      }
    } catch let error as StoreError where error.kind == .alreadyExists {
      throw StoreError(.alreadyExists, error.message, field: "company.short_name", rule: error.rule)
    }
    return Company.message(stored, ksef: configuration.ksefWorkMode)
  }

  public func update(
    request: Dms_Settings_V1_UpdateCompanyRequest,
    context: ServerContext
  ) async throws -> Dms_Settings_V1_Company {
    try requireMultiCompany()
    try requireRevision(request.company.revision, field: "company.revision")
    let key = try await existing(request.company.shortName, field: "company.short_name", context: context)
    let input = request
    // Validated against what is committed, off the database's writer; the transaction
    // then checks that it still is (ERP-7's centers, the key kept from the previous
    // version) and otherwise the update runs again on what changed.
    for _ in 0..<3 {
      let previous = try await store.read(Company.self, of: key)
      let centers = try await store.read(CompanyCenters.self, of: key)
      var (company, changes) = try await prepare(
        input.company, secrets: input.secrets, centers: centers?.value.centers ?? [], previous: previous?.value,
        key: key)
      company.code = key.code  // the short name as registered; it cannot change case by update
      let staged = try StagedDocument(company)
      let secrets = changes
      let validatedOn = (previous?.revision ?? 0, centers?.revision ?? 0)
      let stored = try await store.transaction(company: key, by: context.auditActor) { tx -> Stored<Company>? in
        guard try (tx.revision(of: Company.self), tx.revision(of: CompanyCenters.self)) == validatedOn else {
          return nil
        }
        return try tx.write(staged, secrets: secrets, expectedRevision: input.company.revision)
      }
      if let stored { return Company.message(stored, ksef: configuration.ksefWorkMode) }
    }
    throw RPCError(code: .aborted, message: "the company kept changing while it was saved; read it again and retry")
  }

  public func delete(
    request: Dms_Settings_V1_DeleteCompanyRequest,
    context: ServerContext
  ) async throws -> Dms_Settings_V1_DeleteCompanyResponse {
    try requireMultiCompany()
    try requireRevision(request.revision)
    let key = try await existing(request.shortName, context: context)
    let expected = request.revision
    try await store.registry.transaction(by: context.auditActor) { tx in
      let current = try tx.scoped(to: key).read(Company.self)?.revision ?? 0
      guard current == expected else {
        throw StoreError(
          .staleRevision, "company \(key.code) is at revision \(current), not \(expected)", currentRevision: current)
      }
      try tx.deleteCompany(key)
    }
    return Dms_Settings_V1_DeleteCompanyResponse()
  }

  public func setCenters(
    request: Dms_Settings_V1_SetCentersRequest,
    context: ServerContext
  ) async throws -> Dms_Settings_V1_Centers {
    try requireMultiCompany()
    var v = Validator()
    v.require(request.centers.count <= 10_000, "centers", "ERP-7", "must hold at most 10,000 centers")
    for (index, center) in request.centers.enumerated() {
      v.requireText(center, "centers[\(index)]", "ERP-7")
    }
    v.require(Set(request.centers).count == request.centers.count, "centers", "ERP-7", "must not repeat a center")
    try v.check()
    let key = try await existing(request.shortName, context: context)
    let centers = CompanyCenters(centers: request.centers)
    // The connector's list replaces the previous one: last writer wins, in one
    // transaction. The ERP is the source of the structure: a default center it no
    // longer publishes is cleared in the same transaction (ERP-7), so the company
    // stays valid as stored, and the caller is told.
    let (stored, warning) = try await store.transaction(company: key, by: context.auditActor) {
      tx -> (Stored<CompanyCenters>, String?) in
      let stored = try tx.write(centers, secrets: [:], expectedRevision: try tx.revision(of: CompanyCenters.self))
      guard let company = try tx.read(Company.self), !company.value.defaultCenter.isEmpty,
        !centers.centers.contains(company.value.defaultCenter)
      else { return (stored, nil) }
      var value = company.value
      value.defaultCenter = ""
      let saved = try tx.write(value, secrets: [:], expectedRevision: company.revision)
      return (
        stored,
        "the default center \(company.value.defaultCenter) (ERP-7) is no longer published: company \(key.code)'s "
          + "default center was cleared (revision \(saved.revision)); choose another with Update"
      )
    }
    var response = Dms_Settings_V1_Centers()
    response.centers = stored.value.centers
    if let warning { response.warnings = [warning] }
    return response
  }

  public func listCenters(
    request: Dms_Settings_V1_ListCentersRequest,
    context: ServerContext
  ) async throws -> Dms_Settings_V1_Centers {
    try requireMultiCompany()
    let key = try await existing(request.shortName, context: context)
    var response = Dms_Settings_V1_Centers()
    response.centers = try await store.read(CompanyCenters.self, of: key)?.value.centers ?? []
    return response
  }

  public func revealSecret(
    request: Dms_Settings_V1_RevealCompanySecretRequest,
    context: ServerContext
  ) async throws -> Dms_Settings_V1_RevealSecretResponse {
    try requireMultiCompany()
    guard let secret = Company.Secret(request.field) else {
      throw ValidationFailure([
        RuleViolation(
          field: "field", rule: "",
          message:
            "must name a secret: CONNECTION_PASSWORD, ALTUM_CONFIGURATION_PASSWORD, OPERATOR_PASSWORD, KSEF_TOKEN, EDELIVERY_PRIVATE_KEY, KSEF_CERTIFICATE_PRIVATE_KEY"
        )
      ])
    }
    return try await reveal(secret, company: request.shortName, reason: request.reason, context: context)
  }

  public func downloadPrivateKey(
    request: Dms_Settings_V1_DownloadPrivateKeyRequest,
    context: ServerContext
  ) async throws -> Dms_Settings_V1_RevealSecretResponse {
    try requireMultiCompany()
    return try await reveal(.eDeliveryPrivateKey, company: request.shortName, reason: request.reason, context: context)
  }

  private func reveal(
    _ secret: Company.Secret,
    company: String,
    reason: String,
    context: ServerContext
  ) async throws -> Dms_Settings_V1_RevealSecretResponse {
    try requireRevealReason(reason)
    let key = try await existing(company, context: context)
    return try await audit.reveal(
      Company.self, field: secret.rawValue, of: key, reason: reason, in: store, context: context,
      notSet: RPCError(code: .notFound, message: "company \(key.code) has no \(secret.displayName) set"))
  }
}
