import ArgumentParser
import DMSClient
import DMSWire

/// `dmsctl info`: the server's SETTINGS.
struct Info: AsyncParsableCommand {
  static let configuration = CommandConfiguration(abstract: "Connect and print the server's name, version and limits.")

  @OptionGroup var connection: ConnectionOptions

  func run() async throws {
    let (host, port) = try connection.endpoint()
    try await connection.withClient { client in
      let settings = try await client.serverSettings()
      if connection.json {
        Output.json([
          "server": settings.server,
          "address": "\(host):\(port)",
          "protocol_version": Int(Preface.version),
          "max_frame_size": Int(settings.maxFrameSize),
          "max_concurrent_calls": Int(settings.maxConcurrentCalls),
          "idle_timeout_ms": Int(settings.idleTimeoutMs),
          "features": settings.features,
        ])
      } else {
        Output.table(
          ["SETTING", "VALUE"],
          [
            ["server", settings.server],
            ["address", "\(host):\(port)"],
            ["protocol version", "\(Preface.version)"],
            ["max frame size", "\(settings.maxFrameSize) bytes"],
            ["max concurrent calls", "\(settings.maxConcurrentCalls)"],
            ["idle timeout", "\(settings.idleTimeoutMs) ms"],
            ["features", settings.features.joined(separator: ", ")],
          ]
        )
      }
    }
  }
}
