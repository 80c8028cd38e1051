import DMSDomain
import DMSRPC

/// Refuses a call meant for the other mode (CFG-1).
func requireMode(_ required: ServerMode, current: ServerMode, area: String) throws {
  guard required == current else {
    let (needed, actual) =
      required == .multiCompany
      ? ("multi-company mode (settings.multi-company true)", "single-company mode")
      : ("single-company mode (settings.multi-company false)", "multi-company mode")
    throw RPCError(
      code: .failedPrecondition,
      message: "\(area) exists only in \(needed); this server runs in \(actual) (CFG-1)")
  }
}
