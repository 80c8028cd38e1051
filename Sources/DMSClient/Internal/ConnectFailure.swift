import DMSRPC
import NIOCore
import NIOPosix
import NIOSSL

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

/// Why a connection could not be made, said for a person ("connection refused by
/// 127.0.0.1:7411 (is the server running?)"), and whether another attempt may help.
struct ConnectFailure: Error, CustomStringConvertible {
  /// UNAVAILABLE with the reason, as calls report it.
  let rpcError: RPCError
  /// Whether a later attempt may succeed (a refusal while the server restarts), or the
  /// answer is final (no such host, not a DMS RPC server, a certificate not trusted).
  let retryable: Bool
  /// The TLS handshake failed verifying the server's certificate (BoringSSL does not
  /// say whether it expired or its CA is unknown: `CertificateDiagnosis` finds out).
  let certificateNotTrusted: Bool

  init(_ message: String, retryable: Bool, code: StatusCode = .unavailable, certificateNotTrusted: Bool = false) {
    self.rpcError = RPCError(code: code, message: message)
    self.retryable = retryable
    self.certificateNotTrusted = certificateNotTrusted
  }

  var description: String { rpcError.message }

  /// The failure `error` (from NIO's bootstrap or the TLS handshake) means, for a
  /// connection to `host`:`port`.
  static func describing(_ error: any Error, host: String, port: Int, connectTimeout: Duration) -> ConnectFailure {
    let address = Self.address(host: host, port: port)
    switch error {
    case let failure as ConnectFailure:
      return failure
    case let error as NIOConnectionError:
      if let dns = error.dnsAError ?? error.dnsAAAAError, error.connectionErrors.isEmpty {
        return Self.dnsFailure(dns, host: host)
      }
      // One attempt per address the name resolved to: the first one says it for all
      // in the common case (one address).
      if let first = error.connectionErrors.first {
        return describing(first.error, host: host, port: port, connectTimeout: connectTimeout)
      }
      return ConnectFailure("cannot connect to \(address)", retryable: true)
    case let error as SocketAddressError.UnknownHost:
      return Self.dnsFailure(error, host: host)
    case let error as ChannelError:
      if case .connectTimeout = error {
        return ConnectFailure(
          "no answer from \(address) within \(Self.seconds(connectTimeout)) (connect timeout)", retryable: true)
      }
      return ConnectFailure("cannot connect to \(address): \(error)", retryable: true)
    case let error as IOError:
      return Self.ioFailure(error.errnoCode, address: address)
    case let error as NIOSSLExtraError where error == .failedToValidateHostname:
      return ConnectFailure(
        "TLS: the certificate of \(address) is not for the name or address it was reached by (\(error)); "
          + "--server-name sets the name to expect", retryable: false)
    case let error as NIOSSLExtraError where error == .cannotUseIPAddressInSNI:
      return ConnectFailure("TLS: \(error)", retryable: false)
    case let error as NIOSSLError:
      return Self.tlsFailure(error, address: address)
    case let error as RPCError:
      return ConnectFailure(error.message, retryable: error.code == .unavailable, code: error.code)
    case let error as BoringSSLError:
      // With TLS 1.3 the server judges the client's certificate after the client's
      // side of the handshake: its verdict arrives as an alert on the first read.
      if let failure = clientCertificateRefused("\(error)", address: address) { return failure }
      return ConnectFailure("TLS with \(address) failed: \(error)", retryable: false)
    default:
      return ConnectFailure("cannot connect to \(address): \(error)", retryable: true)
    }
  }

  private static func dnsFailure(_ error: any Error, host: String) -> ConnectFailure {
    if let unknown = error as? SocketAddressError.UnknownHost {
      // "Name or service not known" is final; a resolver that did not answer in time
      // ("Temporary failure in name resolution") may answer next time.
      return ConnectFailure(
        "cannot resolve the host name \(host) (\(unknown.errorDescription))",
        retryable: unknown.errorCode == Int(EAI_AGAIN))
    }
    return ConnectFailure("cannot resolve the host name \(host): \(error)", retryable: true)
  }

  private static func ioFailure(_ code: CInt, address: String) -> ConnectFailure {
    switch code {
    case ECONNREFUSED:
      return ConnectFailure("connection refused by \(address) (is the server running?)", retryable: true)
    case ENETUNREACH, EHOSTUNREACH:
      return ConnectFailure("no route to \(address) (network or host unreachable)", retryable: true)
    case ETIMEDOUT:
      return ConnectFailure("no answer from \(address) (connection timed out)", retryable: true)
    case ECONNRESET, EPIPE:
      return ConnectFailure(
        "\(address) closed the connection before the DMS RPC handshake ended (reset)", retryable: true)
    default:
      return ConnectFailure("cannot connect to \(address): \(String(cString: strerror(code)))", retryable: true)
    }
  }

  /// The server's alert refusing the client's certificate (mutual TLS), said for a person.
  private static func clientCertificateRefused(_ text: String, address: String) -> ConnectFailure? {
    if text.contains("ALERT_CERTIFICATE_REQUIRED") {
      return ConnectFailure(
        "TLS: \(address) requires a client certificate (mutual TLS): give --cert and --key", retryable: false)
    }
    if text.contains("ALERT_UNKNOWN_CA") || text.contains("ALERT_BAD_CERTIFICATE")
      || text.contains("ALERT_CERTIFICATE_EXPIRED") || text.contains("ALERT_CERTIFICATE_UNKNOWN")
    {
      return ConnectFailure(
        "TLS: \(address) does not accept this client certificate (signed by a CA it does not trust, or expired)",
        retryable: false)
    }
    return nil
  }

  private static func tlsFailure(_ error: NIOSSLError, address: String) -> ConnectFailure {
    let text = "\(error)"
    if let failure = clientCertificateRefused(text, address: address) { return failure }
    if text.contains("CERTIFICATE_VERIFY_FAILED") {
      return ConnectFailure(
        "TLS: the certificate of \(address) is not trusted (signed by a CA not in the trust roots, expired, "
          + "or not yet valid); --ca names the CA to trust", retryable: false, certificateNotTrusted: true)
    }
    if text.contains("EOF during handshake") || { if case .uncleanShutdown = error { true } else { false } }() {
      return ConnectFailure(
        "TLS: \(address) closed the connection during the TLS handshake (does it speak TLS? try without --tls)",
        retryable: false)
    }
    if text.contains("WRONG_VERSION_NUMBER") || text.contains("PACKET_LENGTH_TOO_LONG") {
      return ConnectFailure(
        "TLS: \(address) did not answer with TLS (does it speak TLS? try without --tls)", retryable: false)
    }
    return ConnectFailure("TLS handshake with \(address) failed: \(text)", retryable: false)
  }

  /// `host:port`, with an IPv6 address in brackets.
  static func address(host: String, port: Int) -> String {
    host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
  }

  static func seconds(_ duration: Duration) -> String {
    let milliseconds = duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
    return milliseconds % 1000 == 0 ? "\(milliseconds / 1000) s" : "\(milliseconds) ms"
  }
}
