import CCurl
import Foundation

/// One HTTP request through libcurl: what the integrations (KSeF, e-Delivery) and the
/// mail component's OAuth2 token endpoint send. Blocking: run it on threads of its own,
/// never on the event loops.
public struct HTTPRequest: Sendable {
  public var method: String
  public var url: String
  /// Sent as given (names are not case-sensitive), after libcurl's own.
  public var headers: [(String, String)]
  public var body: Data?
  /// PEM certificates to trust instead of the system's CAs (a test environment's CA);
  /// empty: the system's. Verification is always on.
  public var trustedCertificates: String
  /// Seconds for the whole exchange, connecting included.
  public var timeout: Double
  /// The largest body taken; a longer one fails the request (`tooLarge`).
  public var maxResponseBytes: Int

  public init(
    method: String = "GET", url: String, headers: [(String, String)] = [], body: Data? = nil,
    trustedCertificates: String = "", timeout: Double = 30, maxResponseBytes: Int = 1 << 20
  ) {
    self.method = method
    self.url = url
    self.headers = headers
    self.body = body
    self.trustedCertificates = trustedCertificates
    self.timeout = timeout
    self.maxResponseBytes = maxResponseBytes
  }
}

/// An answer with any status.
public struct HTTPResponse: Sendable {
  public var status: Int
  /// The last value of each header, by lower-cased name.
  public var headers: [String: String]
  public var body: Data

  public init(status: Int, headers: [String: String] = [:], body: Data = Data()) {
    self.status = status
    self.headers = headers
    self.body = body
  }

  /// The header `name` (any case).
  public func header(_ name: String) -> String? { headers[name.lowercased()] }

  /// The body as a JSON object, nil when it is not one.
  public var jsonObject: [String: Any]? { (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] }
}

/// No answer: why, in words an administrator can act on. Carries no header nor body
/// sent (they may hold a token).
public struct HTTPFailure: Error, Sendable, Hashable, CustomStringConvertible {
  public enum Kind: String, Sendable, Hashable {
    /// The host name does not resolve.
    case resolve
    /// Nothing accepts connections there.
    case connect
    /// No answer within the timeout.
    case timeout
    /// The TLS handshake failed, or the server's certificate does not verify.
    case tls
    /// The answer was longer than allowed.
    case tooLarge = "too_large"
    /// Anything else below HTTP (a malformed URL, a dropped connection).
    case other
  }

  public var kind: Kind
  public var message: String

  public init(_ kind: Kind, _ message: String) {
    self.kind = kind
    self.message = message
  }

  public var description: String { message }
}

public enum HTTPClient {
  /// Sends `request`; the answer whatever its status, or why there was none.
  public static func perform(_ request: HTTPRequest) throws(HTTPFailure) -> HTTPResponse {
    guard let handle = curl_easy_init() else { throw HTTPFailure(.other, "libcurl could not make a handle") }
    defer { curl_easy_cleanup(handle) }
    let received = Received(limit: request.maxResponseBytes)
    var errorBuffer = [CChar](repeating: 0, count: Int(dms_curl_error_size()))
    var list: UnsafeMutablePointer<curl_slist>?
    // An empty Expect: no "100-continue" round trip before a body.
    for line in request.headers.map({ "\($0.0): \($0.1)" }) + ["Expect:"] { list = curl_slist_append(list, line) }
    defer { curl_slist_free_all(list) }
    let code = errorBuffer.withUnsafeMutableBufferPointer { buffer -> CURLcode in
      dms_curl_set_error_buffer(handle, buffer.baseAddress!)
      dms_curl_set_string(handle, CURLOPT_URL, request.url)
      dms_curl_set_long(handle, CURLOPT_NOSIGNAL, 1)
      dms_curl_set_long(handle, CURLOPT_TIMEOUT_MS, max(1, Int(request.timeout * 1000)))
      dms_curl_set_long(handle, CURLOPT_CONNECTTIMEOUT_MS, max(1, Int(min(request.timeout, 10) * 1000)))
      dms_curl_set_long(handle, CURLOPT_SSL_VERIFYPEER, 1)
      dms_curl_set_long(handle, CURLOPT_SSL_VERIFYHOST, 2)
      dms_curl_set_string(handle, CURLOPT_PROTOCOLS_STR, "https,http")
      dms_curl_set_long(handle, CURLOPT_FOLLOWLOCATION, 0)
      trust(request.trustedCertificates, on: handle)
      dms_curl_set_slist(handle, CURLOPT_HTTPHEADER, list)
      switch request.method {
      case "GET": dms_curl_set_long(handle, CURLOPT_HTTPGET, 1)
      case "POST":
        let body = request.body ?? Data()
        dms_curl_set_long(handle, CURLOPT_POSTFIELDSIZE_LARGE, body.count)
        if body.isEmpty {
          dms_curl_set_string(handle, CURLOPT_COPYPOSTFIELDS, "")
        } else {
          body.withUnsafeBytes { bytes in
            // COPYPOSTFIELDS copies `POSTFIELDSIZE` bytes (a body may hold NULs).
            _ = dms_curl_set_pointer(
              handle, CURLOPT_COPYPOSTFIELDS, UnsafeMutableRawPointer(mutating: bytes.baseAddress))
          }
        }
      default: dms_curl_set_string(handle, CURLOPT_CUSTOMREQUEST, request.method)
      }
      let context = Unmanaged.passUnretained(received).toOpaque()
      dms_curl_set_pointer(handle, CURLOPT_WRITEDATA, context)
      dms_curl_set_write_function(handle, collectBody)
      dms_curl_set_pointer(handle, CURLOPT_HEADERDATA, context)
      dms_curl_set_header_function(handle, collectHeader)
      return curl_easy_perform(handle)
    }
    guard code == CURLE_OK else {
      let text = errorBuffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
      let detail = text.isEmpty ? String(cString: curl_easy_strerror(code)) : text
      throw HTTPFailure(Self.kind(code, tooLarge: received.overflowed), Self.describe(code, detail, request))
    }
    return HTTPResponse(status: Int(dms_curl_response_code(handle)), headers: received.headers, body: received.data)
  }

  static func kind(_ code: CURLcode, tooLarge: Bool) -> HTTPFailure.Kind {
    if tooLarge { return .tooLarge }
    switch code {
    case CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY: return .resolve
    case CURLE_COULDNT_CONNECT: return .connect
    case CURLE_OPERATION_TIMEDOUT: return .timeout
    case CURLE_SSL_CONNECT_ERROR, CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CACERT_BADFILE,
      CURLE_SSL_CERTPROBLEM, CURLE_SSL_CIPHER, CURLE_SSL_ISSUER_ERROR, CURLE_SSL_PINNEDPUBKEYNOTMATCH:
      return .tls
    default: return .other
    }
  }

  static func describe(_ code: CURLcode, _ detail: String, _ request: HTTPRequest) -> String {
    let host = URLComponents(string: request.url)?.host ?? request.url
    switch kind(code, tooLarge: false) {
    case .resolve: return "the host \(host) does not resolve (\(detail))"
    case .connect: return "nothing accepts connections at \(host) (\(detail))"
    case .timeout: return "\(host) did not answer within \(Int(request.timeout)) s (\(detail))"
    case .tls: return "the TLS connection to \(host) failed: \(detail)"
    case .tooLarge, .other: return "\(host): \(detail)"
    }
  }
}

/// Trusts only the PEM certificates in `pem` (when not empty) instead of the system's
/// CAs, for the transfers of `handle` (CURLOPT_CAINFO_BLOB copies the bytes).
public func trust(_ pem: String, on handle: UnsafeMutableRawPointer) {
  guard !pem.isEmpty else { return }
  var bytes = Array(pem.utf8)
  bytes.withUnsafeMutableBytes { buffer in
    var blob = curl_blob(data: buffer.baseAddress, len: buffer.count, flags: UInt32(CURL_BLOB_COPY))
    _ = withUnsafeMutablePointer(to: &blob) { dms_curl_set_pointer(handle, CURLOPT_CAINFO_BLOB, $0) }
  }
}

/// What arrives: the body (up to a limit) and the headers.
private final class Received {
  let limit: Int
  var data = Data()
  var headers: [String: String] = [:]
  var overflowed = false

  init(limit: Int) { self.limit = limit }
}

private let collectBody: dms_curl_write_callback = { buffer, size, count, context in
  guard let buffer, let context else { return 0 }
  let received = Unmanaged<Received>.fromOpaque(context).takeUnretainedValue()
  let length = size * count
  guard received.data.count + length <= received.limit else {
    received.overflowed = true
    return 0
  }
  received.data.append(UnsafeRawPointer(buffer).assumingMemoryBound(to: UInt8.self), count: length)
  return length
}

private let collectHeader: dms_curl_write_callback = { buffer, size, count, context in
  guard let buffer, let context else { return 0 }
  let received = Unmanaged<Received>.fromOpaque(context).takeUnretainedValue()
  let length = size * count
  let line = String(decoding: UnsafeRawBufferPointer(start: buffer, count: length), as: UTF8.self)
  if line.hasPrefix("HTTP/") {
    // A new response (after a 100 Continue): its own headers.
    received.headers = [:]
  } else if let colon = line.firstIndex(of: ":"), received.headers.count < 200 {
    let name = line[..<colon].trimmingCharacters(in: .whitespaces).lowercased()
    received.headers[name] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespacesAndNewlines)
  }
  return length
}
