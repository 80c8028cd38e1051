import ArgumentParser
import DMSClient
import DMSMessages
import DMSRPC
import DMSStubs

/// `dmsctl watch`: settings changes as they happen.
struct Watch: AsyncParsableCommand {
  static let configuration = CommandConfiguration(abstract: "Print settings changes as they are saved, until Ctrl-C.")
  @OptionGroup var connection: ConnectionOptions
  @Option(help: "Only this company's changes (and the shared section's).") var company: String?

  func run() async throws {
    try await connection.withClient { client in
      var request = Dms_Settings_V1_WatchSettingsRequest()
      request.shortName = company ?? ""
      let events = Dms_Settings_V1_SettingsEvents.Client(client).watch(request, options: CallOptions())
      for try await event in events {
        if connection.json {
          try Output.message(event)
        } else if event.kind == .subscribed {
          print("watching \(company.map { "company \($0) and the shared section" } ?? "every company")")
        } else {
          let kind = [.created: "created", .updated: "updated", .deleted: "deleted"][event.kind] ?? "changed"
          let target = event.shortName.isEmpty ? "shared section" : "company \(event.shortName)"
          print("\(kind) \(target) \(event.area) revision \(event.revision)")
        }
      }
    }
  }
}
