import DMSDomain
import DMSMessages
import DMSRPC
import DMSStorage
import DMSStubs

/// `dms.settings.v1.SecurityPolicy`: switches that apply to every operator, such as
/// TOOLS-4's "enforce two-step login" (docs/SECURITY.md).
public struct SecurityPolicyService: Dms_Settings_V1_SecurityPolicy.ServiceProtocol {
  private let store: any SettingsStore

  /// The service over `store`'s policy.
  public init(store: any SettingsStore) {
    self.store = store
  }

  public func get(
    request: Dms_Settings_V1_GetSecurityPolicyRequest, context: ServerContext
  ) async throws -> Dms_Settings_V1_SecurityPolicySettings {
    Self.message(try await store.operators.securityPolicy())
  }

  public func update(
    request: Dms_Settings_V1_UpdateSecurityPolicyRequest, context: ServerContext
  ) async throws -> Dms_Settings_V1_SecurityPolicySettings {
    try requireRevision(request.policy.revision, field: "policy.revision")
    // TOOLS-4: turning enforcement on ends no session; each operator without two-step
    // login must enrol at its next sign-in.
    let policy = SecurityPolicy(enforceTwoStep: request.policy.enforceTwoStepLogin)
    let stored = try await store.operators.transaction(by: context.auditActor) { tx in
      try tx.setSecurityPolicy(policy, expectedRevision: request.policy.revision)
    }
    return Self.message(stored)
  }

  static func message(_ stored: StoredSecurityPolicy) -> Dms_Settings_V1_SecurityPolicySettings {
    var message = Dms_Settings_V1_SecurityPolicySettings()
    message.enforceTwoStepLogin = stored.value.enforceTwoStep
    message.revision = stored.revision
    return message
  }
}
