import SwiftProtobuf

/// A method with its Swift message types, for callers that pick a method at run time.
public struct MethodCatalogEntry: Sendable {
  /// The method.
  public let descriptor: MethodDescriptor
  /// The request's message type.
  public let requestType: any SwiftProtobuf.Message.Type
  /// The response's message type.
  public let responseType: any SwiftProtobuf.Message.Type

  /// An entry; normally made by generated code.
  public init(
    descriptor: MethodDescriptor,
    requestType: any SwiftProtobuf.Message.Type,
    responseType: any SwiftProtobuf.Message.Type
  ) {
    self.descriptor = descriptor
    self.requestType = requestType
    self.responseType = responseType
  }
}
