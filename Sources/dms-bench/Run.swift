import ArgumentParser
import DMSClient
import DMSMessages
import DMSRPC
import DMSStubs
import Foundation
import Histogram
import SwiftProtobuf
import Synchronization

/// `dms-bench run`: one workload, measured.
struct Run: AsyncParsableCommand {
  static let configuration = CommandConfiguration(abstract: "Run one workload and print calls/s and latency.")

  enum Workload: String, ExpressibleByArgument, CaseIterable {
    /// Any method from the catalog with a fixed request (--method, --data).
    case call
    /// Companies/Get of a random company among --companies seeded ones.
    case getCompany = "get-company"
    /// Companies/Update: each worker saves its own company, revision after revision.
    case updateCompany = "update-company"
  }

  @OptionGroup var target: Target
  @Option(help: "call, get-company or update-company.") var workload = Workload.call
  @Option(help: "Connections.") var connections = 1
  @Option(help: "Calls in flight per connection.") var inFlight = 1
  @Option(
    help: """
      Calls sent together and waited for together (pipelined, as redis-benchmark -P), \
      with RPCClient.unaryBatch; divides --in-flight (workload call).
      """)
  var batch = 1
  @Option(help: "Seconds measured.") var duration = 10.0
  @Option(help: "Seconds run before measuring.") var warmup = 2.0
  @Option(help: "The method (workload call).") var method = "/dms.rpc.v1.Health/Check"
  @Option(help: "The request as protobuf JSON (workload call).") var data = "{}"
  @Option(help: "Seeded companies to read from (workload get-company).") var companies = 10
  @Option(help: "A name for the record.") var label = ""
  @Flag(help: "Print a JSON record.") var json = false

  func validate() throws {
    guard connections >= 1, inFlight >= 1 else { throw ValidationError("--connections and --in-flight must be ≥ 1") }
    guard duration > 0, warmup >= 0 else { throw ValidationError("--duration must be > 0, --warmup ≥ 0") }
    guard batch >= 1, inFlight % batch == 0 else { throw ValidationError("--batch must be ≥ 1 and divide --in-flight") }
    guard batch == 1 || workload == .call else { throw ValidationError("--batch > 1 needs --workload call") }
  }

  func run() async throws {
    let token = try await target.token()
    let clients = try (0..<connections).map { _ in try target.client(token: token) }
    for client in clients { _ = try await client.serverSettings() }
    let operation = try makeOperation()
    let clock = ContinuousClock()
    let start = clock.now
    let measureFrom = start + .milliseconds(Int64(warmup * 1000))
    let stopAt = measureFrom + .milliseconds(Int64(duration * 1000))

    let result = try await withThrowingTaskGroup(of: WorkerResult.self) { group in
      for (connectionIndex, client) in clients.enumerated() {
        let workers = inFlight / batch
        for slot in 0..<workers {
          let worker = connectionIndex * workers + slot
          group.addTask(executorPreference: client.taskExecutor) {
            var histogram = Histogram<UInt64>(
              highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: .three)
            var errors = 0
            var state = try await operation.prepare(client, worker)
            while true {
              let before = clock.now
              if before >= stopAt { break }
              let succeeded: Int
              do {
                succeeded = try await operation.call(client, &state)
              } catch {
                if before >= measureFrom { errors += batch }
                continue
              }
              if before >= measureFrom {
                let elapsed = clock.now - before
                let nanoseconds =
                  elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000
                errors += batch - succeeded
                // Each call of a batch took the batch's round trip.
                if succeeded > 0 { _ = histogram.record(UInt64(max(0, nanoseconds)), count: UInt64(succeeded)) }
              }
            }
            return WorkerResult(histogram: histogram, errors: errors)
          }
        }
      }
      var total = WorkerResult(
        histogram: Histogram<UInt64>(highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: .three),
        errors: 0)
      for try await result in group {
        total.histogram.add(result.histogram)
        total.errors += result.errors
      }
      return total
    }
    for client in clients { await client.close() }
    report(result)
  }

  struct WorkerResult: Sendable {
    var histogram: Histogram<UInt64>
    var errors: Int
  }

  private func report(_ result: WorkerResult) {
    let calls = Int(result.histogram.totalCount)
    let rate = Double(calls) / duration
    func micros(_ percentile: Double) -> Double {
      Double(result.histogram.valueAtPercentile(percentile)) / 1000
    }
    let batches = batch > 1 ? " (batches of \(batch))" : ""
    let shape = "\(connections) connection\(connections == 1 ? "" : "s") × \(inFlight) in flight\(batches)"
    let what = workload == .call ? method : workload.rawValue
    if json {
      let record: [String: Any] = [
        "label": label, "workload": what, "connections": connections, "in_flight": inFlight, "batch": batch,
        "duration_s": duration, "calls": calls, "errors": result.errors, "calls_per_second": rate,
        "p50_us": micros(50), "p90_us": micros(90), "p99_us": micros(99), "p999_us": micros(99.9),
        "max_us": Double(result.histogram.max) / 1000,
      ]
      let data = (try? JSONSerialization.data(withJSONObject: record, options: [.sortedKeys])) ?? Data()
      print(String(decoding: data, as: UTF8.self))
    } else {
      print("\(what): \(shape), \(duration) s after \(warmup) s warm-up")
      print(String(format: "calls: %d (%.0f/s), errors: %d", calls, rate, result.errors))
      print(
        String(
          format: "latency µs: p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f", micros(50), micros(90),
          micros(99), micros(99.9), Double(result.histogram.max) / 1000))
    }
  }

  // MARK: Workloads

  /// What one worker does: prepare once, then call repeatedly.
  struct Operation: Sendable {
    let prepare: @Sendable (RPCClient, Int) async throws -> WorkerState
    /// Makes one call (or one batch); returns how many succeeded.
    let call: nonisolated(nonsending) @Sendable (RPCClient, inout WorkerState) async throws -> Int
  }

  /// A worker's own state (the revision it last saved, for update-company).
  struct WorkerState: Sendable {
    var company: Dms_Settings_V1_Company?
  }

  private func makeOperation() throws -> Operation {
    switch workload {
    case .call:
      guard let entry = ServiceCatalog.methods.first(where: { $0.descriptor.fullName == method }) else {
        throw ValidationError("unknown method \(method)")
      }
      return try Self.callOperation(entry.descriptor, entry.requestType, entry.responseType, json: data, batch: batch)
    case .getCompany:
      let count = companies
      return Operation(
        prepare: { _, _ in WorkerState() },
        call: { client, _ in
          var request = Dms_Settings_V1_GetCompanyRequest()
          request.shortName = Seed.code(Int.random(in: 1...count))
          _ = try await Dms_Settings_V1_Companies.Client(client).get(request)
          return 1
        })
    case .updateCompany:
      return Operation(
        prepare: { client, worker in
          let api = Dms_Settings_V1_Companies.Client(client)
          let code = "W\(String(format: "%04d", worker))"
          var get = Dms_Settings_V1_GetCompanyRequest()
          get.shortName = code
          if let company = try? await api.get(get) { return WorkerState(company: company) }
          var create = Dms_Settings_V1_CreateCompanyRequest()
          create.company = benchCompany(code)
          return WorkerState(company: try await api.create(create))
        },
        call: { client, state in
          var request = Dms_Settings_V1_UpdateCompanyRequest()
          request.company = state.company!
          request.company.licenseKeyName = "KEY-\(request.company.revision)"
          state.company = try await Dms_Settings_V1_Companies.Client(client).update(request)
          return 1
        })
    }
  }

  private static func callOperation<Request: SwiftProtobuf.Message, Response: SwiftProtobuf.Message>(
    _ descriptor: MethodDescriptor,
    _ requestType: Request.Type,
    _ responseType: Response.Type,
    json: String,
    batch: Int
  ) throws -> Operation {
    let request = try Request(jsonString: json)
    if batch > 1 {
      let requests = Array(repeating: request, count: batch)
      return Operation(
        prepare: { _, _ in WorkerState() },
        call: { client, _ in
          let results: [Result<Response, RPCError>] = try await client.unaryBatch(descriptor, requests: requests)
          var succeeded = 0
          for result in results {
            if case .success = result { succeeded += 1 }
          }
          return succeeded
        })
    }
    return Operation(
      prepare: { _, _ in WorkerState() },
      call: { client, _ in
        let _: Response = try await client.unary(descriptor, request: request, options: CallOptions())
        return 1
      })
  }
}
