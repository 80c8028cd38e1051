import DMSDomain
import DMSMessages
import DMSRPC
import DMSStorage
import DMSStubs

/// `dms.settings.v1.ServerInfo`: the configuration in force (CFG-1 … CFG-8) and
/// versions.
public struct ServerInfoService: Dms_Settings_V1_ServerInfo.ServiceProtocol {
  private let response: Dms_Settings_V1_ServerInfoResponse
  private let store: any SettingsStore
  private let configuration: DeploymentConfiguration

  /// The service reporting `configuration` and `serverVersion`, and the single company
  /// as registered in `store`.
  public init(
    store: any SettingsStore, configuration: DeploymentConfiguration, serverVersion: String,
    protocolVersions: [UInt32] = [1]
  ) {
    self.store = store
    self.configuration = configuration
    var response = Dms_Settings_V1_ServerInfoResponse()
    response.serverVersion = serverVersion
    response.mode = configuration.mode == .multiCompany ? .multiCompany : .singleCompany
    response.ksefWorkMode = configuration.ksefWorkMode.rawValue
    response.deleteMailsAfterSending = configuration.deleteMailsAfterSending
    response.useNewModeOfDocumentPermissions = configuration.useNewModeOfDocumentPermissions
    response.destinationAttachmentWorkflow = configuration.destinationAttachmentWorkflow.rawValue
    response.destinationAttachmentsRepository = configuration.destinationAttachmentsRepository.rawValue
    response.useRepository = configuration.useRepository
    response.edeliveryEnvironment = configuration.eDeliveryEnvironment.rawValue
    response.supportedApiVersions = configuration.sharedChoices.apiVersions.map { Int32(clamping: $0) }
    response.documentControlModes = configuration.sharedChoices.documentControlModes
    response.protocolVersions = protocolVersions
    self.response = response
  }

  public func get(
    request: Dms_Settings_V1_GetServerInfoRequest,
    context: ServerContext
  ) async throws -> Dms_Settings_V1_ServerInfoResponse {
    guard configuration.mode == .singleCompany else { return response }
    // The company as registered: after a switch from multi-company mode it keeps its
    // code (CFG-9), which need not be settings.single-company-code.
    var response = response
    response.singleCompanyCode =
      try await SingleCompany.key(in: store, configuration: configuration)?.code ?? configuration.singleCompanyCode
    return response
  }
}
