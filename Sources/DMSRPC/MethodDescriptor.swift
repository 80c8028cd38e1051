/// A method of a service: its names, message types and shape.
public struct MethodDescriptor: Hashable, Sendable, CustomStringConvertible {
  /// How many messages flow each way.
  public enum Kind: Sendable, Hashable {
    /// One request, one response (in the END frame).
    case unary
    /// One request, any number of MESSAGE frames, then END.
    case serverStreaming
  }

  /// The service's full name, such as `dms.rpc.v1.Health`.
  public let service: String
  /// The method's name, such as `Check`.
  public let method: String
  /// The request's full protobuf name.
  public let requestType: String
  /// The response's full protobuf name.
  public let responseType: String
  /// Unary or server streaming.
  public let kind: Kind
  /// The name on the wire: `/dms.rpc.v1.Health/Check`.
  public let fullName: String

  /// A descriptor; normally made by generated code.
  public init(service: String, method: String, requestType: String, responseType: String, kind: Kind) {
    self.service = service
    self.method = method
    self.requestType = requestType
    self.responseType = responseType
    self.kind = kind
    self.fullName = "/\(service)/\(method)"
  }

  public var description: String { fullName }
}
