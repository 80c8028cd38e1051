import DMSDomain
import DMSMessages
import DMSRPC
import DMSStubs

/// `dms.settings.v1.ServerInfo`: the configuration in force (CFG-1 … CFG-8) and
/// versions.
public struct ServerInfoService: Dms_Settings_V1_ServerInfo.ServiceProtocol {
  private let response: Dms_Settings_V1_ServerInfoResponse

  /// The service reporting `configuration` and `serverVersion`.
  public init(configuration: DeploymentConfiguration, serverVersion: String, protocolVersions: [UInt32] = [1]) {
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
    response.singleCompanyCode = configuration.mode == .singleCompany ? configuration.singleCompanyCode : ""
    self.response = response
  }

  public func get(
    request: Dms_Settings_V1_GetServerInfoRequest,
    context: ServerContext
  ) async throws -> Dms_Settings_V1_ServerInfoResponse {
    response
  }
}
