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

  /// Who may call the method: the `(dms.rpc.v1.access)` option of its `.proto`
  /// (`Protos/dms/rpc/v1/access.proto`, docs/SECURITY.md).
  public enum Access: String, Sendable, Hashable, CaseIterable {
    /// Anyone who reaches the port, without a session.
    case `public` = "PUBLIC"
    /// Any signed-in operator or API system.
    case session = "SESSION"
    /// Operators with the administrator flag.
    case administrator = "ADMINISTRATOR"
    /// API systems, and administrators.
    case system = "SYSTEM"
  }

  private final class Storage: Sendable {
    let service: String
    let method: String
    let requestType: String
    let responseType: String
    let kind: Kind
    let access: Access
    let companyScoped: Bool
    let fullName: String

    init(
      service: String, method: String, requestType: String, responseType: String, kind: Kind, access: Access,
      companyScoped: Bool
    ) {
      self.service = service
      self.method = method
      self.requestType = requestType
      self.responseType = responseType
      self.kind = kind
      self.access = access
      self.companyScoped = companyScoped
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
  /// Who may call it.
  public var access: Access { storage.access }
  /// Whether the call acts on the company named in the `company` metadata.
  public var companyScoped: Bool { storage.companyScoped }

  /// A descriptor; normally made by generated code, from the method's options. One made
  /// by hand admits administrators only unless it says otherwise.
  public init(
    service: String, method: String, requestType: String, responseType: String, kind: Kind,
    access: Access = .administrator, companyScoped: Bool = false
  ) {
    storage = Storage(
      service: service, method: method, requestType: requestType, responseType: responseType, kind: kind,
      access: access, companyScoped: companyScoped)
  }

  public static func == (lhs: MethodDescriptor, rhs: MethodDescriptor) -> Bool {
    lhs.storage === rhs.storage
      || (lhs.fullName == rhs.fullName && lhs.requestType == rhs.requestType
        && lhs.responseType == rhs.responseType && lhs.kind == rhs.kind && lhs.access == rhs.access
        && lhs.companyScoped == rhs.companyScoped)
  }

  public func hash(into hasher: inout Hasher) {
    hasher.combine(fullName)
    hasher.combine(requestType)
    hasher.combine(responseType)
    hasher.combine(kind)
  }

  public var description: String { fullName }
}
