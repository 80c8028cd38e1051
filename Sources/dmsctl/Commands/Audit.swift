import ArgumentParser
import DMSClient
import DMSMessages
import DMSStubs
import Foundation

/// `dmsctl audit`: the audit, newest first (administrators only).
struct Audit: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Show the audit: every change, reveal and sign-in, newest first (administrators only).",
    discussion: """
      --oldest-first with --after ID follows the audit from a row on (a script keeping up
      with it: pass the last ID it printed). Secrets appear by name only, never a value.
      """)
  @OptionGroup var connection: ConnectionOptions
  @Option(help: "Only this company's rows (its short name).") var company: String?
  @Option(help: "Only this action (update, reveal, operator.update, session.open, ...).") var action: String?
  @Option(help: "Only rows made by this login.") var login: String?
  @Option(help: "Only rows about this operator.") var subject: String?
  @Option(help: "How many rows (1 to 1000).") var limit: Int32 = 50
  @Flag(help: "Oldest first.") var oldestFirst = false
  @Option(help: "Newest first: rows before this id. Oldest first: rows after it.") var after: Int64?

  func run() async throws {
    guard (1...1000).contains(limit) else { throw ValidationError("--limit must be 1 to 1000 (got \(limit))") }
    var request = Dms_Settings_V1_ListAuditRequest()
    request.company = company ?? ""
    request.action = action ?? ""
    request.login = login ?? ""
    request.subject = subject ?? ""
    request.limit = limit
    request.newestFirst = !oldestFirst
    request.cursor = after ?? 0
    try await connection.withClient { client in
      let page = try await Dms_Settings_V1_Audit.Client(client).list(request, options: connection.callOptions)
      if connection.json { return Output.message(page) }
      let formatter = ISO8601DateFormatter()
      Output.table(
        ["ID", "AT", "WHO", "ACTION", "COMPANY", "AREA", "FIELDS", "SUBJECT", "DETAIL"],
        page.entries.map { entry in
          [
            String(entry.id),
            formatter.string(from: Date(timeIntervalSince1970: TimeInterval(entry.atUnixMs) / 1000)),
            entry.login.isEmpty ? "(server)" : entry.login, entry.action, entry.company, entry.area, entry.fields,
            entry.subject, entry.detail,
          ]
        })
      if page.nextCursor != 0 {
        Output.line(
          "more: dmsctl audit --after \(page.nextCursor)\(oldestFirst ? " --oldest-first" : "")")
      }
    }
  }
}
