import DMSDomain
import DMSMessages
import DMSRPC
import DMSStorage
import DMSStubs
import Foundation

/// `dms.settings.v1.Audit`: reading the audit (docs/SECURITY.md). Administrators only.
public struct AuditService: Dms_Settings_V1_Audit.ServiceProtocol {
  private let store: any SettingsStore

  /// The most rows of one page.
  static let maxLimit = 1000

  /// The service over `store`'s audit.
  public init(store: any SettingsStore) {
    self.store = store
  }

  public func list(
    request: Dms_Settings_V1_ListAuditRequest, context: ServerContext
  ) async throws -> Dms_Settings_V1_ListAuditResponse {
    var v = Validator()
    v.require(
      (0...Int32(Self.maxLimit)).contains(request.limit), "limit", "", "must be 0 (100) to \(Self.maxLimit)")
    v.require(request.cursor >= 0, "cursor", "", "must not be negative")
    for (value, field) in [
      (request.company, "company"), (request.action, "action"), (request.login, "login"),
      (request.subject, "subject"),
    ] {
      v.limit(value, field)
    }
    try v.check()
    func given(_ text: String) -> String? { text.isEmpty ? nil : text }
    let limit = request.limit == 0 ? 100 : Int(request.limit)
    let records = try await store.registry.auditRecords(
      matching: AuditQuery(
        companyCode: given(request.company), action: given(request.action), login: given(request.login),
        subject: given(request.subject), cursor: request.cursor, newestFirst: request.newestFirst, limit: limit))
    var response = Dms_Settings_V1_ListAuditResponse()
    response.entries = records.map { record in
      var entry = Dms_Settings_V1_AuditEntry()
      entry.id = record.id
      entry.atUnixMs = Int64((record.at.timeIntervalSince1970 * 1000).rounded())
      entry.action = record.action
      entry.area = record.area
      entry.company = record.company ?? ""
      entry.fields = record.field
      entry.revision = record.revision
      entry.detail = record.detail
      entry.subject = record.subject
      entry.login = record.actor.login
      entry.peer = record.actor.peer
      entry.userAgent = record.actor.userAgent
      entry.requestID = record.actor.requestID
      return entry
    }
    // A full page may have a next one; a short page is the last.
    response.nextCursor = records.count == limit ? (records.last?.id ?? 0) : 0
    return response
  }
}
