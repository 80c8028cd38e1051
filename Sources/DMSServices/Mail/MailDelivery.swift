import DMSDomain
import DMSHTTP
import DMSMailTransport
import DMSStorage
import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// The mail component's worker (MAIL-2, MAIL-3, CFG-3): claims due messages from the
/// queue under a lease, sends them over one reused SMTP connection per account, then
/// deletes or keeps them (DeleteMailsAfterSending, CFG-3); a failed attempt goes to the
/// work log and is tried again with backoff (transient) or fails (permanent). A `Service`
/// of the server's group: SIGTERM lets the messages in hand finish, then stops.
///
/// Delivery is at least once: a message claimed by a worker that dies before recording
/// it is sent again when its lease ends, with the same Message-ID and the same bytes.
public final class MailDelivery: Service, Sendable {
  private let store: any SettingsStore
  private let configuration: MailConfiguration
  private let deployment: DeploymentConfiguration
  private let pool: SMTPSenderPool
  private let wake = WakeSignal()
  private let stopping = Atomic<Bool>(false)
  private let logger: Logger

  public init(
    store: any SettingsStore, configuration: MailConfiguration, deployment: DeploymentConfiguration, logger: Logger
  ) {
    self.store = store
    self.configuration = configuration
    self.deployment = deployment
    self.pool = SMTPSenderPool(threadCount: configuration.senderThreads)
    self.logger = logger
  }

  /// The limits a message is checked against when queued.
  public var limits: OutgoingMail.Limits { configuration.limits }

  /// Runs blocking work (libcurl) on the sending threads, off the event loops.
  func blocking<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await pool.run(body)
  }

  /// Tells the worker a message was queued (it looks at once).
  public func messageQueued() { wake.signal() }

  /// Connections opened to `company`'s mail server so far, by the worker (tests).
  package func connectionsOpened(company: CompanyKey) -> Int { pool.connectionsOpened(key: String(company.id)) }

  public func run() async throws {
    await withGracefulShutdownHandler {
      await work()
    } onGracefulShutdown: {
      self.stop()
    }
    await pool.shutdown()
  }

  /// Stops the worker after the messages in hand (what a graceful shutdown does).
  public func stop() {
    stopping.store(true, ordering: .relaxed)
    wake.signal()
  }

  private func work() async {
    let queue = store.mailQueue
    while !stopping.load(ordering: .relaxed) && !Task.isCancelled {
      // A read first: an idle queue costs no write transaction.
      var wait = configuration.pollSeconds
      do {
        if let due = try await queue.nextDueDate() { wait = min(wait, due.timeIntervalSinceNow) }
      } catch {
        logger.warning("mail queue: cannot read it: \(error)")
      }
      if wait > 0 {
        await pool.closeIdle()
        await wake.wait(timeout: .milliseconds(Int64(wait * 1000)))
        continue
      }
      let claims: [ClaimedMail]
      do {
        claims = try await queue.claimDueMails(
          now: Date(), lease: configuration.leaseSeconds, limit: configuration.batchSize)
      } catch {
        logger.warning("mail queue: cannot claim messages: \(error)")
        await wake.wait(timeout: .seconds(configuration.pollSeconds))
        continue
      }
      let byCompany = Dictionary(grouping: claims, by: \.queued.company)
      await withTaskGroup(of: Void.self) { group in
        for (company, claims) in byCompany {
          group.addTask { await self.deliver(claims, of: company) }
        }
      }
    }
  }

  /// Sends one company's claimed messages, in order, and records what happened.
  ///
  /// A failure of the connection or of the sign-in (no reply, 421, 530 … 535) is the
  /// same for the messages after it: they are not tried, and get the same failure. A
  /// message is not begun once it might not end within the claim's lease (the rest are
  /// claimed again when the lease ends), so that no other worker sends it meanwhile.
  private func deliver(_ claims: [ClaimedMail], of company: CompanyKey) async {
    let claimed = ContinuousClock.now
    let lastStart = claimed + .milliseconds(Int64((configuration.leaseSeconds - configuration.sendTimeout) * 1000))
    var prepared = await prepare(company, sendTimeout: configuration.sendTimeout)
    var sent: [ClaimedMail] = []
    for claim in claims {
      if ContinuousClock.now > lastStart { break }
      do throws(SMTPFailure) {
        let (endpoint, from, attachmentsAllowed) = try prepared.get()
        if !attachmentsAllowed && !claim.mail.attachments.isEmpty {
          // Queued while the account was the mail component's.
          throw SMTPFailure(
            kind: .permanent, replyCode: 0,
            message:
              "the account uses the database profile, which sends no attachments (MAIL-2): only the mail component does"
          )
        }
        let message = MIMEMessage(
          claim.mail, from: from, messageID: claim.queued.messageID, date: claim.queued.createdAt,
          boundarySeed: String(claim.queued.messageID.filter(\.isHexDigit).prefix(32)))
        do throws(SMTPFailure) {
          _ = try await pool.send(message, endpoint: endpoint, key: String(company.id))
        } catch {
          if error.replyCode == 0 || error.replyCode == 421 || (530...535).contains(error.replyCode) {
            prepared = .failure(error)
          }
          throw error
        }
        sent.append(claim)
      } catch {
        await record(error, for: claim)
      }
    }
    do {
      try await store.mailQueue.recordSent(sent, at: Date(), delete: deployment.deleteMailsAfterSending)
    } catch {
      // Sent but not recorded: the lease ends and they are sent again (at least once).
      logger.error(
        "mail queue: \(sent.count) sent messages not recorded: \(error)", metadata: ["company": "\(company.code)"])
    }
  }

  /// A failed attempt: tried again after a backoff, or failed (MAIL-3: in the work log).
  private func record(_ failure: SMTPFailure, for claim: ClaimedMail) async {
    let now = Date()
    var outcome = MailFailureOutcome(outcome: "permanent", replyCode: failure.replyCode, message: failure.message)
    var retryAt: Date?
    if failure.kind == .transient {
      if let delay = configuration.retry.delay(afterAttempts: claim.queued.attempts, jitter: .random(in: 0..<1)) {
        outcome.outcome = "transient"
        retryAt = now.addingTimeInterval(delay)
      } else {
        outcome.outcome = "gave_up"
      }
    }
    logger.warning(
      "mail not sent (\(outcome.outcome)): \(failure.message)",
      metadata: [
        "company": "\(claim.queued.company.code)", "message-id": "\(claim.queued.messageID)",
        "attempt": "\(claim.queued.attempts)",
      ])
    do {
      try await store.mailQueue.recordFailure(claim, outcome: outcome, at: now, retryAt: retryAt)
    } catch {
      logger.error(
        "mail queue: a failure not recorded: \(error)", metadata: ["company": "\(claim.queued.company.code)"])
    }
  }

  /// Sends a message now with `company`'s saved account over a connection of its own,
  /// waiting at most `timeout` seconds (the test message, MAIL-26 … 28).
  public func sendNow(_ mail: OutgoingMail, of company: CompanyKey, timeout: Double) async -> Result<
    String, SMTPFailure
  > {
    do throws(SMTPFailure) {
      let (endpoint, from, _) = try await prepare(company, sendTimeout: timeout).get()
      let message = MIMEMessage(
        mail, from: from, messageID: MIMEMessage.newMessageID(sender: from.address), date: Date())
      return .success(try await pool.sendOnce(message, endpoint: endpoint))
    } catch {
      return .failure(error)
    }
  }

  /// `company`'s endpoint and sender, from its saved account and secrets, and whether it
  /// sends attachments (the mail component; not the database profile, MAIL-2).
  private func prepare(_ company: CompanyKey, sendTimeout: Double) async -> Result<
    (SMTPEndpoint, MIMEMessage.From, attachmentsAllowed: Bool), SMTPFailure
  > {
    let refused = { (message: String) in
      Result<(SMTPEndpoint, MIMEMessage.From, attachmentsAllowed: Bool), SMTPFailure>.failure(
        SMTPFailure(kind: .transient, replyCode: 0, message: message))
    }
    let account: MailAccount
    let credential: SMTPEndpoint.Credential
    do {
      guard let stored = try await store.read(MailAccount.self, of: company)?.value, stored.enabled else {
        return refused("sending e-mail is off for the company (MAIL-7)")
      }
      account = stored
      switch account.authentication {
      case .password:
        let password = try await store.secretForUse(
          MailAccount.self, field: MailAccount.Secret.password.rawValue, of: company)
        credential =
          if let password, !account.login.isEmpty { .password(login: account.login, password: password) } else {
            .none
          }
      case .oauth2:
        switch await accessToken(account, of: company) {
        case .success(let token): credential = .bearer(login: account.login, token: token)
        case .failure(let failure): return .failure(failure)
        }
      }
    } catch {
      return refused("the account could not be read: \(error)")
    }
    var endpoint = SMTPEndpoint(account: account, credential: credential)
    endpoint.connectTimeout = min(configuration.connectTimeout, sendTimeout)
    endpoint.sendTimeout = sendTimeout
    return .success(
      (
        endpoint,
        MIMEMessage.From(address: account.senderAddress, displayName: account.displayName, replyTo: account.replyTo),
        account.transport == .component
      ))
  }
}

extension MailDelivery {
  /// The account's OAuth2 access token (MAIL-24), refreshed when it ended (or ends within
  /// a minute); a refresh the provider refuses drops the tokens: the account then needs a
  /// new sign-in (MAIL-23), which GetAccount shows (`signed_in` false).
  fileprivate func accessToken(_ account: MailAccount, of company: CompanyKey) async -> Result<String, SMTPFailure> {
    let signIn = "Could not sign in to the account of user \(account.login) (MAIL-23)"
    do {
      let now = Date()
      let stored = try await store.secretForUse(MailAccount.self, field: MailOAuth.access, of: company)
      if let access = MailOAuth.decode(MailOAuth.Access.self, stored), access.expiresAt - 60 > now.timeIntervalSince1970
      {
        return .success(access.token)
      }
      guard let oauth = account.oauth,
        let refresh = try await store.secretForUse(MailAccount.self, field: MailOAuth.refresh, of: company)
      else {
        return .failure(
          SMTPFailure(kind: .permanent, replyCode: 0, message: "\(signIn): sign in with OAuth2 (MAIL-22)"))
      }
      let form = [
        ("grant_type", "refresh_token"), ("client_id", oauth.clientID), ("refresh_token", refresh),
        ("scope", oauth.scopes),
      ]
      let refreshed = await exchangeTokens(form, oauth: oauth, trusting: account.trustedCertificates)
      switch refreshed {
      case .success(let tokens):
        // A rotated refresh token replaces the old one, with the new access token.
        _ = try await MailOAuth.writeSecrets(
          MailOAuth.secrets(tokens, now: now), of: company, in: store, by: .system("mail worker"))
        return .success(tokens.accessToken)
      case .failure(let failure) where failure.refused:
        _ = try await MailOAuth.writeSecrets(
          [MailOAuth.access: .clear, MailOAuth.refresh: .clear], of: company, in: store, by: .system("mail worker"))
        logger.warning(
          "mail: the OAuth2 refresh was refused: sign-in required", metadata: ["company": "\(company.code)"])
        return .failure(
          SMTPFailure(
            kind: .permanent, replyCode: 0,
            message: "\(signIn): the provider refused the refresh token (\(failure)): sign in again (MAIL-22)"))
      case .failure(let failure):
        return .failure(
          SMTPFailure(kind: .transient, replyCode: 0, message: "the OAuth2 token endpoint did not answer: \(failure)"))
      }
    } catch {
      return .failure(
        SMTPFailure(kind: .transient, replyCode: 0, message: "the account's tokens could not be read: \(error)"))
    }
  }

  /// Exchanges `form` at the account's token endpoint, on the sending threads.
  func exchangeTokens(_ form: [(String, String)], oauth: MailAccount.OAuth, trusting certificates: String) async
    -> Result<OAuthTokenEndpoint.Tokens, OAuthTokenEndpoint.Failure>
  {
    let url = MailOAuth.endpoint(oauth, "token")
    return await blocking {
      do throws(OAuthTokenEndpoint.Failure) {
        return .success(try OAuthTokenEndpoint.exchange(url: url, form: form, trustedCertificates: certificates))
      } catch {
        return .failure(error)
      }
    }
  }
}

/// Wakes one waiter, or the next one to wait.
final class WakeSignal: Sendable {
  private struct State {
    var pending = false
    var waiter: CheckedContinuation<Void, Never>?
  }

  private let state = Mutex(State())

  func signal() {
    let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
      guard let waiter = state.waiter else {
        state.pending = true
        return nil
      }
      state.waiter = nil
      return waiter
    }
    waiter?.resume()
  }

  /// Returns at a signal (one given since the last wait counts) or after `timeout`.
  func wait(timeout: Duration) async {
    await withTaskGroup(of: Void.self) { group in
      group.addTask { await self.waitForSignal() }
      group.addTask { try? await Task.sleep(for: timeout) }
      await group.next()
      group.cancelAll()
    }
  }

  private func waitForSignal() async {
    await withTaskCancellationHandler {
      await withCheckedContinuation { continuation in
        let now = state.withLock { state -> Bool in
          if state.pending || Task.isCancelled {
            state.pending = false
            return true
          }
          state.waiter = continuation
          return false
        }
        if now { continuation.resume() }
      }
    } onCancel: {
      let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
        defer { state.waiter = nil }
        return state.waiter
      }
      waiter?.resume()
    }
  }
}
