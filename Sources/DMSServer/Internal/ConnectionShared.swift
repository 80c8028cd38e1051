import DMSRPC
import Logging

/// What every connection of one server shares: read-only after start.
struct ConnectionShared: Sendable {
  let router: Router
  let authorizer: (any CallAuthorizer)?
  let configuration: ServerConfiguration
  let logger: Logger
  /// The SETTINGS frame's meta, serialized once.
  let settingsMeta: [UInt8]
}
