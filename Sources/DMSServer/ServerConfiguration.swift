import NIOSSL

/// How the server listens and what it allows each connection.
public struct ServerConfiguration: Sendable {
  /// Address to listen on. Default 127.0.0.1.
  public var host: String
  /// Port to listen on; 0 picks a free one. Default 7411.
  public var port: Int
  /// TLS on the listening port, or nil for plaintext (the same protocol either way).
  public var tls: TLSConfiguration?
  /// Per-connection limits.
  public var limits: Limits
  /// Timers of the connection lifecycle.
  public var timeouts: Timeouts
  /// Name and version sent in SETTINGS, such as `dms-settingsd/0.3.0`.
  public var serverName: String

  /// The default port of DMS RPC.
  public static let defaultPort = 7411

  /// A configuration; every parameter has the documented default.
  public init(
    host: String = "127.0.0.1",
    port: Int = ServerConfiguration.defaultPort,
    tls: TLSConfiguration? = nil,
    limits: Limits = Limits(),
    timeouts: Timeouts = Timeouts(),
    serverName: String = "dms-settingsd"
  ) {
    self.host = host
    self.port = port
    self.tls = tls
    self.limits = limits
    self.timeouts = timeouts
    self.serverName = serverName
  }

  /// Per-connection limits.
  public struct Limits: Sendable {
    /// Largest meta + payload of one frame. Default 4 MiB.
    public var maxFrameSize: Int
    /// Largest meta of one frame. Default 16 KiB.
    public var maxMetaSize: Int
    /// Calls open at once on one connection; past it the connection is not read
    /// from until one ends. Default 128.
    public var maxConcurrentCalls: Int
    /// Bytes one connection may hold for a client that does not read its answers:
    /// answers not yet taken by the socket while it is full, and parked calls. The
    /// connection is not read while its socket is full, so only answers to calls
    /// already received pile up; past this bound it gets GOAWAY RESOURCE_EXHAUSTED
    /// and is closed. Default 32 MiB (eight answers of the largest frame).
    public var maxBufferedBytes: Int

    /// Limits with the documented defaults.
    public init(
      maxFrameSize: Int = 4 << 20,
      maxMetaSize: Int = 16 << 10,
      maxConcurrentCalls: Int = 128,
      maxBufferedBytes: Int = 32 << 20
    ) {
      self.maxFrameSize = maxFrameSize
      self.maxMetaSize = maxMetaSize
      self.maxConcurrentCalls = maxConcurrentCalls
      self.maxBufferedBytes = maxBufferedBytes
    }
  }

  /// Timers of the connection lifecycle.
  public struct Timeouts: Sendable {
    /// A client must send a valid preface this soon after connecting. Default 10 s.
    public var preface: Duration
    /// A connection with no open call this long gets GOAWAY and is closed. Default 5 min.
    public var idle: Duration
    /// A frame that stays half-received this long closes the connection. Default 30 s.
    public var frameStall: Duration
    /// On shutdown, how long open calls may run before their connections close.
    /// Default 10 s.
    public var shutdownGrace: Duration

    /// Timeouts with the documented defaults.
    public init(
      preface: Duration = .seconds(10),
      idle: Duration = .seconds(300),
      frameStall: Duration = .seconds(30),
      shutdownGrace: Duration = .seconds(10)
    ) {
      self.preface = preface
      self.idle = idle
      self.frameStall = frameStall
      self.shutdownGrace = shutdownGrace
    }
  }
}
