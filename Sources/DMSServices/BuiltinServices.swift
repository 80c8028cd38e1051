import DMSRPC
import DMSStubs

/// The services every server has: Health and Reflection.
public enum BuiltinServices {
  /// Registers Health and a Reflection that lists every method of `router` (as it
  /// stands, plus Reflection's own); call it after the other services are registered.
  public static func register(into router: inout Router, health: HealthService) {
    router.register(health)
    let methods = router.methods + Dms_Rpc_V1_Reflection.Method.all
    router.register(ReflectionService(methods: methods))
  }
}
