import CCurl
import Foundation

/// An OAuth2 token endpoint (MAIL-22 … MAIL-24): the authorization code or a refresh
/// token exchanged for tokens, by a form POST through libcurl (RFC 6749 §4.1.3, §6;
/// PKCE, RFC 7636). Blocking: run it off the event loops (`SMTPSenderPool.run`).
public enum OAuthTokenEndpoint {
  /// What the endpoint answered.
  public struct Tokens: Sendable, Hashable {
    public var accessToken: String
    /// A new refresh token when the provider rotates them; nil keeps the one used.
    public var refreshToken: String?
    /// Seconds the access token lasts.
    public var expiresIn: Double
  }

  /// A refused or failed exchange.
  public struct Failure: Error, Sendable, Hashable, CustomStringConvertible {
    /// The HTTP status (0: no answer).
    public var status: Int
    /// The OAuth2 error code (`invalid_grant`), or what failed below HTTP.
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
    guard let handle = curl_easy_init() else { throw Failure(status: 0, error: "libcurl", message: "no handle") }
    defer { curl_easy_cleanup(handle) }
    let body = form.map { "\(escape($0.0))=\(escape($0.1))" }.joined(separator: "&")
    let response = ResponseBody()
    var errorBuffer = [CChar](repeating: 0, count: Int(dms_curl_error_size()))
    let headers = curl_slist_append(nil, "Accept: application/json")
    defer { curl_slist_free_all(headers) }
    let code = errorBuffer.withUnsafeMutableBufferPointer { buffer -> CURLcode in
      dms_curl_set_error_buffer(handle, buffer.baseAddress!)
      dms_curl_set_string(handle, CURLOPT_URL, url)
      dms_curl_set_long(handle, CURLOPT_NOSIGNAL, 1)
      dms_curl_set_long(handle, CURLOPT_TIMEOUT_MS, Int(timeout * 1000))
      dms_curl_set_long(handle, CURLOPT_SSL_VERIFYPEER, 1)
      dms_curl_set_long(handle, CURLOPT_SSL_VERIFYHOST, 2)
      dms_curl_set_string(handle, CURLOPT_PROTOCOLS_STR, "https,http")
      trust(trustedCertificates, on: handle)
      dms_curl_set_slist(handle, CURLOPT_HTTPHEADER, headers)
      dms_curl_set_string(handle, CURLOPT_COPYPOSTFIELDS, body)
      dms_curl_set_pointer(handle, CURLOPT_WRITEDATA, Unmanaged.passUnretained(response).toOpaque())
      dms_curl_set_write_function(handle, collectBody)
      return curl_easy_perform(handle)
    }
    guard code == CURLE_OK else {
      let text = errorBuffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
      throw Failure(
        status: 0, error: "unreachable", message: text.isEmpty ? String(cString: curl_easy_strerror(code)) : text)
    }
    let status = Int(dms_curl_response_code(handle))
    let json = (try? JSONSerialization.jsonObject(with: response.data)) as? [String: Any] ?? [:]
    guard status == 200, let access = json["access_token"] as? String, !access.isEmpty else {
      let error = json["error"] as? String ?? (status == 200 ? "invalid_response" : "http_\(status)")
      // The description is the provider's text: kept short, and it carries no token.
      let message = String((json["error_description"] as? String ?? "").prefix(300))
      throw Failure(status: status == 200 ? 502 : status, error: error, message: message)
    }
    let expires = (json["expires_in"] as? Double) ?? Double(json["expires_in"] as? String ?? "") ?? 3600
    return Tokens(accessToken: access, refreshToken: json["refresh_token"] as? String, expiresIn: expires)
  }

  /// `application/x-www-form-urlencoded` escaping.
  public static func escape(_ text: String) -> String {
    let unreserved = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~".utf8)
    return text.utf8.map { unreserved.contains($0) ? String(UnicodeScalar($0)) : String(format: "%%%02X", $0) }
      .joined()
  }
}

/// The body being received (at most 1 MiB).
private final class ResponseBody {
  var data = Data()
}

private let collectBody: dms_curl_write_callback = { buffer, size, count, context in
  guard let buffer, let context else { return 0 }
  let body = Unmanaged<ResponseBody>.fromOpaque(context).takeUnretainedValue()
  let length = size * count
  guard body.data.count + length <= 1 << 20 else { return 0 }
  body.data.append(UnsafeRawPointer(buffer).assumingMemoryBound(to: UInt8.self), count: length)
  return length
}
