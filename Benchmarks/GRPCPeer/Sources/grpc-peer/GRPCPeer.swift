import ArgumentParser
import EchoProtos
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import GRPCProtobuf
import Histogram

/// The grpc-swift-2 peer: `serve` a unary echo, `bench` it with dms-bench's shapes.
@main
struct GRPCPeer: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "grpc-peer",
    abstract: "grpc-swift-2 unary echo server and load generator (the peer of dms-bench).",
    subcommands: [Serve.self, Bench.self]
  )
}

struct Serve: AsyncParsableCommand {
  @Option var port = 7470

  func run() async throws {
    let server = GRPCServer(
      transport: .http2NIOPosix(address: .ipv4(host: "127.0.0.1", port: port), transportSecurity: .plaintext),
      services: [EchoService()])
    try await withThrowingDiscardingTaskGroup { group in
      group.addTask { try await server.serve() }
      if let address = try await server.listeningAddress { print("grpc-peer listening on \(address)") }
    }
  }
}

struct EchoService: Bench_V1_Echo.SimpleServiceProtocol {
  func get(request: Bench_V1_EchoRequest, context: ServerContext) async throws -> Bench_V1_EchoResponse {
    var response = Bench_V1_EchoResponse()
    response.status = 1
    return response
  }
}

/// The same measurement as dms-bench's `run`: connections × in-flight workers, each
/// calling as fast as it is answered; latency of each call into an HdrHistogram.
struct Bench: AsyncParsableCommand {
  @Option var port = 7470
  @Option var connections = 1
  @Option var inFlight = 1
  @Option var duration = 10.0
  @Option var warmup = 2.0
  @Option var label = ""
  @Flag var json = false

  func run() async throws {
    let clients = try (0..<connections).map { _ in
      GRPCClient(
        transport: try .http2NIOPosix(target: .ipv4(address: "127.0.0.1", port: port), transportSecurity: .plaintext))
    }
    let clock = ContinuousClock()
    let measureFrom = clock.now + .milliseconds(Int64(warmup * 1000))
    let stopAt = measureFrom + .milliseconds(Int64(duration * 1000))
    let (histogram, errors) = try await withThrowingTaskGroup(of: (Histogram<UInt64>, Int)?.self) { group in
      for client in clients {
        group.addTask {
          try await client.runConnections()
          return nil
        }
      }
      for client in clients {
        for _ in 0..<inFlight {
          group.addTask {
            let echo = Bench_V1_Echo.Client(wrapping: client)
            var histogram = Histogram<UInt64>(
              highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: .three)
            var errors = 0
            while true {
              let before = clock.now
              if before >= stopAt { break }
              do {
                _ = try await echo.get(Bench_V1_EchoRequest())
              } catch {
                if before >= measureFrom { errors += 1 }
                continue
              }
              if before >= measureFrom {
                let elapsed = clock.now - before
                let ns = elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000
                _ = histogram.record(UInt64(max(0, ns)))
              }
            }
            return (histogram, errors)
          }
        }
      }
      var total = Histogram<UInt64>(highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: .three)
      var errors = 0
      var workersLeft = connections * inFlight
      for try await result in group {
        guard let (histogram, workerErrors) = result else { continue }
        total.add(histogram)
        errors += workerErrors
        workersLeft -= 1
        if workersLeft == 0 { for client in clients { client.beginGracefulShutdown() } }
      }
      return (total, errors)
    }
    let calls = Int(histogram.totalCount)
    func micros(_ p: Double) -> Double { Double(histogram.valueAtPercentile(p)) / 1000 }
    if json {
      let record: [String: Any] = [
        "label": label, "workload": "grpc-swift-2 unary echo", "connections": connections, "in_flight": inFlight,
        "duration_s": duration, "calls": calls, "errors": errors, "calls_per_second": Double(calls) / duration,
        "p50_us": micros(50), "p90_us": micros(90), "p99_us": micros(99), "p999_us": micros(99.9),
        "max_us": Double(histogram.max) / 1000,
      ]
      let data = try JSONSerialization.data(withJSONObject: record, options: [.sortedKeys])
      print(String(decoding: data, as: UTF8.self))
    } else {
      print(String(format: "calls: %d (%.0f/s), errors: %d", calls, Double(calls) / duration, errors))
      print(String(format: "latency µs: p50 %.1f  p99 %.1f", micros(50), micros(99)))
    }
  }
}
