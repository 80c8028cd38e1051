import ArgumentParser
import DMSClient
import DMSRPC
import DMSStubs
import SwiftProtobuf

/// `dmsctl call`: any method compiled in, request and response as protobuf JSON.
struct Call: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Call a method with a JSON request and print the JSON response.",
    discussion: """
      Example: dmsctl call /dms.rpc.v1.Health/Check --data '{"service": ""}'
      A server-streaming method prints one JSON object per message until it ends
      (or Ctrl-C). A failed call prints its code, message and violations and exits 1.
      """
  )

  @OptionGroup var connection: ConnectionOptions

  @Argument(help: "The method, as /package.Service/Method.")
  var method: String

  @Option(name: .shortAndLong, help: "The request as protobuf JSON.")
  var data = "{}"

  @Option(name: .shortAndLong, help: "Metadata key=value; repeatable.")
  var metadata: [String] = []

  func run() async throws {
    guard let entry = ServiceCatalog.methods.first(where: { $0.descriptor.fullName == method }) else {
      let known = ServiceCatalog.methods.map(\.descriptor.fullName).joined(separator: "\n  ")
      throw ValidationError("unknown method \(method); this dmsctl knows:\n  \(known)")
    }
    var options = connection.callOptions
    for pair in metadata {
      guard let eq = pair.firstIndex(of: "="), eq != pair.startIndex else {
        throw ValidationError("--metadata must be key=value (got \"\(pair)\")")
      }
      options.metadata[pair[..<eq].lowercased()] = String(pair[pair.index(after: eq)...])
    }
    if entry.descriptor.kind == .serverStreaming { options.timeout = nil }
    try await connection.withClient { client in
      try await perform(entry.descriptor, entry.requestType, entry.responseType, client: client, options: options)
    }
  }

  private func perform<Request: SwiftProtobuf.Message, Response: SwiftProtobuf.Message>(
    _ descriptor: MethodDescriptor,
    _ requestType: Request.Type,
    _ responseType: Response.Type,
    client: RPCClient,
    options: CallOptions
  ) async throws {
    let request: Request
    do {
      _ = try JSONDocument(parsing: data)
    } catch let error as JSONDocument.SyntaxError {
      throw ValidationError("--data is not valid JSON: \(error)")
    }
    do {
      request = try Request(jsonString: data)
    } catch JSONDecodingError.unknownField(let name) {
      let position = (try? JSONDocument(parsing: data))?.root.firstMember(named: name)?.keyPosition
      let known = ProtoJSON.fieldNames(of: descriptor.requestType)
      throw ValidationError(
        "--data: \(descriptor.requestType) has no field \"\(name)\"\(position.map { " (\($0))" } ?? "")"
          + (known.isEmpty ? "" : "; its fields are \(known.joined(separator: ", "))"))
    } catch {
      throw ValidationError("--data is not a \(descriptor.requestType) in protobuf JSON: \(error)")
    }
    switch descriptor.kind {
    case .unary:
      let response: Response = try await client.unary(descriptor, request: request, options: options)
      Output.message(response)
    case .serverStreaming:
      let stream: RPCResponseStream<Response> = client.serverStreaming(descriptor, request: request, options: options)
      for try await message in stream {
        Output.message(message)
      }
    }
  }
}
