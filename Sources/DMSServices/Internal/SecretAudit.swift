import DMSDomain
import DMSRPC
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
