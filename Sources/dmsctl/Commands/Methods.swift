import ArgumentParser
import DMSClient
import DMSStubs

/// `dmsctl methods`: the Reflection list.
struct Methods: AsyncParsableCommand {
  static let configuration = CommandConfiguration(abstract: "List the methods the server serves.")

  @OptionGroup var connection: ConnectionOptions

  func run() async throws {
    try await connection.withClient { client in
      let list = try await Dms_Rpc_V1_Reflection.Client(client).listMethods(options: connection.callOptions)
      if connection.json {
        Output.json(
          list.methods.map {
            [
              "name": $0.name, "request_type": $0.requestType, "response_type": $0.responseType,
              "server_streaming": $0.serverStreaming,
            ] as [String: Any]
          })
      } else {
        Output.table(
          ["METHOD", "REQUEST", "RESPONSE", "STREAMING"],
          list.methods.map {
            [$0.name, $0.requestType, $0.responseType, $0.serverStreaming ? "server" : "-"]
          }
        )
      }
    }
  }
}
