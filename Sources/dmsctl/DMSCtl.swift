import ArgumentParser

/// `dmsctl`: the command-line probe of a DMS settings server.
@main
struct DMSCtl: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "dmsctl",
    abstract: "Talk to a DMS settings server over DMS RPC.",
    discussion: """
      The server comes from --server host:port or DMS_SERVER (default 127.0.0.1:7411).
      Connection options may stand before or after the command:
        dmsctl --server 127.0.0.1:7411 info   =   dmsctl info --server 127.0.0.1:7411
      """,
    version: "0.1.0",
    subcommands: [
      Info.self, Ping.self, Methods.self, Call.self, Companies.self, Shared.self, APIAuth.self, Watch.self,
    ]
  )

  static func main() async {
    await main(Self.movingConnectionOptions(Array(CommandLine.arguments.dropFirst())))
  }

  /// Connection options written before the command, moved to the end, where the
  /// (sub)command's parser reads them.
  static func movingConnectionOptions(_ arguments: [String]) -> [String] {
    let withValue: Set = ["--server", "--ca", "--server-name", "--timeout"]
    let flags: Set = ["--json", "--tls"]
    var leading: [String] = []
    var index = 0
    while index < arguments.count {
      let argument = arguments[index]
      let name = String(argument.split(separator: "=", maxSplits: 1).first ?? "")
      if flags.contains(argument) || (withValue.contains(name) && argument.contains("=")) {
        leading.append(argument)
        index += 1
      } else if withValue.contains(argument), index + 1 < arguments.count {
        leading += [argument, arguments[index + 1]]
        index += 2
      } else {
        break
      }
    }
    guard !leading.isEmpty, index < arguments.count else { return arguments }
    return Array(arguments[index...]) + leading
  }
}
