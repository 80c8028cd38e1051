import ArgumentParser

/// `dmsctl`: the command-line probe of a DMS settings server.
@main
struct DMSCtl: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "dmsctl",
    abstract: "Talk to a DMS settings server over DMS RPC.",
    discussion: "The server comes from --server host:port or DMS_SERVER (default 127.0.0.1:7411).",
    version: "0.1.0",
    subcommands: [Info.self, Ping.self, Methods.self, Call.self]
  )
}
