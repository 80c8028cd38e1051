import DMSClient
import DMSRPC
import DMSServer
import DMSStubs
import DMSTestSupport
import Foundation
import NIOSSL
import Testing

/// DMS RPC over TLS, with a certificate made for the test.
@Suite("TLS")
struct TLSTests {
  /// A self-signed certificate for localhost and 127.0.0.1, made with openssl.
  struct Certificate {
    let folder: URL
    var certificate: String { folder.appendingPathComponent("cert.pem").path }
    var key: String { folder.appendingPathComponent("key.pem").path }

    static func make(subjectAltName: String = "DNS:localhost,IP:127.0.0.1") throws -> Certificate {
      let folder = FileManager.default.temporaryDirectory.appendingPathComponent("dms-tls-\(UUID().uuidString)")
      try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
      let process = ChildProcess()
      process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
      process.arguments = [
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", folder.appendingPathComponent("key.pem").path,
        "-out", folder.appendingPathComponent("cert.pem").path,
        "-days", "2", "-subj", "/CN=localhost",
        "-addext", "subjectAltName=\(subjectAltName)",
      ]
      process.standardError = FileHandle.nullDevice
      try process.run()
      process.waitUntilExit()
      guard process.terminationStatus == 0 else { throw CertificateError() }
      return Certificate(folder: folder)
    }

    struct CertificateError: Error {}

    /// A self-signed certificate for localhost and 127.0.0.1 that expired yesterday,
    /// made with Python's `cryptography` (openssl 3.0's `req` makes no past dates).
    static func makeExpired() throws -> Certificate {
      let folder = FileManager.default.temporaryDirectory.appendingPathComponent("dms-tls-\(UUID().uuidString)")
      try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
      let script = """
        import datetime, ipaddress, sys
        from cryptography import x509
        from cryptography.x509.oid import NameOID
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
        now = datetime.datetime.now(datetime.timezone.utc)
        san = x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
          .serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(days=10)).not_valid_after(now - datetime.timedelta(days=1))
          .add_extension(san, critical=False).sign(key, hashes.SHA256()))
        open(sys.argv[1] + "/cert.pem", "wb").write(cert.public_bytes(serialization.Encoding.PEM))
        open(sys.argv[1] + "/key.pem", "wb").write(key.private_bytes(
          serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        """
      let process = ChildProcess()
      process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
      process.arguments = ["python3", "-c", script, folder.path]
      try process.run()
      process.waitUntilExit()
      guard process.terminationStatus == 0 else { throw CertificateError() }
      return Certificate(folder: folder)
    }

    func serverConfiguration() throws -> TLSConfiguration {
      TLSConfiguration.makeServerConfiguration(
        certificateChain: try NIOSSLCertificate.fromPEMFile(certificate).map { .certificate($0) },
        privateKey: .privateKey(try NIOSSLPrivateKey(file: key, format: .pem))
      )
    }

    func clientConfiguration() -> TLSConfiguration {
      var configuration = TLSConfiguration.makeClientConfiguration()
      configuration.trustRoots = .file(certificate)
      return configuration
    }
  }

  @Test("a call over TLS round-trips; SETTINGS announce tls")
  func roundTrip() async throws {
    let certificate = try Certificate.make()
    defer { try? FileManager.default.removeItem(at: certificate.folder) }
    let tls = try certificate.serverConfiguration()
    try await withTestServer({ $0.tls = tls }) { server async throws in
      let client = server.client {
        $0.tls = certificate.clientConfiguration()
        $0.serverHostname = "localhost"
      }
      #expect(try await client.serverSettings().features.contains("tls"))
      #expect(try await Dms_Rpc_V1_Health.Client(client).check().status == .serving)
      await client.close()
    }
  }

  @Test(
    "a TLS context that cannot be made (another certificate's key) fails run() and localAddress(), which does not wait; a server never run goes without a trace"
  )
  func contextRefused() async throws {
    let one = try Certificate.make()
    let other = try Certificate.make()
    defer { for made in [one, other] { try? FileManager.default.removeItem(at: made.folder) } }
    var configuration = ServerConfiguration(serverName: "test")
    configuration.port = 0
    configuration.tls = TLSConfiguration.makeServerConfiguration(
      certificateChain: try NIOSSLCertificate.fromPEMFile(one.certificate).map { .certificate($0) },
      privateKey: .privateKey(try NIOSSLPrivateKey(file: other.key, format: .pem)))
    let server = RPCServer(configuration: configuration, router: Router())
    await #expect(throws: (any Error).self) { try await server.run() }
    await #expect(throws: (any Error).self) { _ = try await server.localAddress() }
    // Made and dropped without running (a start-up stopped before it): its address promise
    // is completed, which a debug build of NIO checks as the server goes.
    _ = RPCServer(configuration: ServerConfiguration(serverName: "test"), router: Router())
  }

  @Test("a plaintext client on the TLS port and a client that does not trust the certificate both fail")
  func refusals() async throws {
    let certificate = try Certificate.make()
    defer { try? FileManager.default.removeItem(at: certificate.folder) }
    let other = try Certificate.make()
    defer { try? FileManager.default.removeItem(at: other.folder) }
    let tls = try certificate.serverConfiguration()
    try await withTestServer({ $0.tls = tls }) { server async throws in
      let plaintext = server.client()
      await #expect(throws: (any Error).self) { _ = try await Dms_Rpc_V1_Health.Client(plaintext).check() }
      await plaintext.close()

      let untrusting = server.client {
        $0.tls = other.clientConfiguration()
        $0.serverHostname = "localhost"
      }
      await #expect(throws: (any Error).self) { _ = try await Dms_Rpc_V1_Health.Client(untrusting).check() }
      await untrusting.close()
    }
  }
}

/// What a client is told when TLS cannot be set up, and TLS to an IP address.
@Suite("TLS: connecting by address, and the reasons of a failed handshake")
struct TLSConnectingTests {
  typealias Certificate = TLSTests.Certificate

  /// The UNAVAILABLE message of a Health check through `client`.
  func failure(_ client: RPCClient) async -> String? {
    defer { Task { await client.close() } }
    do {
      _ = try await Dms_Rpc_V1_Health.Client(client).check()
      return nil
    } catch let error as RPCError {
      return "\(error.code.name): \(error.message)"
    } catch {
      return "\(error)"
    }
  }

  @Test("TLS to 127.0.0.1 checks the certificate's IP entries and sends no SNI: the call succeeds")
  func ipAddress() async throws {
    let certificate = try Certificate.make(subjectAltName: "IP:127.0.0.1")
    defer { try? FileManager.default.removeItem(at: certificate.folder) }
    let tls = try certificate.serverConfiguration()
    try await withTestServer({ $0.tls = tls }) { server async throws in
      let client = server.client { $0.tls = certificate.clientConfiguration() }
      #expect(try await Dms_Rpc_V1_Health.Client(client).check().status == .serving)
      await client.close()
    }
  }

  @Test("a certificate without the address connected to: a name mismatch, said so")
  func nameMismatch() async throws {
    let certificate = try Certificate.make(subjectAltName: "DNS:localhost")
    defer { try? FileManager.default.removeItem(at: certificate.folder) }
    let tls = try certificate.serverConfiguration()
    try await withTestServer({ $0.tls = tls }) { server async throws in
      let byAddress = await failure(server.client { $0.tls = certificate.clientConfiguration() })
      #expect(byAddress?.hasPrefix("UNAVAILABLE: TLS: the certificate of 127.0.0.1:\(server.port) is not for") == true)
      let byOtherName = await failure(
        server.client {
          $0.tls = certificate.clientConfiguration()
          $0.serverHostname = "example.test"
        })
      #expect(byOtherName?.contains("is not for the name") == true, "\(byOtherName ?? "")")
    }
  }

  @Test("a certificate from a CA not trusted, TLS to a plaintext port, plaintext to a TLS port: each said so")
  func reasons() async throws {
    let certificate = try Certificate.make()
    defer { try? FileManager.default.removeItem(at: certificate.folder) }
    let other = try Certificate.make()
    defer { try? FileManager.default.removeItem(at: other.folder) }
    let tls = try certificate.serverConfiguration()
    try await withTestServer({ $0.tls = tls }) { server async throws in
      let untrusted = await failure(server.client { $0.tls = other.clientConfiguration() })
      #expect(
        untrusted == "UNAVAILABLE: TLS: the certificate of 127.0.0.1:\(server.port) is signed by a CA this client "
          + "does not trust (unknown CA); --ca names the CA to trust", "\(untrusted ?? "")")
      let plaintext = await failure(server.client())
      #expect(plaintext?.hasPrefix("UNAVAILABLE: ") == true, "\(plaintext ?? "")")
      #expect(plaintext?.contains("leaking") == false)
    }
    try await withTestServer { server async throws in
      let tlsToPlain = await failure(server.client { $0.tls = certificate.clientConfiguration() })
      #expect(tlsToPlain?.contains("does it speak TLS? try without --tls") == true, "\(tlsToPlain ?? "")")
    }
  }

  @Test("an expired certificate is reported as expired, with its date")
  func expired() async throws {
    let certificate: Certificate
    do {
      certificate = try Certificate.makeExpired()
    } catch {
      Issue.record("python3 with the cryptography package is needed to make an expired certificate")
      return
    }
    defer { try? FileManager.default.removeItem(at: certificate.folder) }
    let tls = try certificate.serverConfiguration()
    try await withTestServer({ $0.tls = tls }) { server async throws in
      let message = await failure(server.client { $0.tls = certificate.clientConfiguration() })
      #expect(
        message?.hasPrefix("UNAVAILABLE: TLS: the certificate of 127.0.0.1:\(server.port) expired on ") == true,
        "\(message ?? "")")
    }
  }
}
