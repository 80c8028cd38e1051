import DMSDomain
import DMSRPC
import DMSStorage
import Logging

/// The settings services of this build, wired to one store.
public enum SettingsServices {
  /// Registers every settings service with `router`.
  public static func register(
    into router: inout Router,
    store: any SettingsStore,
    configuration: DeploymentConfiguration,
    serverVersion: String,
    mail: MailDelivery,
    databaseAdministrators: DatabaseAdministrators,
    integrations: IntegrationsConfiguration = IntegrationsConfiguration(),
    logger: Logger
  ) {
    router.register(ServerInfoService(store: store, configuration: configuration, serverVersion: serverVersion))
    router.register(CompaniesService(store: store, configuration: configuration, logger: logger))
    router.register(SharedSettingsService(store: store, choices: configuration.sharedChoices))
    router.register(APIAuthorizationService(store: store, configuration: configuration, logger: logger))
    router.register(
      MailService(
        store: store, configuration: configuration, delivery: mail, administrators: databaseAdministrators,
        logger: logger))
    router.register(
      KsefService(store: store, deployment: configuration, configuration: integrations, logger: logger))
    router.register(
      EDeliveryService(store: store, deployment: configuration, configuration: integrations, logger: logger))
    router.register(SettingsEventsService(store: store))
  }
}
