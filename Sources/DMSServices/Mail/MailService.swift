import DMSDomain
import DMSMessages
import DMSRPC
import DMSStorage
import DMSStubs
import Foundation
import Logging

/// `dms.settings.v1.Mail`: the mail account notifications are sent from (MAIL-1 …
/// MAIL-22, PRESET-1 … 3), a company document (`mail.account`) of the company the call
/// names (multi-company mode) or of the single company.
public struct MailService: Dms_Settings_V1_Mail.ServiceProtocol {
  let store: any SettingsStore
  private let configuration: DeploymentConfiguration
  private let audit: SecretAudit
  /// The worker: woken by a queued message; sends the test message.
  let delivery: MailDelivery

  /// The service over `store`, queueing for `delivery`.
  public init(store: any SettingsStore, configuration: DeploymentConfiguration, delivery: MailDelivery, logger: Logger)
  {
    self.store = store
    self.configuration = configuration
    self.audit = SecretAudit(logger: logger)
    self.delivery = delivery
  }

  private static let password = MailAccount.Secret.password.rawValue
  private static let tokens = [
    MailAccount.Secret.oauthAccessToken.rawValue, MailAccount.Secret.oauthRefreshToken.rawValue,
    MailAccount.Secret.oauthPending.rawValue,
  ]

  /// The company the call acts for: in multi-company mode the one the `company`
  /// metadata names (the authorizer has checked that the caller belongs to it); in
  /// single-company mode the single company, nil before anything was saved.
  func company(_ context: ServerContext) async throws -> CompanyKey? {
    guard configuration.mode == .multiCompany else {
      return try await SingleCompany.key(in: store, configuration: configuration)
    }
    guard let code = context.metadata[MetadataKey.company], !code.isEmpty else {
      throw RPCError(
        code: .invalidArgument,
        message: "name the company in the `company` metadata (its short name, ERP-3): mail accounts are per company")
    }
    return try await reachableCompany(code, in: store.registry, context: context)
  }

  public func getAccount(
    request: Dms_Settings_V1_GetMailAccountRequest, context: ServerContext
  ) async throws -> Dms_Settings_V1_MailAccount {
    guard let key = try await company(context) else { return MailAccount.message(nil) }
    return MailAccount.message(try await store.read(MailAccount.self, of: key))
  }

  public func updateAccount(
    request: Dms_Settings_V1_UpdateMailAccountRequest, context: ServerContext
  ) async throws -> Dms_Settings_V1_MailAccount {
    var v = Validator()
    let account = MailAccount(message: request.account, into: &v)
    let password = secretChange(
      request.hasPassword ? request.password : nil, field: "password", rule: "MAIL-17", into: &v)
    if request.account.revision < 0 { v.add("account.revision", "", "must not be negative") }
    try v.check()
    if account.transport == .databaseProfile {
      throw RPCError(
        code: .failedPrecondition,
        message:
          "the database profile (MAIL-1) is saved with the database administrator's login and password (MAIL-6), "
          + "which this release does not take yet: use the mail component")
    }
    let revision = request.account.revision
    let write: @Sendable (any CompanyTransaction) throws -> Stored<MailAccount> = { tx in
      let current = try tx.read(MailAccount.self)
      let passwordSet = current?.secretsSet.contains(Self.password) ?? false
      let validated: MailAccount
      do throws(ValidationFailure) {
        validated = try account.validated(password: password, passwordSet: passwordSet)
      } catch {
        throw error.under("account", keeping: ["password"])
      }
      var secrets = [Self.password: password]
      // MAIL-17: a password only with login and password; MAIL-24: the tokens are the
      // signed-in mailbox's, and go with a change of mailbox or of sign-in.
      if validated.authentication == .oauth2, passwordSet, case .keep = password { secrets[Self.password] = .clear }
      let signedIn = current?.secretsSet.isDisjoint(with: Self.tokens) == false
      if signedIn, validated.authentication != .oauth2 || validated.login != current?.value.login {
        for token in Self.tokens { secrets[token] = .clear }
      }
      return try tx.write(validated, secrets: secrets, expectedRevision: revision)
    }
    let stored: Stored<MailAccount>
    if let key = try await company(context) {
      stored = try await store.transaction(company: key, by: context.auditActor) { tx in try write(tx) }
    } else {
      // Single-company mode's first save registers the single company, in the same
      // transaction.
      let code = configuration.singleCompanyCode
      stored = try await store.registry.transaction(by: context.auditActor) { tx in
        let key = try SingleCompany.key(in: tx, code: code) ?? tx.createCompany(code: code)
        return try write(tx.scoped(to: key))
      }
    }
    return MailAccount.message(stored)
  }

  public func revealPassword(
    request: Dms_Settings_V1_RevealMailPasswordRequest, context: ServerContext
  ) async throws -> Dms_Settings_V1_RevealSecretResponse {
    try requireRevealReason(request.reason)
    let notSet = RPCError(code: .notFound, message: "the mail account has no password set (MAIL-17)")
    guard let key = try await company(context) else { throw notSet }
    return try await audit.reveal(
      MailAccount.self, field: Self.password, of: key, reason: request.reason, in: store, context: context,
      notSet: notSet)
  }

  public func listPresets(
    request: Dms_Settings_V1_ListMailPresetsRequest, context: ServerContext
  ) async throws -> Dms_Settings_V1_ListMailPresetsResponse {
    var response = Dms_Settings_V1_ListMailPresetsResponse()
    response.presets = MailPreset.all.map(\.message)
    return response
  }

  public func draftFromPreset(
    request: Dms_Settings_V1_DraftMailAccountRequest, context: ServerContext
  ) async throws -> Dms_Settings_V1_MailAccount {
    guard let preset = MailPreset.named(request.preset) else {
      throw ValidationFailure([
        RuleViolation(
          field: "preset", rule: "PRESET-1",
          message: "must be one of \(MailPreset.all.map(\.id).joined(separator: ", "))")
      ])
    }
    var stored: Stored<MailAccount>?
    if let key = try await company(context) { stored = try await store.read(MailAccount.self, of: key) }
    var draft =
      stored ?? Stored(value: MailAccount(), revision: 0, secretsSet: [], updatedAt: Date(timeIntervalSince1970: 0))
    draft.value = preset.draft(from: draft.value, address: request.senderAddress)
    guard EmailAddress.isValid(draft.value.senderAddress) else {
      throw ValidationFailure([
        RuleViolation(
          field: "sender_address", rule: "MAIL-9",
          message: "is not an e-mail address (RFC 5322 addr-spec, e.g. dms@example.com)")
      ])
    }
    return MailAccount.message(draft)
  }
}
