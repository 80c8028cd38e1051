import InMemoryLogging
import Logging
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
    let log = InMemoryLogHandler()
    let logger = Logger(label: "test") { _ in log }
    let errors = RepeatedErrors(window: .milliseconds(200))
    for _ in 0..<5 { errors.error("storage: down", metadata: ["kind": "x"], logger) }
    #expect(log.entries == [InMemoryLogHandler.Entry(level: .error, message: "storage: down", metadata: ["kind": "x"])])
    try await Task.sleep(for: .milliseconds(250))
    errors.error("storage: down", metadata: ["kind": "x"], logger)
    #expect(log.entries.count == 2)
    #expect(
      log.entries.last?.message.description.hasPrefix(
        "storage: down (and 4 more like it since the last logged, left out)") == true)
    #expect(log.entries.last?.metadata["repeats"] == "4", "\(log.entries)")
  }
}
