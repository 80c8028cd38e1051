import DMSDomain
import Foundation
import NIOPosix
import Synchronization

/// Where the integrations reach the outside services (configuration keys `ksef.*` and
/// `edelivery.*`, docs/CONFIGURATION.md), and the threads their blocking HTTP runs on.
public struct IntegrationsConfiguration: Sendable {
  /// INT-4, INT-4b: each KSeF environment's API base URL (since 15.12.2025).
  public var ksefBaseURLs: [DeploymentConfiguration.KSeFWorkMode: String]
  /// PEM certificates to trust for KSeF instead of the system's (a test environment's
  /// CA, `ksef.ca-file`); empty: the system's.
  public var ksefTrustedCertificates: String
  /// Seconds each KSeF request may take (`ksef.timeout-seconds`).
  public var ksefRequestTimeout: Double
  /// Seconds a whole sign-in may take, polling included (`ksef.max-wait-seconds`).
  public var ksefMaxWait: Double
  /// INT-7a, CFG-8: each e-Delivery environment's token endpoint.
  public var eDeliveryTokenURLs: [DeploymentConfiguration.EDeliveryEnvironment: String]
  /// PEM certificates to trust for e-Delivery instead of the system's (`edelivery.ca-file`).
  public var eDeliveryTrustedCertificates: String
  /// Seconds the token request may take (`edelivery.timeout-seconds`).
  public var eDeliveryTimeout: Double

  /// INT-4b's base URLs.
  public static let ksefDefaultURLs: [DeploymentConfiguration.KSeFWorkMode: String] = [
    .test: "https://api-test.ksef.mf.gov.pl/v2", .demo: "https://api-demo.ksef.mf.gov.pl/v2",
    .production: "https://api.ksef.mf.gov.pl/v2",
  ]

  /// INT-7a's token endpoints: production, and the integration host for tests.
  public static let eDeliveryDefaultTokenURLs: [DeploymentConfiguration.EDeliveryEnvironment: String] = [
    .production: "https://ow.edoreczenia.gov.pl/auth/realms/EDOR/protocol/openid-connect/token",
    .test: "https://int-ow.edoreczenia.gov.pl/auth/realms/EDOR/protocol/openid-connect/token",
  ]

  public init(
    ksefBaseURLs: [DeploymentConfiguration.KSeFWorkMode: String] = ksefDefaultURLs,
    ksefTrustedCertificates: String = "", ksefRequestTimeout: Double = 15, ksefMaxWait: Double = 30,
    eDeliveryTokenURLs: [DeploymentConfiguration.EDeliveryEnvironment: String] = eDeliveryDefaultTokenURLs,
    eDeliveryTrustedCertificates: String = "", eDeliveryTimeout: Double = 15
  ) {
    self.ksefBaseURLs = ksefBaseURLs
    self.ksefTrustedCertificates = ksefTrustedCertificates
    self.ksefRequestTimeout = ksefRequestTimeout
    self.ksefMaxWait = ksefMaxWait
    self.eDeliveryTokenURLs = eDeliveryTokenURLs
    self.eDeliveryTrustedCertificates = eDeliveryTrustedCertificates
    self.eDeliveryTimeout = eDeliveryTimeout
  }
}

/// Threads for blocking calls to outside services (libcurl), started at the first call
/// and stopped with their owner: never the event loops, never Swift's cooperative pool.
final class BlockingThreads: Sendable {
  private let pool: NIOThreadPool
  private let started = Mutex(false)

  init(count: Int) {
    pool = NIOThreadPool(numberOfThreads: count)
  }

  deinit {
    if started.withLock({ $0 }) { pool.shutdownGracefully { _ in } }
  }

  /// `body` on one of the threads.
  func run<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    started.withLock { started in
      if !started {
        pool.start()
        started = true
      }
    }
    do {
      return try await pool.runIfActive(body)
    } catch {
      // Stopped only by deinit, which cannot race a caller holding self.
      preconditionFailure("blocking threads stopped while in use: \(error)")
    }
  }
}
