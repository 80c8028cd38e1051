import ArgumentParser
import DMSClient
import DMSMessages
import DMSRPC
import DMSStubs
import Foundation

/// `dmsctl watch`: settings changes as they happen.
struct Watch: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Print settings changes as they are saved, until Ctrl-C.",
    discussion: """
      Each change is printed (and flushed) as it arrives: one line, or with --json one
      JSON object per line. When the stream ends (the server stops, the connection is
      lost) watch says why and exits 1; with --follow it reconnects and resumes after
      the last change printed, so nothing is missed or printed twice.
      """)
  @OptionGroup var connection: ConnectionOptions
  @Option(help: "Only this company's changes (and the shared section's).") var company: String?
  @Flag(help: "Reconnect when the stream ends, resuming after the last change printed.") var follow = false
  @Option(help: "Start after this feed position (an event's \"position\"), replaying what came since.")
  var resumeAfter: Int64?

  /// Answers a reconnection cannot change.
  private static let final: Set<StatusCode> = [
    .invalidArgument, .notFound, .failedPrecondition, .permissionDenied, .unauthenticated, .outOfRange,
    .unimplemented,
  ]

  func run() async throws {
    var after = resumeAfter
    var delay = Duration.milliseconds(500)
    var printedHeader = false
    while true {
      let client = try connection.makeClient()
      var connected = false
      var subscribed = false
      let ended: RPCError
      do {
        _ = try await client.serverSettings(timeout: connection.callTimeout)
        connected = true
        var request = Dms_Settings_V1_WatchSettingsRequest()
        request.shortName = company ?? ""
        if let after { request.resumeAfter = after }
        let events = Dms_Settings_V1_SettingsEvents.Client(client).watch(request, options: CallOptions())
        for try await event in events {
          after = event.position
          subscribed = true
          delay = .milliseconds(500)
          show(event, header: &printedHeader)
        }
        ended = RPCError(code: .unavailable, message: "the server closed the stream")
      } catch {
        ended = error as? RPCError ?? RPCError(code: .unknown, message: "\(error)")
      }
      await client.close()
      guard follow, !Self.final.contains(ended.code) else {
        if subscribed {
          var report = ended
          report.message = "the stream ended: \(ended.message)"
          throw Output.failure(report, json: connection.json)
        }
        if connected { throw Output.failure(ended, json: connection.json) }
        throw Output.failure(ended, json: connection.json, connecting: true)
      }
      var stderr = StandardError()
      let resume = after.map { ", resuming after position \($0)" } ?? ""
      print(
        "watch: \(connected ? "the stream ended" : "cannot connect"): \(ended.message) (\(ended.code.name)); "
          + "reconnecting in \(delay.formatted())\(resume)", to: &stderr)
      try await Task.sleep(for: delay)
      delay = min(delay * 2, .seconds(10))
    }
  }

  private func show(_ event: Dms_Settings_V1_SettingsEvent, header: inout Bool) {
    if connection.json { return Output.message(event) }
    if event.kind == .subscribed {
      guard !header else { return }
      header = true
      Output.line("watching \(company.map { "company \($0) and the shared section" } ?? "every company")")
      return
    }
    let kind = [.created: "created", .updated: "updated", .deleted: "deleted"][event.kind] ?? "changed"
    let target = event.shortName.isEmpty ? "shared section" : "company \(event.shortName)"
    Output.line("\(kind) \(target) \(event.area) revision \(event.revision) (position \(event.position))")
  }
}

extension Duration {
  /// "500 ms", "2 s".
  fileprivate func formatted() -> String {
    let ms = components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000
    return ms < 1000 ? "\(ms) ms" : "\(ms / 1000) s"
  }
}
