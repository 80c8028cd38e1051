import DMSDomain
import DMSRPC
import DMSStorage

extension ServerContext {
  /// The caller, as the audit records it.
  var auditActor: AuditActor {
    AuditActor(
      login: caller?.name ?? "", peer: Self.address(peer), userAgent: metadata[MetadataKey.userAgent] ?? "",
      requestID: requestID)
  }

  /// Whether the caller may see the company with `code`: administrators and API
  /// systems every one, an operator those it belongs to; a call without a caller (a
  /// server without an authorizer) every one.
  func mayReach(company code: String) -> Bool {
    guard let caller else { return true }
    return caller.belongs(toCompany: Company.codeKey(code))
  }

  /// Seconds an exchange with an outside server may take: `limit`, or less so that the
  /// call still answers within its deadline, keeping `reserve` seconds for the answer
  /// (never under `floor`).
  func seconds(atMost limit: Double, reserve: Double, floor: Double) -> Double {
    guard let deadline else { return limit }
    return min(limit, max(ContinuousClock.now.duration(to: deadline).seconds - reserve, floor))
  }

  /// `127.0.0.1:54806` from a socket address's description (`[IPv4]127.0.0.1/127.0.0.1:54806`).
  static func address(_ peer: String) -> String {
    guard peer.hasPrefix("[IPv"), let slash = peer.lastIndex(of: "/") else { return peer }
    return String(peer[peer.index(after: slash)...])
  }
}
