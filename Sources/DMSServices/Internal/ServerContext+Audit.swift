import DMSRPC
import DMSStorage

extension ServerContext {
  /// The caller, as the audit records it.
  var auditActor: AuditActor {
    AuditActor(peer: Self.address(peer), userAgent: metadata[MetadataKey.userAgent] ?? "", requestID: requestID)
  }

  /// `127.0.0.1:54806` from a socket address's description (`[IPv4]127.0.0.1/127.0.0.1:54806`).
  static func address(_ peer: String) -> String {
    guard peer.hasPrefix("[IPv"), let slash = peer.lastIndex(of: "/") else { return peer }
    return String(peer[peer.index(after: slash)...])
  }
}
