import ArgumentParser
import DMSClient
import DMSMessages
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
          ["METHOD", "ACCESS", "REQUEST", "RESPONSE", "STREAMING"],
          list.methods.map {
            [
              $0.name, Self.access($0), $0.requestType, $0.responseType, $0.serverStreaming ? "server" : "-",
            ]
          }
        )
      }
    }
  }

  /// "ADMINISTRATOR", "SESSION, company-scoped".
  static func access(_ method: Dms_Rpc_V1_MethodInfo) -> String {
    let name =
      switch method.access {
      case .public: "PUBLIC"
      case .session: "SESSION"
      case .administrator: "ADMINISTRATOR"
      case .system: "SYSTEM"
      default: "?"
      }
    return method.companyScoped ? "\(name), company-scoped" : name
  }
}
