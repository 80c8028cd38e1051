import DMSDomain
import DMSMailTransport
import DMSMessages
import DMSRPC
import DMSStorage
import DMSStubs
import Foundation

/// OAuth2 sign-in of the mail account (MAIL-22 … MAIL-24; `MailOAuth`).
extension MailService {
  /// The company's saved OAuth2 account.
  private func oauthAccount(_ context: ServerContext) async throws -> (CompanyKey, MailAccount, MailAccount.OAuth) {
    guard let key = try await company(context), let account = try await store.read(MailAccount.self, of: key)?.value,
      account.authentication == .oauth2, let oauth = account.oauth
    else {
      throw RPCError(
        code: .failedPrecondition,
        message: "the mail account does not sign in with OAuth2: save it with OAuth2 authentication first (MAIL-21)")
    }
    return (key, account, oauth)
  }

  public func beginOauthSignIn(
    request: Dms_Settings_V1_BeginMailOAuthRequest, context: ServerContext
  ) async throws -> Dms_Settings_V1_MailOAuthSignIn {
    guard MailOAuth.isRedirectURI(request.redirectUri) else {
      throw ValidationFailure([
        RuleViolation(
          field: "redirect_uri", rule: "MAIL-22",
          message: "must be http://127.0.0.1:PORT/…, http://localhost:PORT/… or an https:// URL")
      ])
    }
    let (key, account, oauth) = try await oauthAccount(context)
    let pending = MailOAuth.Pending(
      state: MailOAuth.randomToken(), verifier: MailOAuth.randomToken(), redirectURI: request.redirectUri,
      expiresAt: Date().timeIntervalSince1970 + MailOAuth.lifetime)
    let secret = MailOAuth.encode(pending)
    _ = try await MailOAuth.writeSecrets(
      [MailOAuth.pending: .set(secret)], of: key, in: store, by: context.auditActor)
    var response = Dms_Settings_V1_MailOAuthSignIn()
    response.authorizationURL = MailOAuth.authorizationURL(account, oauth: oauth, pending: pending)
    response.state = pending.state
    response.expiresAtUnixMs = Int64(pending.expiresAt * 1000)
    return response
  }

  public func completeOauthSignIn(
    request: Dms_Settings_V1_CompleteMailOAuthRequest, context: ServerContext
  ) async throws -> Dms_Settings_V1_MailOAuthResult {
    let (key, account, oauth) = try await oauthAccount(context)
    let pending = MailOAuth.decode(
      MailOAuth.Pending.self,
      try await store.secretForUse(MailAccount.self, field: MailOAuth.pending, of: key))
    guard let pending, !request.state.isEmpty, pending.state == request.state,
      pending.expiresAt > Date().timeIntervalSince1970
    else {
      throw RPCError(
        code: .failedPrecondition,
        message: "no sign-in is pending with this state, or it ended (10 minutes): begin it again (MAIL-22)")
    }
    guard !request.code.isEmpty, request.code.count <= 4096 else {
      throw ValidationFailure([RuleViolation(field: "code", rule: "MAIL-22", message: "is required")])
    }
    let form = [
      ("grant_type", "authorization_code"), ("client_id", oauth.clientID), ("code", request.code),
      ("redirect_uri", pending.redirectURI), ("code_verifier", pending.verifier), ("scope", oauth.scopes),
    ]
    let exchanged = await delivery.exchangeTokens(form, oauth: oauth, trusting: account.trustedCertificates)
    let now = Date()
    var secrets: [String: SecretChange] = [MailOAuth.pending: .clear]
    var response = Dms_Settings_V1_MailOAuthResult()
    switch exchanged {
    case .success(let tokens):
      secrets.merge(MailOAuth.secrets(tokens, now: now)) { $1 }
      response.signedIn = true
      response.message = "Signed in user \(account.login)"  // MAIL-23
    case .failure(let failure):
      response.message = "Could not sign in to the account of user \(account.login): \(failure)"  // MAIL-23
    }
    let stored = try await MailOAuth.writeSecrets(secrets, of: key, in: store, by: context.auditActor)
    response.account = MailAccount.message(
      stored, company: key.code, profile: try await store.read(MailProfile.self, of: key)?.value)
    return response
  }
}
