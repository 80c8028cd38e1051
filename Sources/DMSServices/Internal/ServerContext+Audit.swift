import DMSRPC
import DMSStorage

extension ServerContext {
  /// The caller, as the audit records it.
  var auditActor: AuditActor {
    AuditActor(peer: peer, userAgent: metadata[MetadataKey.userAgent] ?? "", requestID: requestID)
  }
}
