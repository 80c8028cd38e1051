import DMSDomain
import DMSMessages
import DMSRPC
import DMSStorage
import DMSStubs

/// `dms.settings.v1.SharedSettings`: the section common to all companies,
/// ERP-S1 … ERP-S3.
public struct SharedSettingsService: Dms_Settings_V1_SharedSettings.ServiceProtocol {
  private let store: any SettingsStore
  private let choices: SharedSettings.Choices

  /// The service over `store`, accepting `choices`.
  public init(store: any SettingsStore, choices: SharedSettings.Choices) {
    self.store = store
    self.choices = choices
  }

  private func message(_ value: SharedSettings, revision: Int64) -> Dms_Settings_V1_Shared {
    var message = Dms_Settings_V1_Shared()
    message.apiVersion = Int32(clamping: value.apiVersion)
    message.documentControlMode = value.documentControlMode
    message.analyticalDescription = value.analyticalDescription
    message.revision = revision
    message.supportedApiVersions = choices.apiVersions.map { Int32(clamping: $0) }
    message.documentControlModes = choices.documentControlModes
    return message
  }

  public func get(
    request: Dms_Settings_V1_GetSharedSettingsRequest,
    context: ServerContext
  ) async throws -> Dms_Settings_V1_Shared {
    guard let stored = try await store.readShared(SharedSettings.self) else {
      // Never saved: the defaults, at revision 0.
      return message(choices.initialSettings, revision: 0)
    }
    return message(stored.value, revision: stored.revision)
  }

  public func update(
    request: Dms_Settings_V1_UpdateSharedSettingsRequest,
    context: ServerContext
  ) async throws -> Dms_Settings_V1_Shared {
    let input = request.settings
    let value: SharedSettings
    do {
      value = try SharedSettings(
        apiVersion: Int(input.apiVersion),
        documentControlMode: input.documentControlMode,
        analyticalDescription: input.analyticalDescription
      ).validated(choices: choices)
    } catch {
      throw error.under("settings")
    }
    // Revision 0 is the first save; after that the revision read must be sent.
    let revision = input.revision
    let stored = try await store.sharedTransaction(by: context.auditActor) { tx in
      try tx.write(value, expectedRevision: revision)
    }
    return message(stored.value, revision: stored.revision)
  }
}
