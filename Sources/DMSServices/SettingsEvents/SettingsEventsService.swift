import DMSMessages
import DMSRPC
import DMSStorage
import DMSStubs

/// `dms.settings.v1.SettingsEvents`: change notifications for desktop clients, from
/// the store's change feed.
public struct SettingsEventsService: Dms_Settings_V1_SettingsEvents.ServiceProtocol {
  private let feed: ChangeFeed
  private let registry: any CompanyRegistry

  /// Events from `store`'s change feed.
  public init(store: any SettingsStore) {
    self.feed = store.changes
    self.registry = store.registry
  }

  public func watch(
    request: Dms_Settings_V1_WatchSettingsRequest,
    responses: ResponseStreamWriter<Dms_Settings_V1_SettingsEvent>,
    context: ServerContext
  ) async throws {
    if !request.shortName.isEmpty {
      _ = try await reachableCompany(request.shortName, in: registry, context: context)
    }
    let subscription = try feed.subscribe(after: request.hasResumeAfter ? request.resumeAfter : nil)
    var subscribed = Dms_Settings_V1_SettingsEvent()
    subscribed.kind = .subscribed
    subscribed.shortName = request.shortName
    subscribed.position = subscription.after
    try await responses.send(subscribed)
    let filter = request.shortName.uppercased()
    for try await change in subscription {
      if !filter.isEmpty, let company = change.company, company.uppercased() != filter { continue }
      // Only the companies the caller belongs to (and the shared section).
      if let company = change.company, !context.mayReach(company: company) { continue }
      var event = Dms_Settings_V1_SettingsEvent()
      event.kind =
        switch change.kind {
        case .created: .created
        case .updated: .updated
        case .deleted: .deleted
        }
      event.shortName = change.company ?? ""
      event.area = change.area
      event.revision = change.revision
      event.position = change.position
      try await responses.send(event)
    }
    try Task.checkCancellation()
  }
}
