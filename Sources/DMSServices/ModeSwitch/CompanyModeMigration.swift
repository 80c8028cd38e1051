import DMSDomain
import DMSStorage
import Logging

/// CFG-9: brings the stored settings in line with the configured mode at start-up,
/// losing nothing.
///
/// - single → multi: the single company's API authorization (APIAUTH) becomes its ERP
///   connection definition (name and mapped database from the company name, the
///   operator login and password), under the same code. The KSeF and e-Delivery
///   sections are in that definition in both modes, and stay.
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

  /// Runs the switch if the configured mode differs from the stored one, in one
  /// transaction: the carried-over settings and the recorded mode commit together,
  /// so an interrupted switch is never half-applied (it runs again at the next start).
  public static func run(
    store: any SettingsStore,
    configuration: DeploymentConfiguration,
    logger: Logger
  ) async throws {
    let code = configuration.singleCompanyCode
    let target = configuration.mode
    let outcome = try await store.registry.transaction(by: .system("CFG-9 mode switch")) { tx -> String? in
      let stored = try tx.serverValue(modeKey).flatMap(ServerMode.init(rawValue:))
      let outcome: String?
      switch (stored, target) {
      case (.singleCompany?, .singleCompany), (.multiCompany?, .multiCompany):
        return nil
      case (nil, _):
        outcome = nil
      case (.singleCompany?, .multiCompany):
        outcome = try toMultiCompany(tx, code: code)
      case (.multiCompany?, .singleCompany):
        outcome = try toSingleCompany(tx)
      }
      try tx.setServerValue(modeKey, target.rawValue)
      return outcome
    }
    if let outcome { logger.notice("CFG-9: \(outcome)") }
  }

  /// single → multi; what happened, for the log.
  private static func toMultiCompany(_ tx: any RegistryTransaction, code: String) throws -> String {
    guard let key = try SingleCompany.key(in: tx, code: code) else {
      return "switched to multi-company mode; there were no single-company settings to carry over"
    }
    let scoped = tx.scoped(to: key)
    guard let auth = try scoped.read(APIAuthorization.self) else {
      guard try scoped.read(Company.self) != nil else {
        return "switched to multi-company mode; company \(key.code) had no API authorization"
      }
      // Only the KSeF or e-Delivery section was saved: the definition holds it already.
      return
        "switched to multi-company mode: company \(key.code) keeps its KSeF and e-Delivery sections; it had no API "
        + "authorization: fill in its name (ERP-2) and ERP connection (ERP-4)"
    }
    let password = try scoped.revealSecret(
      APIAuthorization.self, field: APIAuthorization.passwordField, reason: "CFG-9: carried over to the ERP operator")
    let existing = try scoped.read(Company.self)
    var company = existing?.value ?? Company(code: key.code, mode: .erpXL, name: auth.value.companyName)
    if company.name.isEmpty { company.name = auth.value.companyName }
    company.mappedDatabase = auth.value.companyName
    company.operatorLogin = auth.value.operatorLogin
    let secrets: [String: SecretChange] = [
      Company.Secret.operatorPassword.rawValue: password.map { .set($0) } ?? .clear
    ]
    _ = try scoped.write(company, secrets: secrets, expectedRevision: existing?.revision ?? 0)
    try scoped.remove(APIAuthorization.self)
    return
      "switched to multi-company mode: the API authorization became company \(key.code); fill in its ERP connection (ERP-4)"
  }

  /// multi → single; what happened, for the log.
  private static func toSingleCompany(_ tx: any RegistryTransaction) throws -> String {
    let companies = try tx.companies()
    guard companies.count <= 1 else {
      throw RefusedSwitch(
        description: """
          cannot start in single-company mode (settings.multi-company is false; the original's MultiCompany, \
          CFG-1): the data folder holds \(companies.count) companies \
          (\(companies.map(\.code).joined(separator: ", "))) and single-company mode has one. Start with \
          --settings-multi-company true (SETTINGS_MULTI_COMPANY=true, or "settings": {"multi-company": true} in the \
          configuration file), or delete all companies but one first (CFG-9).
          """)
    }
    guard let key = companies.first else {
      return "switched to single-company mode; there were no companies"
    }
    let scoped = tx.scoped(to: key)
    guard let company = try scoped.read(Company.self) else {
      return "switched to single-company mode; company \(key.code) had no ERP definition"
    }
    let password = try scoped.revealSecret(
      Company.self, field: Company.Secret.operatorPassword.rawValue,
      reason: "CFG-9: carried over to the API authorization")
    let current = try scoped.read(APIAuthorization.self)
    let auth = APIAuthorization(
      companyName: company.value.mappedDatabase.isEmpty ? company.value.name : company.value.mappedDatabase,
      operatorLogin: company.value.operatorLogin)
    _ = try scoped.write(
      auth, secrets: [APIAuthorization.passwordField: password.map { .set($0) } ?? .clear],
      expectedRevision: current?.revision ?? 0)
    return "switched to single-company mode: company \(key.code) is the single company; its ERP definition is kept"
  }
}
