/// The method table: which handler serves each `/package.Service/Method`.
public struct Router: Sendable {
  private var table: [String: RPCMethod] = [:]
  private var order: [MethodDescriptor] = []

  /// An empty router.
  public init() {}

  /// Adds every method of `service`.
  public mutating func register(_ service: some RPCService) {
    for method in service.rpcMethods { register(method) }
  }

  /// Adds one method. Registering a name twice is a programming error.
  public mutating func register(_ method: RPCMethod) {
    precondition(table[method.descriptor.fullName] == nil, "\(method.descriptor) registered twice")
    table[method.descriptor.fullName] = method
    order.append(method.descriptor)
  }

  /// The method called `fullName` (`/dms.rpc.v1.Health/Check`), if served.
  public func method(named fullName: String) -> RPCMethod? {
    table[fullName]
  }

  /// Every method served, in registration order.
  public var methods: [MethodDescriptor] { order }
}
