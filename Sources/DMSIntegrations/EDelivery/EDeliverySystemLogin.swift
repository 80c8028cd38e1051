import DMSHTTP
import Foundation

/// INT-7a: a system's login to e-Delivery: OpenID Connect `client_credentials` at the
/// realm's token endpoint, with the signed client assertion and the mailbox as the login
/// hint. Blocking: run it on threads of its own.
public enum EDeliverySystemLogin {
  /// The realm of `tokenURL` (`…/auth/realms/EDOR` of `…/protocol/openid-connect/token`):
  /// the assertion's audience.
  public static func realm(ofTokenURL tokenURL: String) -> String {
    let suffix = "/protocol/openid-connect/token"
    return tokenURL.hasSuffix(suffix) ? String(tokenURL.dropLast(suffix.count)) : tokenURL
  }

  /// The form INT-7a sends.
  public static func form(assertion: EDeliveryClientAssertion, address: String) -> [(String, String)] {
    [
      ("grant_type", "client_credentials"),
      ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
      ("client_assertion", assertion.token), ("login_hint", "ADE.\(address)"),
    ]
  }

  /// Exchanges `assertion` at `tokenURL`: the token's type and lifetime (the token itself
  /// is dropped), or the endpoint's OAuth error, or why there was no answer.
  public static func signIn(
    tokenURL: String, assertion: EDeliveryClientAssertion, address: String, trustedCertificates: String,
    timeout: Double
  ) throws(OAuthTokenEndpoint.Failure) -> OAuthTokenEndpoint.Tokens {
    try OAuthTokenEndpoint.exchange(
      url: tokenURL, form: form(assertion: assertion, address: address), trustedCertificates: trustedCertificates,
      timeout: timeout)
  }
}
