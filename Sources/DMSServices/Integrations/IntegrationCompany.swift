import DMSDomain
import DMSRPC
import DMSStorage

/// The company an integration call acts for: in multi-company mode the one the
/// `company` metadata names (ERP-13 … ERP-17 are per company), nil in single-company
/// mode (the request brings the values until the single-company section is stored).
func integrationCompany(
  _ context: ServerContext, store: any SettingsStore, deployment: DeploymentConfiguration, area: String
) async throws -> CompanyKey? {
  guard deployment.mode == .multiCompany else { return nil }
  guard let code = context.metadata[MetadataKey.company], !code.isEmpty else {
    throw RPCError(
      code: .invalidArgument,
      message: "name the company in the `company` metadata (its short name, ERP-3): \(area) settings are per company")
  }
  return try await reachableCompany(code, in: store.registry, context: context)
}
