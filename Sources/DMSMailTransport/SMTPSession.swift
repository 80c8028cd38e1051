import CCurl
import DMSHTTP
import Foundation

/// One SMTP connection's sender, through libcurl: the connection is kept open between
/// messages (libcurl reuses it while the endpoint stays the same) and closed with
/// `close()` or when the session goes away.
///
/// Blocking: `send` waits for the server. Call it off the event loops (`SMTPSenders`
/// runs it on its thread pool), from one thread at a time.
public final class SMTPSession {
  public let endpoint: SMTPEndpoint
  private var handle: UnsafeMutableRawPointer?
  /// The message being uploaded, and how far.
  fileprivate var upload = Data()
  fileprivate var uploaded = 0
  /// The server's replies to the last message (CURLINFO_HEADER_IN lines).
  fileprivate var replies: [String] = []
  private var errorBuffer = [CChar](repeating: 0, count: Int(dms_curl_error_size()))
  /// Connections libcurl opened for this session (a test of reuse).
  public private(set) var connectionsOpened = 0

  private static let globalInit: Void = {
    curl_global_init(Int(CURL_GLOBAL_DEFAULT))
  }()

  public init(endpoint: SMTPEndpoint) {
    _ = Self.globalInit
    self.endpoint = endpoint
  }

  deinit { close() }

  /// Closes the connection (the next `send` opens another).
  public func close() {
    if let handle { curl_easy_cleanup(handle) }
    handle = nil
  }

  /// Sends `message`; the server's last reply ("250 …") when it took it.
  @discardableResult
  public func send(_ message: MIMEMessage) throws(SMTPFailure) -> String {
    if handle == nil { handle = curl_easy_init() }
    guard let handle else {
      throw SMTPFailure(kind: .transient, replyCode: 0, message: "libcurl could not start a transfer")
    }
    upload = message.bytes
    uploaded = 0
    replies = []
    errorBuffer.withUnsafeMutableBufferPointer { $0[0] = 0 }
    var recipients: UnsafeMutablePointer<curl_slist>? = nil
    for recipient in message.recipients { recipients = curl_slist_append(recipients, "<\(recipient)>") }
    defer {
      curl_slist_free_all(recipients)
      upload = Data()
    }
    let code = errorBuffer.withUnsafeMutableBufferPointer { buffer -> CURLcode in
      configure(handle, message: message, recipients: recipients, errorBuffer: buffer.baseAddress!)
      let context = Unmanaged.passUnretained(self).toOpaque()
      dms_curl_set_pointer(handle, CURLOPT_READDATA, context)
      dms_curl_set_pointer(handle, CURLOPT_DEBUGDATA, context)
      return curl_easy_perform(handle)
    }
    connectionsOpened += dms_curl_connects(handle)
    let replyCode = dms_curl_response_code(handle)
    let lastReply = replies.last ?? ""
    if code == CURLE_OK { return lastReply }
    let curlText = errorBuffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    let described = curlText.isEmpty ? String(cString: curl_easy_strerror(code)) : curlText
    // After a failure the connection may be in any state: the next message opens another.
    close()
    throw Self.failure(code: code, replyCode: Int(replyCode), reply: lastReply, curlText: described)
  }

  private func configure(
    _ handle: UnsafeMutableRawPointer, message: MIMEMessage, recipients: UnsafeMutablePointer<curl_slist>?,
    errorBuffer: UnsafeMutablePointer<CChar>
  ) {
    dms_curl_set_error_buffer(handle, errorBuffer)
    dms_curl_set_string(handle, CURLOPT_URL, endpoint.url)
    dms_curl_set_long(handle, CURLOPT_NOSIGNAL, 1)
    dms_curl_set_long(handle, CURLOPT_CONNECTTIMEOUT_MS, Int(endpoint.connectTimeout * 1000))
    dms_curl_set_long(handle, CURLOPT_TIMEOUT_MS, Int(endpoint.sendTimeout * 1000))
    dms_curl_set_long(handle, CURLOPT_SSL_VERIFYPEER, 1)
    dms_curl_set_long(handle, CURLOPT_SSL_VERIFYHOST, 2)
    trust(endpoint.trustedCertificates, on: handle)
    switch endpoint.security {
    case .none, .implicitTLS: dms_curl_set_long(handle, CURLOPT_USE_SSL, Int(CURLUSESSL_NONE.rawValue))
    case .startTLS(let required):
      dms_curl_set_long(
        handle, CURLOPT_USE_SSL, Int(required ? CURLUSESSL_ALL.rawValue : CURLUSESSL_TRY.rawValue))
    }
    switch endpoint.credential {
    case .none:
      dms_curl_set_string(handle, CURLOPT_USERNAME, nil)
      dms_curl_set_string(handle, CURLOPT_PASSWORD, nil)
      dms_curl_set_string(handle, CURLOPT_XOAUTH2_BEARER, nil)
    case .password(let login, let password):
      dms_curl_set_string(handle, CURLOPT_USERNAME, login)
      dms_curl_set_string(handle, CURLOPT_PASSWORD, password)
      dms_curl_set_string(handle, CURLOPT_XOAUTH2_BEARER, nil)
    case .bearer(let login, let token):
      dms_curl_set_string(handle, CURLOPT_USERNAME, login)
      dms_curl_set_string(handle, CURLOPT_PASSWORD, nil)
      dms_curl_set_string(handle, CURLOPT_XOAUTH2_BEARER, token)
      dms_curl_set_string(handle, CURLOPT_LOGIN_OPTIONS, "AUTH=XOAUTH2")
    }
    dms_curl_set_string(handle, CURLOPT_MAIL_FROM, "<\(message.sender)>")
    dms_curl_set_slist(handle, CURLOPT_MAIL_RCPT, recipients)
    dms_curl_set_long(handle, CURLOPT_UPLOAD, 1)
    dms_curl_set_long(handle, CURLOPT_INFILESIZE, message.bytes.count)
    dms_curl_set_read_function(handle, smtpRead)
    dms_curl_set_long(handle, CURLOPT_VERBOSE, 1)
    dms_curl_set_debug_function(handle, smtpDebug)
  }

  /// Transient or permanent, from libcurl's result and the server's last reply.
  static func failure(code: CURLcode, replyCode: Int, reply: String, curlText: String) -> SMTPFailure {
    let message = reply.isEmpty ? curlText : "\(reply) (\(curlText))"
    if (400..<500).contains(replyCode) { return SMTPFailure(kind: .transient, replyCode: replyCode, message: message) }
    if (500..<600).contains(replyCode) { return SMTPFailure(kind: .permanent, replyCode: replyCode, message: message) }
    let permanent: Set<UInt32> = [
      CURLE_UNSUPPORTED_PROTOCOL.rawValue, CURLE_URL_MALFORMAT.rawValue, CURLE_LOGIN_DENIED.rawValue,
      CURLE_PEER_FAILED_VERIFICATION.rawValue, CURLE_USE_SSL_FAILED.rawValue, CURLE_SSL_CACERT_BADFILE.rawValue,
      CURLE_SSL_CERTPROBLEM.rawValue,
    ]
    return SMTPFailure(
      kind: permanent.contains(code.rawValue) ? .permanent : .transient, replyCode: replyCode, message: message)
  }
}

/// CURLOPT_READFUNCTION: the next part of the message.
private let smtpRead: dms_curl_read_callback = { buffer, size, count, context in
  guard let buffer, let context else { return 0 }
  let session = Unmanaged<SMTPSession>.fromOpaque(context).takeUnretainedValue()
  let length = min(size * count, session.upload.count - session.uploaded)
  guard length > 0 else { return 0 }
  session.upload.withUnsafeBytes { bytes in
    UnsafeMutableRawPointer(buffer).copyMemory(from: bytes.baseAddress! + session.uploaded, byteCount: length)
  }
  session.uploaded += length
  return length
}

/// CURLOPT_DEBUGFUNCTION: keeps the server's replies (never what is sent: it holds the
/// credentials).
private let smtpDebug: dms_curl_debug_callback = { _, type, data, size, context in
  guard type == CURLINFO_HEADER_IN, let data, let context else { return 0 }
  let session = Unmanaged<SMTPSession>.fromOpaque(context).takeUnretainedValue()
  let line = String(decoding: UnsafeRawBufferPointer(start: data, count: size), as: UTF8.self)
    .trimmingCharacters(in: .whitespacesAndNewlines)
  if !line.isEmpty {
    if session.replies.count >= 32 { session.replies.removeFirst() }
    session.replies.append(line)
  }
  return 0
}
