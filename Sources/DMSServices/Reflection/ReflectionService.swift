import DMSMessages
import DMSRPC
import DMSStubs
import Foundation

/// `dms.rpc.v1.Reflection`: what the server serves, for clients that build calls at
/// run time.
public struct ReflectionService: Dms_Rpc_V1_Reflection.ServiceProtocol {
  private let listing: Dms_Rpc_V1_ListMethodsResponse
  private let descriptorSet: Data

  /// A reflection service listing `methods` (normally `router.methods`, plus its own)
  /// and serving `descriptorSet` (the generated `DescriptorSet.serialized`).
  public init(methods: [MethodDescriptor], descriptorSet: [UInt8] = DescriptorSet.serialized) {
    var listing = Dms_Rpc_V1_ListMethodsResponse()
    listing.methods = methods.map { method in
      var info = Dms_Rpc_V1_MethodInfo()
      info.name = method.fullName
      info.requestType = method.requestType
      info.responseType = method.responseType
      info.serverStreaming = method.kind == .serverStreaming
      info.access =
        switch method.access {
        case .public: .public
        case .session: .session
        case .administrator: .administrator
        case .system: .system
        }
      info.companyScoped = method.companyScoped
      return info
    }
    self.listing = listing
    self.descriptorSet = Data(descriptorSet)
  }

  public func listMethods(
    request: Dms_Rpc_V1_ListMethodsRequest,
    context: ServerContext
  ) async throws -> Dms_Rpc_V1_ListMethodsResponse {
    listing
  }

  public func getFileDescriptorSet(
    request: Dms_Rpc_V1_GetFileDescriptorSetRequest,
    context: ServerContext
  ) async throws -> Dms_Rpc_V1_GetFileDescriptorSetResponse {
    var response = Dms_Rpc_V1_GetFileDescriptorSetResponse()
    response.fileDescriptorSet = descriptorSet
    return response
  }
}
