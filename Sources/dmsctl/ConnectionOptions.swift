import ArgumentParser
import DMSClient
import DMSRPC
import Foundation
import NIOSSL

/// Options every command takes: where the server is, TLS, output format.
struct ConnectionOptions: ParsableArguments {
  @Option(
    name: .long,
    help: "Server as host:port, or several instances as a,b (tried in order; default: DMS_SERVER, else 127.0.0.1:7411)."
  )
  var server: String?

  @Flag(name: .long, help: "Connect with TLS.")
  var tls = false

  @Option(name: .long, help: "PEM file of the CA that signed the server's certificate (implies --tls).")
  var ca: String?

  @Option(name: .long, help: "Name the server's certificate must carry (default: the host).")
  var serverName: String?

  @Option(
    name: .long,
    help: "PEM file of this client's certificate, for a server that requires one (mutual TLS; implies --tls).")
  var cert: String?

  @Option(name: .long, help: "PEM file of the private key of --cert.")
  var key: String?

  @Option(name: .long, help: "Seconds a call (and connecting) may take.")
  var timeout: Double = 10

  @Flag(name: .long, help: "Machine-readable JSON output.")
  var json = false

  /// The servers of --server, DMS_SERVER or the default: `host:port`, or several
  /// separated by commas (instances of one deployment, tried in order).
  func endpoints() throws -> [ClientConfiguration.Server] {
    let fromEnvironment = server == nil ? ProcessInfo.processInfo.environment["DMS_SERVER"] : nil
    let text = server ?? fromEnvironment ?? "127.0.0.1:7411"
    // Name where the text came from: an operator who gave no --server looks for it in vain.
    let source = fromEnvironment == nil ? "--server" : "DMS_SERVER (the environment; --server overrides it)"
    let servers = try text.split(separator: ",", omittingEmptySubsequences: false).map { item in
      let item = item.trimmingCharacters(in: .whitespaces)
      guard let colon = item.lastIndex(of: ":"), let port = Int(item[item.index(after: colon)...]),
        (1...65535).contains(port)
      else {
        throw ValidationError(
          "\(source) must be host:port, such as 127.0.0.1:7411, or several separated by commas (got \"\(text)\")")
      }
      var host = String(item[..<colon])
      if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
      return ClientConfiguration.Server(host: host.isEmpty ? "127.0.0.1" : host, port: port)
    }
    return servers
  }

  /// The first server: the one sessions are saved for.
  func endpoint() throws -> (host: String, port: Int) {
    let first = try endpoints()[0]
    return (first.host, first.port)
  }

  /// Where this server's session is saved (the first of several: one deployment).
  func sessionFile() throws -> SessionFile {
    let (host, port) = try endpoint()
    return SessionFile(host: host, port: port)
  }

  /// A client for the servers given; `signedIn`: with the session saved (or `DMS_TOKEN`),
  /// `anySession`: even from a file others may read (`dmsctl logout`).
  func makeClient(signedIn: Bool = true, anySession: Bool = false) throws -> RPCClient {
    let servers = try endpoints()
    let (host, port) = (servers[0].host, servers[0].port)
    guard timeout.isFinite, timeout > 0, timeout <= 86_400 else {
      throw ValidationError("--timeout must be a number of seconds above 0 and at most 86400 (got \(timeout))")
    }
    var tlsConfiguration: TLSConfiguration?
    guard (cert == nil) == (key == nil) else { throw ValidationError("--cert and --key go together: give both") }
    if tls || ca != nil || cert != nil {
      var configuration = TLSConfiguration.makeClientConfiguration()
      if let ca { configuration.trustRoots = .file(ca) }
      if let cert, let key {
        do {
          configuration.certificateChain = try NIOSSLCertificate.fromPEMFile(cert).map { .certificate($0) }
          configuration.privateKey = .privateKey(try NIOSSLPrivateKey(file: key, format: .pem))
        } catch {
          throw ValidationError("--cert \(cert) / --key \(key): cannot load them as PEM (\(error))")
        }
      }
      tlsConfiguration = configuration
    }
    return RPCClient(
      configuration: ClientConfiguration(
        host: host,
        port: port,
        failoverServers: Array(servers.dropFirst()),
        tls: tlsConfiguration,
        serverHostname: serverName,
        // Connecting (TCP, TLS, the preface and SETTINGS) is bounded by --timeout too.
        connectTimeout: callTimeout,
        connectAttempts: 1,
        userAgent: "dmsctl/\(Release.version)",
        credentials: signedIn
          ? try SessionFile(host: host, port: port).token(allowingOthers: anySession).map { .token($0) } : nil
      )
    )
  }

  /// Connects, then runs `body` with the client, closing it afterwards. Not reaching
  /// the server exits 3; a failed call prints its status and exits 1 (docs/CLI.md).
  /// `flags` names the request's fields in messages to people.
  func withClient(
    flags: FlagNames = FlagNames(), signedIn: Bool = true, anySession: Bool = false,
    _ body: (RPCClient) async throws -> Void
  ) async throws {
    let client = try makeClient(signedIn: signedIn, anySession: anySession)
    do {
      _ = try await client.serverSettings(timeout: callTimeout)
    } catch {
      await client.close()
      throw Output.failure(error, json: json, connecting: true)
    }
    do {
      try await body(client)
      await client.close()
    } catch let error as ValidationError {
      await client.close()
      throw error
    } catch let error as ExitCode {
      await client.close()
      throw error
    } catch {
      await client.close()
      throw Output.failure(error, json: json, flags: flags)
    }
  }

  /// --timeout as a duration.
  var callTimeout: Duration { .milliseconds(Int64(timeout * 1000)) }

  var callOptions: CallOptions {
    CallOptions(timeout: callTimeout)
  }
}
