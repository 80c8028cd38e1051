import DMSDomain

/// How the mail queue and its worker behave (configuration keys `mail.*`,
/// docs/CONFIGURATION.md).
public struct MailConfiguration: Sendable {
  /// What a message may be (checked when it is queued).
  public var limits: OutgoingMail.Limits
  /// When a failed attempt is tried again, and how often.
  public var retry: MailRetryPolicy
  /// Seconds a claimed message stays the worker's; a worker that died lets it go then
  /// (`mail.lease-seconds`). Longer than a message takes to send.
  public var leaseSeconds: Double
  /// Messages claimed at once (`mail.batch-size`).
  public var batchSize: Int
  /// The longest wait between looks at the queue, for messages another instance queued
  /// or whose retry fell due (`mail.poll-seconds`); this instance's own wake it at once.
  public var pollSeconds: Double
  /// Threads that talk to mail servers (`mail.sender-threads`): as many accounts are
  /// sent to at once.
  public var senderThreads: Int
  /// Seconds to connect, and to send one message (`mail.connect-timeout-seconds`,
  /// `mail.send-timeout-seconds`).
  public var connectTimeout: Double
  public var sendTimeout: Double

  public init(
    limits: OutgoingMail.Limits = .init(), retry: MailRetryPolicy = .init(), leaseSeconds: Double = 300,
    batchSize: Int = 32, pollSeconds: Double = 5, senderThreads: Int = 4, connectTimeout: Double = 10,
    sendTimeout: Double = 120
  ) {
    self.limits = limits
    self.retry = retry
    self.leaseSeconds = leaseSeconds
    self.batchSize = batchSize
    self.pollSeconds = pollSeconds
    self.senderThreads = senderThreads
    self.connectTimeout = connectTimeout
    self.sendTimeout = sendTimeout
  }
}
