import NIOSSL

/// Where a client connects and how it behaves when things go wrong.
public struct ClientConfiguration: Sendable {
  /// The server's host. Default 127.0.0.1.
  public var host: String
  /// The server's port. Default 7411.
  public var port: Int
  /// Other instances of the same deployment (several servers on one database), tried
  /// in order when the one before cannot be reached. A client stays on the server that
  /// answered until its connection fails; then it tries that one first, then the
  /// others. Default none.
  public var failoverServers: [Server]
  /// TLS, or nil for plaintext.
  public var tls: TLSConfiguration?
  /// The name the server's certificate must carry; default `host`.
  public var serverHostname: String?
  /// How long one connection attempt may take: TCP connect (and TLS), then the
  /// server's preface and SETTINGS. Default 5 s.
  public var connectTimeout: Duration
  /// Waits between connection attempts.
  public var backoff: Backoff
  /// Connection attempts per call before it fails UNAVAILABLE. Default 5.
  public var connectAttempts: Int
  /// Times a call the server did not run (past a GOAWAY's last call id) is retried
  /// on a new connection. Default 3.
  public var maxRetries: Int
  /// Sent as `user-agent`.
  public var userAgent: String
  /// Largest frame accepted from the server (meta + payload). Default 16 MiB.
  public var maxFrameSize: Int
  /// How calls are signed in (docs/SECURITY.md); nil: no session (only public
  /// methods such as Health answer).
  public var credentials: Credentials?

  /// How a client signs its calls in.
  public enum Credentials: Sendable, CustomStringConvertible, CustomReflectable {
    /// A session token from `Auth/Login` (`dmsctl login`, `DMS_TOKEN`), sent as is.
    case token(String)
    /// An operator's login and password: the client signs in before its first call
    /// and again when the session ends (expiry, idle timeout, a restart that lost it),
    /// retrying the call that found it ended once. For long-running services.
    case password(login: String, password: String)
    /// An API system's identifier and secret (`Auth/LoginSystem`), signed in and
    /// renewed as with a password. For inter-service callers.
    case system(identifier: String, secret: String)

    /// Never the token or the password (a configuration printed in a log).
    public var description: String {
      switch self {
      case .token: return "token(redacted)"
      case .password(let login, _): return "password(login: \(login), password: redacted)"
      case .system(let identifier, _): return "system(identifier: \(identifier), secret: redacted)"
      }
    }

    public var customMirror: Mirror { Mirror(self, children: ["credentials": description]) }
  }

  /// A server's address.
  public struct Server: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
      self.host = host
      self.port = port
    }

    /// `host:port`, an IPv6 address in brackets.
    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
  }

  /// Every server to try, in order: `host`:`port`, then `failoverServers`.
  public var servers: [Server] { [Server(host: host, port: port)] + failoverServers }

  /// A configuration; every parameter has the documented default.
  public init(
    host: String = "127.0.0.1",
    port: Int = 7411,
    failoverServers: [Server] = [],
    tls: TLSConfiguration? = nil,
    serverHostname: String? = nil,
    connectTimeout: Duration = .seconds(5),
    backoff: Backoff = Backoff(),
    connectAttempts: Int = 5,
    maxRetries: Int = 3,
    userAgent: String = "dms-client/0.1",
    maxFrameSize: Int = 16 << 20,
    credentials: Credentials? = nil
  ) {
    self.host = host
    self.port = port
    self.failoverServers = failoverServers
    self.tls = tls
    self.serverHostname = serverHostname
    self.connectTimeout = connectTimeout
    self.backoff = backoff
    self.connectAttempts = connectAttempts
    self.maxRetries = maxRetries
    self.userAgent = userAgent
    self.maxFrameSize = maxFrameSize
    self.credentials = credentials
  }

  /// Exponential backoff with jitter between connection attempts.
  public struct Backoff: Sendable {
    /// The first wait. Default 100 ms.
    public var initial: Duration
    /// The longest wait. Default 5 s.
    public var maximum: Duration
    /// Each wait is the previous times this. Default 1.6.
    public var multiplier: Double
    /// Each wait varies by up to this fraction either way. Default 0.2.
    public var jitter: Double

    /// A backoff with the documented defaults.
    public init(
      initial: Duration = .milliseconds(100),
      maximum: Duration = .seconds(5),
      multiplier: Double = 1.6,
      jitter: Double = 0.2
    ) {
      self.initial = initial
      self.maximum = maximum
      self.multiplier = multiplier
      self.jitter = jitter
    }

    /// The wait before attempt `attempt` (1 = the first retry).
    public func delay(beforeAttempt attempt: Int) -> Duration {
      let base = initial * pow(multiplier, Double(max(0, attempt - 1)))
      let capped = min(base, maximum)
      let factor = 1 + Double.random(in: -jitter...jitter)
      return capped * factor
    }

    private func pow(_ x: Double, _ y: Double) -> Double {
      var result = 1.0
      for _ in 0..<Int(y) { result *= x }
      return result
    }
  }
}
