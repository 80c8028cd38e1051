import DMSDomain
import DMSStorage

/// The one company of single-company mode.
enum SingleCompany {
  /// The registered company (there is at most one in single-company mode), or nil
  /// before the first save.
  static func key(in store: any SettingsStore, configuration: DeploymentConfiguration) async throws -> CompanyKey? {
    if let key = try await store.registry.company(code: configuration.singleCompanyCode) { return key }
    return try await store.registry.companies().first
  }

  /// The same, inside a registry transaction.
  static func key(in tx: any RegistryTransaction, code: String) throws -> CompanyKey? {
    try tx.company(code: code) ?? tx.companies().first
  }
}
