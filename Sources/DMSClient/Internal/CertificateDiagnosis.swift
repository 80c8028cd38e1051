import DMSRPC
import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS

/// Why a server's certificate was not trusted, found after the handshake failed: a
/// second handshake, which does not verify, reads the certificate the server shows,
/// and its dates tell an expired (or not yet valid) certificate from one signed by a
/// CA the client does not trust. BoringSSL reports all three as
/// CERTIFICATE_VERIFY_FAILED. Nothing is sent over that connection but the handshake.
enum CertificateDiagnosis {
  /// The reason, for a person, or nil when the second look found nothing (it failed too).
  static func reason(configuration: ClientConfiguration, loop: any EventLoop, server: String) async -> String? {
    guard var tls = configuration.tls else { return nil }
    tls.certificateVerification = .none
    guard let context = try? NIOSSLContext(configuration: tls) else { return nil }
    let sniName = ClientConnection.sniName(configuration)
    let dates = loop.makePromise(of: (notBefore: Int, notAfter: Int)?.self)
    let timer = loop.scheduleTask(in: TimeAmount(configuration.connectTimeout)) { dates.succeed(nil) }
    let channel = try? await ClientBootstrap(group: loop)
      .connectTimeout(TimeAmount(configuration.connectTimeout))
      .channelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
          let ssl = try NIOSSLClientHandler(context: context, serverHostname: sniName)
          try channel.pipeline.syncOperations.addHandler(ssl)
          try channel.pipeline.syncOperations.addHandler(DatesReader(ssl: ssl, dates: dates))
        }
      }
      .connect(host: configuration.host, port: configuration.port)
      .get()
    if channel == nil { dates.succeed(nil) }
    let found = try? await dates.futureResult.get()
    timer.cancel()
    channel?.close(promise: nil)
    guard let found else { return nil }
    let now = Int(Date().timeIntervalSince1970)
    if now > found.notAfter {
      return "the certificate of \(server) expired on \(Self.format(found.notAfter))"
    }
    if now < found.notBefore {
      return "the certificate of \(server) is not valid before \(Self.format(found.notBefore))"
    }
    return "the certificate of \(server) is signed by a CA this client does not trust (unknown CA); "
      + "--ca names the CA to trust"
  }

  private static func format(_ time: Int) -> String {
    let formatter = ISO8601DateFormatter()
    formatter.timeZone = TimeZone(identifier: "UTC")
    return formatter.string(from: Date(timeIntervalSince1970: TimeInterval(time)))
  }

  /// Reads the server certificate's dates once the handshake is done.
  private final class DatesReader: ChannelInboundHandler, @unchecked Sendable {
    // Used on its channel's event loop only.
    typealias InboundIn = ByteBuffer
    let ssl: NIOSSLClientHandler
    let dates: EventLoopPromise<(notBefore: Int, notAfter: Int)?>

    init(ssl: NIOSSLClientHandler, dates: EventLoopPromise<(notBefore: Int, notAfter: Int)?>) {
      self.ssl = ssl
      self.dates = dates
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
      if case .handshakeCompleted = event as? TLSUserEvent {
        dates.succeed(ssl.peerCertificate.map { (Int($0.notValidBefore), Int($0.notValidAfter)) })
        context.close(promise: nil)
      }
      context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
      dates.succeed(nil)
      context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
      dates.succeed(nil)
      context.fireChannelInactive()
    }
  }
}
