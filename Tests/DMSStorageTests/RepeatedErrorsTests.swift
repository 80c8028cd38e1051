import Logging
import Synchronization
import Testing

@testable import DMSStorage

@Suite("Storage failures in the log")
struct RepeatedErrorsTests {
  @Test("a failure is logged once per kind and window; the next after the window says how many were left out")
  func onceAWindow() {
    let errors = RepeatedErrors(window: .seconds(10))
    let start = ContinuousClock.now
    #expect(errors.admit("down", now: start) == 0)
    for second in 1...9 { #expect(errors.admit("down", now: start + .seconds(second)) == nil) }
    #expect(errors.admit("full", now: start + .seconds(1)) == 0, "another kind is its own")
    #expect(errors.admit("down", now: start + .seconds(10)) == 9, "nine left out")
    #expect(errors.admit("down", now: start + .seconds(11)) == nil)
    #expect(errors.admit("down", now: start + .seconds(25)) == 1)
  }

  @Test("beyond the kinds it keeps, old ones are dropped, and a flood of new ones is each logged")
  func manyKinds() {
    let errors = RepeatedErrors(window: .seconds(10))
    let start = ContinuousClock.now
    for kind in 0..<RepeatedErrors.kinds { #expect(errors.admit("k\(kind)", now: start) == 0) }
    #expect(errors.admit("one more", now: start) == 0)
    #expect(errors.admit("one more", now: start) == 0, "not kept: logged again")
    // Once the window has passed the old kinds make room.
    #expect(errors.admit("later", now: start + .seconds(11)) == 0)
    #expect(errors.admit("later", now: start + .seconds(12)) == nil)
  }

  @Test("through a logger: one line, then one with the count and metadata `repeats`")
  func lines() async throws {
    let log = StorageLog()
    let logger = Logger(label: "test") { _ in log }
    let errors = RepeatedErrors(window: .milliseconds(200))
    for _ in 0..<5 { errors.error("storage: down", metadata: ["kind": "x"], logger) }
    #expect(log.lines == ["error storage: down [\"kind\": x]"])
    try await Task.sleep(for: .milliseconds(250))
    errors.error("storage: down", metadata: ["kind": "x"], logger)
    #expect(log.lines.count == 2)
    #expect(
      log.lines.last?.hasPrefix("error storage: down (and 4 more like it since the last logged, left out)") == true)
    #expect(log.lines.last?.contains("\"repeats\": 4") == true, "\(log.lines)")
  }
}

/// Every log line as text (level, message, metadata sorted by key); copies share them.
struct StorageLog: LogHandler {
  private final class Lines: Sendable {
    let lines = Mutex<[String]>([])
  }

  private let shared = Lines()
  var metadata: Logger.Metadata = [:]
  var logLevel: Logger.Level = .trace

  subscript(metadataKey key: String) -> Logger.Metadata.Value? {
    get { metadata[key] }
    set { metadata[key] = newValue }
  }

  func log(event: LogEvent) {
    let all = metadata.merging(event.metadata ?? [:]) { $1 }
    let fields = all.sorted { $0.key < $1.key }.map { "\"\($0.key)\": \($0.value)" }.joined(separator: ", ")
    shared.lines.withLock { $0.append("\(event.level) \(event.message) [\(fields)]") }
  }

  var lines: [String] { shared.lines.withLock { $0 } }
}
