import SwiftProtobuf

/// Where the server writes a streamed response's serialized messages.
public protocol ResponseSink: Sendable {
  /// Sends one message (a MESSAGE frame); returns once the transport took it.
  func send(_ serializedMessage: [UInt8]) async throws
}

/// Sends the messages of a server-streaming response, in order.
public struct ResponseStreamWriter<Response: SwiftProtobuf.Message>: Sendable {
  private let sink: any ResponseSink

  /// A writer over `sink`.
  public init(sink: any ResponseSink) { self.sink = sink }

  /// Sends `response` as the stream's next message.
  public func send(_ response: Response) async throws {
    try await sink.send(try response.wireBytes())
  }
}
