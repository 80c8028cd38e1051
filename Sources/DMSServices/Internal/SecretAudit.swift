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
