import DMSDomain
import DMSStorage
import Logging

/// CFG-9: brings the stored settings in line with the configured mode at start-up,
/// losing nothing.
///
/// - single → multi: the single company's API authorization (APIAUTH) becomes its ERP
///   connection definition (name and mapped database from the company name, the
///   operator login and password), under the same code.
/// - multi → single: allowed with at most one company, whose operator settings become
///   the API authorization; its ERP definition is kept for a later switch back.
/// - more than one company → single: refused, naming the companies.
public enum CompanyModeMigration {
  /// The server-wide key recording the mode the data was written in.
  public static let modeKey = "company_mode"

  /// Switching to single-company mode with more than one company.
  public struct RefusedSwitch: Error, CustomStringConvertible {
    public let description: String
  }

  /// Runs the switch if the configured mode differs from the stored one.
  public static func run(
    store: any SettingsStore,
    configuration: DeploymentConfiguration,
    logger: Logger
  ) async throws {
    let stored = try await store.serverValue(modeKey).flatMap(ServerMode.init(rawValue:))
    switch (stored, configuration.mode) {
    case (nil, let mode):
      try await store.setServerValue(modeKey, mode.rawValue)
    case (.singleCompany?, .singleCompany), (.multiCompany?, .multiCompany):
      return
    case (.singleCompany?, .multiCompany):
      try await toMultiCompany(store: store, configuration: configuration, logger: logger)
      try await store.setServerValue(modeKey, ServerMode.multiCompany.rawValue)
    case (.multiCompany?, .singleCompany):
      try await toSingleCompany(store: store, configuration: configuration, logger: logger)
      try await store.setServerValue(modeKey, ServerMode.singleCompany.rawValue)
    }
  }

  private static func toMultiCompany(
    store: any SettingsStore,
    configuration: DeploymentConfiguration,
    logger: Logger
  ) async throws {
    guard let key = try await SingleCompany.key(in: store, configuration: configuration) else {
      logger.notice("CFG-9: switched to multi-company mode; there were no single-company settings to carry over")
      return
    }
    let scoped = store.scoped(to: key)
    guard let auth = try await scoped.read(APIAuthorization.self) else {
      logger.notice("CFG-9: switched to multi-company mode; company \(key.code) had no API authorization")
      return
    }
    let password = try await scoped.revealSecret(APIAuthorization.self, field: APIAuthorization.passwordField)
    let existing = try await scoped.read(Company.self)
    var company = existing?.value ?? Company(code: key.code, mode: .erpXL, name: auth.value.companyName)
    if company.name.isEmpty { company.name = auth.value.companyName }
    company.mappedDatabase = auth.value.companyName
    company.operatorLogin = auth.value.operatorLogin
    let secrets: [String: SecretChange] = [
      Company.Secret.operatorPassword.rawValue: password.map { .set($0) } ?? .clear
    ]
    _ = try await scoped.write(company, secrets: secrets, expectedRevision: existing?.revision ?? 0)
    try await scoped.remove(APIAuthorization.self)
    logger.notice(
      "CFG-9: switched to multi-company mode: the API authorization became company \(key.code); fill in its ERP connection (ERP-4)",
      metadata: ["company": "\(key.code)"])
  }

  private static func toSingleCompany(
    store: any SettingsStore,
    configuration: DeploymentConfiguration,
    logger: Logger
  ) async throws {
    let companies = try await store.companies()
    guard companies.count <= 1 else {
      throw RefusedSwitch(
        description: """
          cannot start in single-company mode (MultiCompany=false, CFG-1): the data folder holds \
          \(companies.count) companies (\(companies.map(\.code).joined(separator: ", "))) and single-company mode \
          has one. Start with MultiCompany=true, or delete all companies but one first (CFG-9).
          """)
    }
    guard let key = companies.first else {
      logger.notice("CFG-9: switched to single-company mode; there were no companies")
      return
    }
    let scoped = store.scoped(to: key)
    guard let company = try await scoped.read(Company.self) else { return }
    let password = try await scoped.revealSecret(Company.self, field: Company.Secret.operatorPassword.rawValue)
    let current = try await scoped.read(APIAuthorization.self)
    let auth = APIAuthorization(
      companyName: company.value.mappedDatabase.isEmpty ? company.value.name : company.value.mappedDatabase,
      operatorLogin: company.value.operatorLogin)
    _ = try await scoped.write(
      auth, secrets: [APIAuthorization.passwordField: password.map { .set($0) } ?? .clear],
      expectedRevision: current?.revision ?? 0)
    logger.notice(
      "CFG-9: switched to single-company mode: company \(key.code) is the single company; its ERP definition is kept",
      metadata: ["company": "\(key.code)"])
  }
}
