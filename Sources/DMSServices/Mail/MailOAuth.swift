import Crypto
import DMSDomain
import DMSHTTP
import DMSMailTransport
import DMSStorage
import Foundation

/// OAuth2 for the mail component (MAIL-22 … MAIL-24): the authorization-code flow with
/// PKCE against the account's authority (Microsoft's layout: `<authority>/oauth2/v2.0/
/// authorize` and `…/token`), and the refresh of an expired access token.
///
/// What is stored, as the account's secrets (encrypted, never returned): the pending
/// sign-in (`oauth.pending`: state, PKCE verifier, redirect URI, end), the access token
/// with its end (`oauth.access_token`, JSON) and the refresh token (`oauth.refresh_token`).
enum MailOAuth {
  /// A sign-in begun: valid for `lifetime`.
  struct Pending: Codable {
    var state: String
    var verifier: String
    var redirectURI: String
    var expiresAt: Double
  }

  /// The access token and when it ends (Unix seconds).
  struct Access: Codable {
    var token: String
    var expiresAt: Double
  }

  static let lifetime: Double = 600
  static let pending = MailAccount.Secret.oauthPending.rawValue
  static let access = MailAccount.Secret.oauthAccessToken.rawValue
  static let refresh = MailAccount.Secret.oauthRefreshToken.rawValue

  static func endpoint(_ oauth: MailAccount.OAuth, _ name: String) -> String {
    (oauth.authority.hasSuffix("/") ? String(oauth.authority.dropLast()) : oauth.authority) + "/oauth2/v2.0/" + name
  }

  /// 32 random bytes, base64url without padding (43 characters, RFC 7636 §4.1).
  static func randomToken() -> String {
    base64URL(Data(SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }))
  }

  /// S256: base64url(SHA-256(verifier)).
  static func challenge(_ verifier: String) -> String {
    base64URL(Data(SHA256.hash(data: Data(verifier.utf8))))
  }

  static func base64URL(_ data: Data) -> String {
    data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
      .replacingOccurrences(of: "=", with: "")
  }

  /// The URL the system browser opens (MAIL-22).
  static func authorizationURL(_ account: MailAccount, oauth: MailAccount.OAuth, pending: Pending) -> String {
    let query: [(String, String)] = [
      ("client_id", oauth.clientID), ("response_type", "code"), ("redirect_uri", pending.redirectURI),
      ("response_mode", "query"), ("scope", oauth.scopes), ("state", pending.state),
      ("code_challenge", challenge(pending.verifier)), ("code_challenge_method", "S256"),
      ("login_hint", account.login),
    ]
    return endpoint(oauth, "authorize") + "?"
      + query.map { "\(OAuthTokenEndpoint.escape($0.0))=\(OAuthTokenEndpoint.escape($0.1))" }.joined(separator: "&")
  }

  /// Whether `uri` may receive the code: a loopback listener (RFC 8252 §7.3) or https.
  static func isRedirectURI(_ uri: String) -> Bool {
    guard let url = URL(string: uri), let host = url.host, uri.count <= 2048 else { return false }
    switch url.scheme {
    case "https": return true
    case "http": return ["127.0.0.1", "localhost", "::1", "[::1]"].contains(host)
    default: return false
    }
  }

  static func encode<T: Encodable>(_ value: T) -> String {
    String(decoding: (try? JSONEncoder().encode(value)) ?? Data(), as: UTF8.self)
  }

  static func decode<T: Decodable>(_ type: T.Type, _ text: String?) -> T? {
    text.flatMap { try? JSONDecoder().decode(type, from: Data($0.utf8)) }
  }

  /// The secrets to store for `tokens` received at `now`.
  static func secrets(_ tokens: OAuthTokenEndpoint.Tokens, now: Date) -> [String: SecretChange] {
    var secrets: [String: SecretChange] = [
      access: .set(encode(Access(token: tokens.accessToken, expiresAt: now.timeIntervalSince1970 + tokens.expiresIn)))
    ]
    if let rotated = tokens.refreshToken, !rotated.isEmpty { secrets[refresh] = .set(rotated) }
    return secrets
  }

  /// Changes the account's OAuth2 secrets, the account as it is (its revision moves, the
  /// change is audited and streamed like any other).
  static func writeSecrets(
    _ secrets: [String: SecretChange], of company: CompanyKey, in store: any SettingsStore, by actor: AuditActor
  ) async throws -> Stored<MailAccount> {
    try await store.transaction(company: company, by: actor) { tx in
      guard let current = try tx.read(MailAccount.self) else { throw StoreError(.notFound, "no mail account") }
      return try tx.write(current.value, secrets: secrets, expectedRevision: current.revision)
    }
  }
}
