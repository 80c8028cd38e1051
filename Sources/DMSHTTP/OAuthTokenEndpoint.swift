import Foundation

/// An OAuth2 token endpoint: a grant exchanged for tokens by a form POST through libcurl
/// (RFC 6749 §4.1.3, §4.4, §6; PKCE, RFC 7636; client assertions, RFC 7523): the mail
/// component's sign-in (MAIL-22 … MAIL-24) and e-Delivery's system login (INT-7a).
/// Blocking: run it off the event loops.
public enum OAuthTokenEndpoint {
  /// What the endpoint answered.
  public struct Tokens: Sendable, Hashable {
    public var accessToken: String
    /// A new refresh token when the provider rotates them; nil keeps the one used.
    public var refreshToken: String?
    /// Seconds the access token lasts.
    public var expiresIn: Double
    /// `token_type` ("Bearer"), as given.
    public var tokenType: String = ""
  }

  /// A refused or failed exchange.
  public struct Failure: Error, Sendable, Hashable, CustomStringConvertible {
    /// The HTTP status (0: no answer).
    public var status: Int
    /// The OAuth2 error code (`invalid_grant`), or what failed below HTTP
    /// (`HTTPFailure.Kind`: `timeout`, `tls`, `resolve`, `connect`, …).
    public var error: String
    /// The provider's description, when it gave one; never a token.
    public var message: String

    /// Whether the provider refused the grant (a new sign-in is needed), rather than
    /// failing to answer (try again later).
    public var refused: Bool { (400..<500).contains(status) }

    public var description: String { message.isEmpty ? error : "\(error): \(message)" }
  }

  /// POSTs `form` to `url`; the tokens, or why not. `trustedCertificates` (PEM) replace
  /// the system's CAs when not empty.
  public static func exchange(
    url: String, form: [(String, String)], trustedCertificates: String = "", timeout: Double = 30
  ) throws(Failure) -> Tokens {
    let body = form.map { "\(escape($0.0))=\(escape($0.1))" }.joined(separator: "&")
    let response: HTTPResponse
    do {
      response = try HTTPClient.perform(
        HTTPRequest(
          method: "POST", url: url,
          headers: [("Accept", "application/json"), ("Content-Type", "application/x-www-form-urlencoded")],
          body: Data(body.utf8), trustedCertificates: trustedCertificates, timeout: timeout))
    } catch {
      throw Failure(status: 0, error: error.kind.rawValue, message: error.message)
    }
    let status = response.status
    let json = response.jsonObject ?? [:]
    guard status == 200, let access = json["access_token"] as? String, !access.isEmpty else {
      let error = json["error"] as? String ?? (status == 200 ? "invalid_response" : "http_\(status)")
      // The description is the provider's text: kept short, and it carries no token.
      let message = String((json["error_description"] as? String ?? "").prefix(300))
      throw Failure(status: status == 200 ? 502 : status, error: error, message: message)
    }
    let expires = (json["expires_in"] as? Double) ?? Double(json["expires_in"] as? String ?? "") ?? 3600
    return Tokens(
      accessToken: access, refreshToken: json["refresh_token"] as? String, expiresIn: expires,
      tokenType: json["token_type"] as? String ?? "")
  }

  /// `application/x-www-form-urlencoded` escaping.
  public static func escape(_ text: String) -> String {
    let unreserved = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~".utf8)
    return text.utf8.map { unreserved.contains($0) ? String(UnicodeScalar($0)) : String(format: "%%%02X", $0) }
      .joined()
  }
}
