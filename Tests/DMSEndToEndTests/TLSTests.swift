import DMSClient
import DMSRPC
import DMSServer
import DMSStubs
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

    static func make() throws -> Certificate {
      let folder = FileManager.default.temporaryDirectory.appendingPathComponent("dms-tls-\(UUID().uuidString)")
      try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
      let process = Process()
      process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
      process.arguments = [
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", folder.appendingPathComponent("key.pem").path,
        "-out", folder.appendingPathComponent("cert.pem").path,
        "-days", "2", "-subj", "/CN=localhost",
        "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
      ]
      process.standardError = FileHandle.nullDevice
      try process.run()
      process.waitUntilExit()
      guard process.terminationStatus == 0 else { throw CertificateError() }
      return Certificate(folder: folder)
    }

    struct CertificateError: Error {}

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
