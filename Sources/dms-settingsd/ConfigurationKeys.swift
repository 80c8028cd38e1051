import Foundation

/// Every configuration key `dms-settingsd` reads, in the order of docs/CONFIGURATION.md,
/// and how each is written in the three sources. A key not in this list stops start-up
/// wherever it is written (CFG-10): a misspelt key never passes as a default.
enum ConfigurationKeys {
  /// The keys; `ConfigValues` refuses to read one not listed.
  static let all: [String] = [
    "settings.multi-company",
    "settings.ksef-work-mode",
    "settings.delete-mails-after-sending",
    "settings.use-new-mode-of-document-permissions",
    "settings.destination-attachment-workflow",
    "settings.destination-attachments-repository",
    "settings.use-repository",
    "settings.edelivery-environment",
    "settings.api-versions",
    "settings.document-control-modes",
    "settings.single-company-code",
    "server.host",
    "server.port",
    "server.tls.certificate",
    "server.tls.key",
    "server.tls.client-ca",
    "server.max-concurrent-calls",
    "server.max-frame-size",
    "server.max-buffered-bytes",
    "server.idle-timeout",
    "server.shutdown-grace",
    "log.level",
    "storage.data-directory",
    "storage.master-key-file",
    "storage.busy-timeout-ms",
    "storage.master-key",
    "storage.administrator",
    "storage.administrator-password-hash",
    "storage.postgres.url",
    "storage.postgres.owner-url",
    "storage.postgres.pool-size",
    "storage.postgres.writers",
    "storage.postgres.statement-timeout-ms",
    "storage.postgres.connect-timeout-ms",
    "storage.postgres.single-company-statements",
    "security.session-lifetime-minutes",
    "security.session-idle-minutes",
    "security.login-free-attempts",
    "security.password-hash-log-n",
    "security.two-step-issuer",
    "mail.max-message-bytes",
    "mail.max-attachments",
    "mail.max-recipients",
    "mail.max-attempts",
    "mail.first-retry-seconds",
    "mail.max-retry-seconds",
    "mail.lease-seconds",
    "mail.batch-size",
    "mail.poll-seconds",
    "mail.sender-threads",
    "mail.connect-timeout-seconds",
    "mail.send-timeout-seconds",
    "ksef.test-url",
    "ksef.demo-url",
    "ksef.production-url",
    "ksef.ca-file",
    "ksef.timeout-seconds",
    "ksef.max-wait-seconds",
    "edelivery.production-token-url",
    "edelivery.test-token-url",
    "edelivery.ca-file",
    "edelivery.timeout-seconds",
  ]

  /// Keys whose values are secrets: redacted wherever swift-configuration prints them.
  static let secret: Set<String> = [
    "storage.master-key", "storage.postgres.url", "storage.postgres.owner-url", "storage.administrator-password-hash",
  ]

  /// Environment variables under these prefixes belong to the server: one that is not
  /// a key is a misspelling (SETTINGS_KSEF_WORKMODE).
  static let environmentPrefixes = [
    "SERVER_", "SETTINGS_", "STORAGE_", "LOG_", "SECURITY_", "MAIL_", "KSEF_", "EDELIVERY_",
  ]

  /// `server.port` as an option: `--server-port`.
  static func option(_ key: String) -> String {
    "--" + key.replacingOccurrences(of: ".", with: "-")
  }

  /// `server.port` as an environment variable: `SERVER_PORT`.
  static func environmentName(_ key: String) -> String {
    key.uppercased().replacingOccurrences(of: ".", with: "_").replacingOccurrences(of: "-", with: "_")
  }

  /// The known spelling nearest to `written` among `candidates` (edit distance, ties to
  /// the first listed).
  static func nearest(to written: String, among candidates: [String]) -> String {
    candidates.min { editDistance(written, $0) < editDistance(written, $1) } ?? ""
  }

  /// Levenshtein distance, ignoring case.
  static func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a.lowercased()), b = Array(b.lowercased())
    guard !a.isEmpty else { return b.count }
    guard !b.isEmpty else { return a.count }
    var previous = Array(0...b.count)
    var current = [Int](repeating: 0, count: b.count + 1)
    for i in 1...a.count {
      current[0] = i
      for j in 1...b.count {
        current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
      }
      swap(&previous, &current)
    }
    return previous[b.count]
  }
}
