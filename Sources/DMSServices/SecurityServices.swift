import DMSDomain
import DMSRPC
import DMSStorage
import Logging

/// Signing in and the operators (docs/SECURITY.md), wired to one store.
public enum SecurityServices {
  /// Registers `Auth`, `Operators`, `ApiSystems`, `SecurityPolicy` and `Audit` with `router`.
  public static func register(
    into router: inout Router,
    store: any SettingsStore,
    hasher: PasswordHasher,
    deployment: DeploymentConfiguration,
    security: SecurityConfiguration,
    initialAdministrator: InitialAdministrator?,
    logger: Logger
  ) {
    router.register(
      AuthService(
        store: store, hasher: hasher, configuration: security, initialAdministrator: initialAdministrator,
        logger: logger))
    router.register(OperatorsService(store: store, hasher: hasher, deployment: deployment, security: security))
    router.register(ApiSystemsService(store: store))
    router.register(SecurityPolicyService(store: store))
    router.register(AuditService(store: store))
  }
}
