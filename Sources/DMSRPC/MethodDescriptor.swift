/// A method of a service: its names, message types and shape.
///
/// The names live in one shared, immutable storage object: a descriptor travels with
/// every call (in its `ServerContext`), and a copy costs one reference count, not
/// one per name.
public struct MethodDescriptor: Hashable, Sendable, CustomStringConvertible {
  /// How many messages flow each way.
  public enum Kind: Sendable, Hashable {
    /// One request, one response (in the END frame).
    case unary
    /// One request, any number of MESSAGE frames, then END.
    case serverStreaming
  }

  private final class Storage: Sendable {
    let service: String
    let method: String
    let requestType: String
    let responseType: String
    let kind: Kind
    let fullName: String

    init(service: String, method: String, requestType: String, responseType: String, kind: Kind) {
      self.service = service
      self.method = method
      self.requestType = requestType
      self.responseType = responseType
      self.kind = kind
      self.fullName = "/\(service)/\(method)"
    }
  }

  private let storage: Storage

  /// The service's full name, such as `dms.rpc.v1.Health`.
  public var service: String { storage.service }
  /// The method's name, such as `Check`.
  public var method: String { storage.method }
  /// The request's full protobuf name.
  public var requestType: String { storage.requestType }
  /// The response's full protobuf name.
  public var responseType: String { storage.responseType }
  /// Unary or server streaming.
  public var kind: Kind { storage.kind }
  /// The name on the wire: `/dms.rpc.v1.Health/Check`.
  public var fullName: String { storage.fullName }

  /// A descriptor; normally made by generated code.
  public init(service: String, method: String, requestType: String, responseType: String, kind: Kind) {
    storage = Storage(
      service: service, method: method, requestType: requestType, responseType: responseType, kind: kind)
  }

  public static func == (lhs: MethodDescriptor, rhs: MethodDescriptor) -> Bool {
    lhs.storage === rhs.storage
      || (lhs.fullName == rhs.fullName && lhs.requestType == rhs.requestType
        && lhs.responseType == rhs.responseType && lhs.kind == rhs.kind)
  }

  public func hash(into hasher: inout Hasher) {
    hasher.combine(fullName)
    hasher.combine(requestType)
    hasher.combine(responseType)
    hasher.combine(kind)
  }

  public var description: String { fullName }
}
