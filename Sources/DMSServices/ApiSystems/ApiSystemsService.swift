import DMSDomain
import DMSMessages
import DMSRPC
import DMSStorage
import DMSStubs
import Foundation

/// `dms.settings.v1.ApiSystems`: the systems that work with the DMS through its API
/// (APISYS-1 … 4, docs/SECURITY.md). Administrators only.
public struct ApiSystemsService: Dms_Settings_V1_ApiSystems.ServiceProtocol {
  private let store: any SettingsStore

  /// The service over `store`'s API systems.
  public init(store: any SettingsStore) {
    self.store = store
  }

  public func list(
    request: Dms_Settings_V1_ListApiSystemsRequest, context: ServerContext
  ) async throws -> Dms_Settings_V1_ListApiSystemsResponse {
    var response = Dms_Settings_V1_ListApiSystemsResponse()
    response.systems = try await store.operators.apiSystems().map(Self.message)
    return response
  }

  public func add(
    request: Dms_Settings_V1_AddApiSystemRequest, context: ServerContext
  ) async throws -> Dms_Settings_V1_ApiSystemSecret {
    // APISYS-3: at least 2 characters; APISYS-1: the DMS makes the identifier.
    let system = ApiSystem(identifier: ApiSystem.newIdentifier(), name: try ApiSystem.validatedName(request.name))
    let (secret, hash) = SessionTokens.make()
    let stored = try await store.operators.transaction(by: context.auditActor) { tx in
      try tx.addApiSystem(system, secretHash: hash.bytes)
    }
    return Self.secret(stored, secret)
  }

  public func delete(
    request: Dms_Settings_V1_DeleteApiSystemRequest, context: ServerContext
  ) async throws -> Dms_Settings_V1_DeleteApiSystemResponse {
    let identifier = try Self.requireIdentifier(request.identifier)
    _ = try await store.operators.transaction(by: context.auditActor) { tx in
      try tx.deleteApiSystem(id: try Self.existing(identifier, tx).id)
    }
    return Dms_Settings_V1_DeleteApiSystemResponse()
  }

  public func rotateSecret(
    request: Dms_Settings_V1_RotateApiSystemSecretRequest, context: ServerContext
  ) async throws -> Dms_Settings_V1_ApiSystemSecret {
    let identifier = try Self.requireIdentifier(request.identifier)
    let (secret, hash) = SessionTokens.make()
    let stored = try await store.operators.transaction(by: context.auditActor) { tx in
      try tx.setApiSystemSecret(id: try Self.existing(identifier, tx).id, secretHash: hash.bytes)
    }
    return Self.secret(stored, secret)
  }

  private static func requireIdentifier(_ identifier: String) throws -> String {
    var v = Validator()
    v.require(!identifier.isEmpty, "identifier", "APISYS-1", "is required")
    v.limit(identifier, "identifier", maxLength: 64)
    try v.check()
    return identifier
  }

  private static func existing(_ identifier: String, _ tx: any OperatorTransaction) throws -> StoredApiSystem {
    guard let found = try tx.apiSystem(identifier: identifier) else {
      throw RPCError(
        code: .notFound, message: "no API system with the identifier \(identifier) (ApiSystems/List shows them)")
    }
    return found
  }

  static func message(_ stored: StoredApiSystem) -> Dms_Settings_V1_ApiSystem {
    var message = Dms_Settings_V1_ApiSystem()
    message.identifier = stored.value.identifier
    message.name = stored.value.name
    message.secretSet = stored.secretSet
    message.secretSetAtUnixMs = stored.secretSetAt.map { Int64($0.timeIntervalSince1970 * 1000) } ?? 0
    message.createdAtUnixMs = Int64(stored.createdAt.timeIntervalSince1970 * 1000)
    return message
  }

  private static func secret(_ stored: StoredApiSystem, _ secret: String) -> Dms_Settings_V1_ApiSystemSecret {
    var message = Dms_Settings_V1_ApiSystemSecret()
    message.system = Self.message(stored)
    message.secret = secret
    return message
  }
}
