import ArgumentParser
import DMSClient

/// `dmsctl ping`: PING round trips.
struct Ping: AsyncParsableCommand {
  static let configuration = CommandConfiguration(abstract: "Measure PING round-trip times.")

  @OptionGroup var connection: ConnectionOptions

  @Option(name: .shortAndLong, help: "How many PINGs.")
  var count = 5

  func validate() throws {
    guard count >= 1 else { throw ValidationError("--count must be at least 1") }
  }

  func run() async throws {
    var samples: [Double] = []
    try await connection.withClient { client in
      _ = try await client.serverSettings(timeout: connection.callTimeout)
      for sequence in 1...count {
        let rtt = try await client.ping(timeout: connection.callTimeout)
        let micros = Double(rtt.components.seconds) * 1e6 + Double(rtt.components.attoseconds) / 1e12
        samples.append(micros)
        if !connection.json { Output.line("ping \(sequence): \(format(micros))") }
      }
    }
    let sorted = samples.sorted()
    let median =
      sorted.count % 2 == 1
      ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    if connection.json {
      Output.json(
        .object([
          ("count", .int(samples.count)), ("min_us", .double(sorted.first!)), ("median_us", .double(median)),
          ("max_us", .double(sorted.last!)), ("samples_us", .array(samples.map(JSONOutput.double))),
        ]))
    } else {
      Output.line(
        "\(samples.count) pings: min \(format(sorted.first!)), median \(format(median)), max \(format(sorted.last!))")
    }
  }

  private func format(_ micros: Double) -> String {
    micros >= 1000 ? String(format: "%.2f ms", micros / 1000) : String(format: "%.0f µs", micros)
  }
}
