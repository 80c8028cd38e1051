import Foundation

/// How the server reaches PostgreSQL (`storage.postgres.*`, docs/CONFIGURATION.md).
public struct PostgresOptions: Sendable {
  /// How the connection is encrypted, as libpq's `sslmode` says it.
  public enum TLSMode: String, Sendable, CaseIterable {
    /// Never.
    case disable
    /// When the server offers it, without checking its certificate (libpq's default).
    case prefer
    /// Always, without checking the certificate.
    case require
    /// Always, with a certificate signed by a trusted CA (`sslrootcert`, else the system's).
    case verifyCA = "verify-ca"
    /// As `verify-ca`, and the certificate names the host.
    case verifyFull = "verify-full"
  }

  /// One role's way in: where, who, which database.
  public struct Endpoint: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int
    /// A Unix socket folder (`?host=/run/postgresql`), instead of TCP.
    public var socketDirectory: String?
    public var user: String
    /// Never logged, never in a message.
    public var password: String?
    public var database: String
    public var tls: TLSMode
    /// `sslrootcert`: the CA file for `verify-ca` and `verify-full`.
    public var rootCertificate: String?
    /// `connect_timeout` (seconds, as libpq's): how long connecting as this role may
    /// take, instead of `storage.postgres.connect-timeout-ms`.
    public var connectTimeout: Duration?
    /// `application_name`: what `pg_stat_activity` shows for the server's connections
    /// (by default `dms-settingsd`).
    public var applicationName: String?

    /// The address without the password, for logs and messages (an IPv6 address in
    /// brackets, as in the URL).
    public var description: String {
      let place =
        socketDirectory.map { "\($0)/.s.PGSQL.\(port)" } ?? "\(host.contains(":") ? "[\(host)]" : host):\(port)"
      return "postgres://\(user)@\(place)/\(database)"
    }

    /// The longest `connect_timeout` taken, in seconds.
    public static let connectTimeoutLimit = 120

    /// Parses `postgres://user:password@host:port/database?sslmode=…&sslrootcert=…&host=…`
    /// (or `postgresql://`; an IPv6 host in brackets, `[::1]`); `key` names the setting
    /// in errors, which never repeat the password.
    public init(url text: String, key: String) throws {
      func invalid(_ why: String) -> PostgresOptions.Invalid {
        PostgresOptions.Invalid(message: "\(key): \(why) (expected postgres://user:password@host:5432/database)")
      }
      guard let components = URLComponents(string: text),
        let scheme = components.scheme?.lowercased(), scheme == "postgres" || scheme == "postgresql"
      else { throw invalid("not a postgres:// URL") }
      guard let user = components.user, !user.isEmpty else { throw invalid("names no user") }
      self.user = user
      password = components.password
      let database = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
      guard !database.isEmpty, !database.contains("/") else { throw invalid("names no database (the path)") }
      self.database = database
      port = components.port ?? 5432
      guard (1...65535).contains(port) else { throw invalid("port \(port) is not 1–65535") }
      host = Self.unbracketed(components.host ?? "")
      socketDirectory = nil
      tls = .prefer
      rootCertificate = nil
      for item in components.queryItems ?? [] {
        let value = item.value ?? ""
        switch item.name {
        case "sslmode":
          guard let mode = TLSMode(rawValue: value) else {
            throw invalid(
              "sslmode \(value) is not one of \(TLSMode.allCases.map(\.rawValue).joined(separator: ", "))")
          }
          tls = mode
        case "sslrootcert": rootCertificate = value
        case "host":
          if value.hasPrefix("/") { socketDirectory = value } else { host = Self.unbracketed(value) }
        case "connect_timeout":
          // libpq waits for ever at 0; a server that must answer UNAVAILABLE does not.
          guard let seconds = Int(value), (1...Self.connectTimeoutLimit).contains(seconds) else {
            throw invalid("connect_timeout \(value) is not a whole number of seconds, 1–\(Self.connectTimeoutLimit)")
          }
          connectTimeout = .seconds(seconds)
        case "application_name":
          guard !value.isEmpty, value.utf8.count < 64 else {
            throw invalid("application_name must be 1–63 bytes (PostgreSQL's limit)")
          }
          applicationName = value
        default:
          throw invalid(
            "unknown parameter \(item.name) (known: sslmode, sslrootcert, host, connect_timeout, application_name)")
        }
      }
      guard socketDirectory != nil || !host.isEmpty else { throw invalid("names no host") }
      if socketDirectory != nil, tls != .disable, tls != .prefer {
        throw invalid("sslmode \(tls.rawValue) over a Unix socket (TLS needs TCP)")
      }
    }

    /// An IPv6 address as the URL writes it (`[::1]`) without its brackets.
    private static func unbracketed(_ host: String) -> String {
      host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
    }
  }

  /// A setting that cannot be used; the message names the key and never a password.
  public struct Invalid: Error, CustomStringConvertible, Sendable {
    public let message: String
    public var description: String { message }
  }

  /// The role the server works as (`storage.postgres.url`): it should own no table, so
  /// that row-level security binds it.
  public var endpoint: Endpoint
  /// The role that owns the tables and runs the migrations (`storage.postgres.owner-url`);
  /// nil: `endpoint`'s role does both.
  public var owner: Endpoint?
  /// Reader connections, besides the writers (`storage.postgres.pool-size`).
  public var poolSize = 4
  /// Writer connections (`storage.postgres.writers`): one for the registry, the shared
  /// section and the operators, the others for company-scoped writes, spread by
  /// company, each in group commit.
  public var writers = defaultWriters
  public static let defaultWriters = 2
  /// How long one statement may run (`storage.postgres.statement-timeout-ms`); past it
  /// PostgreSQL cancels it and the call fails with UNAVAILABLE.
  public var statementTimeout: Duration = .seconds(10)
  /// How long connecting may take (`storage.postgres.connect-timeout-ms`).
  public var connectTimeout: Duration = .seconds(5)
  /// The most transactions one commit carries.
  public var maxBatch = 256
  /// Whether every write statement touches one company's rows
  /// (`storage.postgres.single-company-statements`): a batch's companies are then
  /// locked and read, and their documents written, one company per statement (for a
  /// PostgreSQL distributed by company, where a statement over several companies
  /// crosses shards); by default a batch does each in one statement.
  public var singleCompanyStatements = false

  public init(endpoint: Endpoint, owner: Endpoint? = nil) {
    self.endpoint = endpoint
    self.owner = owner
  }
}
