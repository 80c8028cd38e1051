import DMSMessages
import DMSRPC
import DMSStubs

/// `dms.settings.v1.SettingsEvents`: change notifications for desktop clients.
public struct SettingsEventsService: Dms_Settings_V1_SettingsEvents.ServiceProtocol {
  private let bus: SettingsEventBus

  /// Events from `bus`.
  public init(bus: SettingsEventBus) {
    self.bus = bus
  }

  public func watch(
    request: Dms_Settings_V1_WatchSettingsRequest,
    responses: ResponseStreamWriter<Dms_Settings_V1_SettingsEvent>,
    context: ServerContext
  ) async throws {
    let stream = bus.subscribe()
    var subscribed = Dms_Settings_V1_SettingsEvent()
    subscribed.kind = .subscribed
    subscribed.shortName = request.shortName
    try await responses.send(subscribed)
    let filter = request.shortName.uppercased()
    for await change in stream {
      if !filter.isEmpty, let company = change.company, company.uppercased() != filter { continue }
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
      try await responses.send(event)
    }
    try Task.checkCancellation()
  }
}
