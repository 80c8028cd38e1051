/// A service a server serves: a set of methods.
///
/// Each generated `ServiceProtocol` refines it and supplies `rpcMethods`.
public protocol RPCService: Sendable {
  /// The service's methods.
  var rpcMethods: [RPCMethod] { get }
}
