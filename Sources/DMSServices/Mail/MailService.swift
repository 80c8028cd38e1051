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
  /// Who may save and delete the database profile (MAIL-6).
  private let administrators: DatabaseAdministrators
  private let logger: Logger

  /// The service over `store`, queueing for `delivery`; `administrators` check the
  /// database profile's saves and deletions.
  public init(
    store: any SettingsStore, configuration: DeploymentConfiguration, delivery: MailDelivery,
    administrators: DatabaseAdministrators, logger: Logger
  ) {
    self.store = store
    self.configuration = configuration
    self.audit = SecretAudit(logger: logger)
    self.delivery = delivery
    self.administrators = administrators
    self.logger = logger
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
    guard let key = try await company(context) else {
      return MailAccount.message(nil, company: configuration.singleCompanyCode, profile: nil)
    }
    return try await accountMessage(of: key)
  }

  /// The company's account and database profile as last committed.
  func accountMessage(of key: CompanyKey) async throws -> Dms_Settings_V1_MailAccount {
    MailAccount.message(
      try await store.read(MailAccount.self, of: key), company: key.code,
      profile: try await store.read(MailProfile.self, of: key)?.value)
  }

  public func updateAccount(
    request: Dms_Settings_V1_UpdateMailAccountRequest, context: ServerContext
  ) async throws -> Dms_Settings_V1_MailAccount {
    var v = Validator()
    let account = MailAccount(message: request.account, into: &v)
    let password = secretChange(
      request.hasPassword ? request.password : nil, field: "password", rule: "MAIL-17", into: &v)
    if request.account.revision < 0 { v.add("account.revision", "", "must not be negative") }
    // MAIL-6: the database profile is saved by the database administrator; MAIL-25: the
    // mail component's save asks for no one.
    var administrator: (login: String, password: String)?
    if account.transport == .databaseProfile {
      administrator = DatabaseAdministrators.credentials(
        request.hasDatabaseAdministrator ? request.databaseAdministrator : nil, field: "database_administrator",
        into: &v)
    } else if request.hasDatabaseAdministrator {
      v.add(
        "database_administrator", "MAIL-25",
        "is only for the database profile (MAIL-6): the mail component's account is saved without it")
    }
    try v.check()
    let known = try await company(context)
    let code = known?.code ?? configuration.singleCompanyCode
    if let administrator {
      // The account's own rules first (checked again in the transaction): a broken one is
      // named before the administrator is asked for.
      var passwordSet = false
      if let known {
        passwordSet = try await store.read(MailAccount.self, of: known)?.secretsSet.contains(Self.password) ?? false
      }
      do throws(ValidationFailure) {
        _ = try account.validated(password: password, passwordSet: passwordSet)
      } catch {
        throw error.under("account", keeping: ["password"])
      }
      try await administrators.verify(
        login: administrator.login, password: administrator.password, company: code, in: store, context: context,
        logger: logger)
    }
    let revision = request.account.revision
    let savedBy = administrator?.login
    let write: @Sendable (any CompanyTransaction) throws -> Dms_Settings_V1_MailAccount = { tx in
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
      let stored = try tx.write(validated, secrets: secrets, expectedRevision: revision)
      // MAIL-5, MAIL-6: the profile with the account, in one transaction; a switch to the
      // mail component leaves it.
      var profile = try tx.read(MailProfile.self)
      if let savedBy {
        let written = MailProfile(company: code, savedBy: savedBy)
        if profile?.value != written {
          profile = try tx.write(written, secrets: [:], expectedRevision: profile?.revision ?? 0)
        }
      }
      return MailAccount.message(stored, company: code, profile: profile?.value)
    }
    if let key = known {
      return try await store.transaction(company: key, by: context.auditActor) { tx in try write(tx) }
    }
    // Single-company mode's first save registers the single company, in the same
    // transaction.
    return try await store.registry.transaction(by: context.auditActor) { tx in
      let key = try SingleCompany.key(in: tx, code: code) ?? tx.createCompany(code: code)
      return try write(tx.scoped(to: key))
    }
  }

  public func deleteAccount(
    request: Dms_Settings_V1_DeleteMailAccountRequest, context: ServerContext
  ) async throws -> Dms_Settings_V1_DeleteMailAccountResponse {
    var v = Validator()
    if request.revision < 0 { v.add("revision", "", "must not be negative") }
    try v.check()
    let nothing = RPCError(code: .notFound, message: "the company has no mail account nor database profile saved")
    guard let key = try await company(context) else { throw nothing }
    guard try await store.read(MailProfile.self, of: key) != nil else {
      guard try await store.read(MailAccount.self, of: key) != nil else { throw nothing }
      if request.hasDatabaseAdministrator {
        v.add(
          "database_administrator", "MAIL-6",
          "is only for deleting a database profile, and the company has none: the account is deleted without it")
        try v.check()
      }
      return try await delete(key, revision: request.revision, profile: false, context: context, nothing: nothing)
    }
    // MAIL-6: the profile goes only with the database administrator's say.
    let administrator = DatabaseAdministrators.credentials(
      request.hasDatabaseAdministrator ? request.databaseAdministrator : nil, field: "database_administrator",
      into: &v)
    try v.check()
    try await administrators.verify(
      login: administrator.login, password: administrator.password, company: key.code, in: store, context: context,
      logger: logger)
    return try await delete(key, revision: request.revision, profile: true, context: context, nothing: nothing)
  }

  /// Removes `key`'s account (with its secrets) at `revision`, and its profile when
  /// `profile` (one that appeared meanwhile is kept: it was not authorised).
  private func delete(
    _ key: CompanyKey, revision: Int64, profile: Bool, context: ServerContext, nothing: RPCError
  ) async throws -> Dms_Settings_V1_DeleteMailAccountResponse {
    try await store.transaction(company: key, by: context.auditActor) { tx in
      let current = try tx.revision(of: MailAccount.self)
      let hasProfile = try tx.read(MailProfile.self) != nil
      guard current != 0 || (profile && hasProfile) else { throw nothing }
      guard current == revision else {
        throw StoreError(
          .staleRevision, "\(MailAccount.area) of company \(key.code) is at revision \(current), not \(revision)",
          currentRevision: current)
      }
      if hasProfile && !profile {
        throw RPCError(
          code: .aborted,
          message:
            "a database profile was saved meanwhile: read the account again; its deletion needs the database administrator (MAIL-6)"
        )
      }
      try tx.remove(MailAccount.self)
      if profile { try tx.remove(MailProfile.self) }
    }
    return Dms_Settings_V1_DeleteMailAccountResponse()
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
    let key = try await company(context)
    if let key { stored = try await store.read(MailAccount.self, of: key) }
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
    var profile: MailProfile?
    if let key { profile = try await store.read(MailProfile.self, of: key)?.value }
    return MailAccount.message(draft, company: key?.code ?? configuration.singleCompanyCode, profile: profile)
  }
}
