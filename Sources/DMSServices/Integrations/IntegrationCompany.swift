import DMSDomain
import DMSIntegrations
import DMSRPC
import DMSStorage
import Foundation

/// The company an integration call acts for: in multi-company mode the one the
/// `company` metadata names (ERP-13 … ERP-17 are per company); in single-company mode
/// the single company (INT-1 … INT-7), nil before anything was saved.
func integrationCompany(
  _ context: ServerContext, store: any SettingsStore, deployment: DeploymentConfiguration, area: String
) async throws -> CompanyKey? {
  guard deployment.mode == .multiCompany else {
    return try await SingleCompany.key(in: store, configuration: deployment)
  }
  guard let code = context.metadata[MetadataKey.company], !code.isEmpty else {
    throw RPCError(
      code: .invalidArgument,
      message: "name the company in the `company` metadata (its short name, ERP-3): \(area) settings are per company")
  }
  return try await reachableCompany(code, in: store.registry, context: context)
}

/// The KSeF and e-Delivery sections (INT-8: each saved on its own), kept in the
/// company's definition (`erp.company`) in both modes: the single company's in
/// single-company mode, so that a mode switch (CFG-9) carries them as they are.
struct IntegrationSections: Sendable {
  let store: any SettingsStore
  let deployment: DeploymentConfiguration

  /// The rules the checks cite in this mode.
  var rules: IntegrationRules { deployment.mode == .multiCompany ? .company : .singleCompany }

  /// The company of the call and its definition as committed (nil: single-company mode
  /// before the first save, or a company without one).
  func read(_ context: ServerContext, area: String) async throws -> (CompanyKey?, Stored<Company>?) {
    guard let key = try await integrationCompany(context, store: store, deployment: deployment, area: area) else {
      return (nil, nil)
    }
    return (key, try await store.read(Company.self, of: key))
  }

  /// The code shown for the call's company.
  func code(_ key: CompanyKey?) -> String { key?.code ?? deployment.singleCompanyCode }

  /// Writes `company` with `secrets` if the definition is still at `revision` (ABORTED
  /// otherwise); single-company mode's first save registers the single company in the
  /// same transaction.
  func save(
    _ company: Company, secrets: [String: SecretChange], key: CompanyKey?, revision: Int64, context: ServerContext
  ) async throws -> Stored<Company> {
    let staged = try StagedDocument(company)
    if let key {
      return try await store.transaction(company: key, by: context.auditActor) { tx in
        try tx.write(staged, secrets: secrets, expectedRevision: revision)
      }
    }
    let code = deployment.singleCompanyCode
    return try await store.registry.transaction(by: context.auditActor) { tx in
      let key = try SingleCompany.key(in: tx, code: code) ?? tx.createCompany(code: code)
      return try tx.scoped(to: key).write(staged, secrets: secrets, expectedRevision: revision)
    }
  }

  /// Refuses a save whose revision is not the one committed, before anything is
  /// checked against it.
  static func requireCurrent(_ revision: Int64, stored: Stored<Company>?, field: String) throws {
    var v = Validator()
    v.require(revision >= 0, field, "", "must not be negative")
    try v.check()
    let current = stored?.revision ?? 0
    guard revision == current else {
      throw StoreError(
        .staleRevision, "the settings are at revision \(current), not \(revision): read them again",
        currentRevision: current)
    }
  }
}

/// INT-4a: the KSeF certificate of a save, checked with its private key.
enum KSeFCertificateRules {
  /// Checks `certificate` and the change to its key (`field`: "settings.certificate",
  /// `keyField`: "certificate_key"): a PEM is one X.509 certificate (valid `now` when it
  /// is new), and its key is its own (the one given, or the one stored when the PEM is
  /// unchanged or the stored key matches a new one); a thumbprint given with a PEM must be
  /// the PEM's (the PEM's is stored); a key needs a certificate; a certificate removed
  /// takes its key with it. The key stored for `company` in `store` is read only when
  /// needed.
  static func check(
    _ certificate: inout KSeFCertificate, key: inout SecretChange, previousPEM: String,
    company: CompanyKey?, store: any SettingsStore, field: String, keyField: String, now: Date,
    into v: inout Validator
  ) async throws {
    guard !certificate.pem.isEmpty else {
      if case .set = key {
        v.add(keyField, KSeFCertificate.rule, "needs the certificate it belongs to (\(field).pem)")
      }
      if !previousPEM.isEmpty { key = .clear }
      return
    }
    // Too long: said already (TextLimits.pem), and not worth parsing.
    guard certificate.pem.count <= TextLimits.pem else { return }
    let file: KSeFCertificateFile
    do {
      file = try KSeFCertificateFile(pem: certificate.pem)
    } catch {
      v.add("\(field).pem", KSeFCertificate.rule, error.description)
      return
    }
    // The certificate is shown to every administrator; its key is a secret of its own.
    v.require(
      !file.holdsPrivateKey, "\(field).pem", KSeFCertificate.rule,
      "holds a private key beside the certificate: send the certificate alone, and the key as \(keyField)")
    // Stored and compared as its own block, whatever surrounded it in the file.
    certificate.pem = file.pem
    let previous = (try? KSeFCertificateFile(pem: previousPEM))?.pem ?? previousPEM
    // A new certificate must be valid now; one saved earlier that has since expired stays
    // (the warnings say so) rather than block the section's other saves.
    if certificate.pem != previous {
      if now > file.validUntil {
        v.add("\(field).pem", KSeFCertificate.rule, "expired on \(timestamp(file.validUntil)): KSeF would refuse it")
      } else if now < file.validFrom {
        v.add("\(field).pem", KSeFCertificate.rule, "is not valid before \(timestamp(file.validFrom))")
      }
    }
    if !certificate.thumbprint.isEmpty, certificate.thumbprint != file.thumbprint {
      v.add(
        "\(field).thumbprint", KSeFCertificate.rule,
        "is not the certificate's (\(file.thumbprint)): give the PEM or a thumbprint, not both")
    }
    certificate.thumbprint = file.thumbprint
    switch key {
    case .set(let pem):
      if let given = PrivateKeyInspector.inspect(pem: pem) {
        v.require(
          file.isOwn(given.key), keyField, KSeFCertificate.rule,
          "is not the private key of the certificate (\(file.subject))")
        key = .set(given.stored)
      } else {
        v.add(keyField, KSeFCertificate.rule, PrivateKeyInspector.refusal(pem: pem))
      }
    case .clear:
      v.add(keyField, KSeFCertificate.rule, "is required while a certificate is saved: remove the certificate with it")
    case .keep:
      guard certificate.pem != previous else { return }
      var stored: String?
      if let company {
        stored = try await store.secretForUse(
          Company.self, field: Company.Secret.ksefCertificateKey.rawValue, of: company)
      }
      guard let stored else {
        v.add(keyField, KSeFCertificate.rule, "is required with a new certificate: its private key in PEM")
        return
      }
      v.require(
        SigningKey(pem: stored).map(file.isOwn) == true, keyField, KSeFCertificate.rule,
        "is required with this certificate: the private key saved is another certificate's")
    }
  }

  /// RFC 3339, UTC, to the second.
  static func timestamp(_ date: Date) -> String {
    date.formatted(.iso8601)
  }
}
