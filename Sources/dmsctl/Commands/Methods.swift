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
        Output.message(list)
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
