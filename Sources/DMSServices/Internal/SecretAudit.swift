import DMSDomain
import DMSMessages
import DMSRPC
import DMSStorage
import Logging

/// Logs every reveal of a secret: who asked, for what, why. Never the value.
struct SecretAudit: Sendable {
  let logger: Logger

  func revealed(company: String, area: String, field: String, reason: String, context: ServerContext) {
    logger.notice(
      "secret revealed",
      metadata: [
        "audit": "secret-reveal",
        "company": "\(company)",
        "area": "\(area)",
        "field": "\(field)",
        "reason": "\(reason)",
        "peer": "\(context.peer)",
        "user-agent": "\(context.metadata[MetadataKey.userAgent] ?? "")",
        MetadataKey.requestID: "\(context.requestID)",
      ])
  }

  /// Reveals `field` of `key`'s `Document` (the store audits it in the same
  /// transaction) and logs it; `notSet` when no value is stored (the attempt is audited
  /// all the same). The caller has checked the reason (`requireRevealReason`).
  func reveal<Document: SettingsDocument>(
    _ type: Document.Type, field: String, of key: CompanyKey, reason: String, in store: any SettingsStore,
    context: ServerContext, notSet: @autoclosure () -> RPCError
  ) async throws -> Dms_Settings_V1_RevealSecretResponse {
    let value = try await store.transaction(company: key, by: context.auditActor) { tx in
      try tx.revealSecret(type, field: field, reason: reason)
    }
    guard let value else { throw notSet() }
    revealed(company: key.code, area: Document.area, field: field, reason: reason, context: context)
    var response = Dms_Settings_V1_RevealSecretResponse()
    response.set = true
    response.value = value
    return response
  }
}

/// A reveal must say why: the reason goes to the audit (the reveal rules of ERP-9,
/// ERP-14, ERP-17 and APIAUTH-3).
func requireRevealReason(_ reason: String) throws {
  guard reason.contains(where: { !$0.isWhitespace }) else {
    throw ValidationFailure([
      RuleViolation(field: "reason", rule: "", message: "is required: say why the secret is revealed (for the audit)")
    ])
  }
}
