import NIOCore

/// The 8 bytes each side sends first: ASCII `DMSRPC`, then the u16 version.
public enum Preface {
  /// The magic: ASCII `DMSRPC`.
  public static let magic: [UInt8] = Array("DMSRPC".utf8)
  /// The protocol version this build speaks.
  public static let version: UInt16 = 1
  /// Bytes in a preface.
  public static let size = 8

  /// The preface of `version`.
  public static func bytes(version: UInt16 = Preface.version) -> [UInt8] {
    magic + [UInt8(version >> 8), UInt8(version & 0xFF)]
  }

  /// What the first bytes of a connection are.
  public enum Detection: Equatable, Sendable {
    /// Too few bytes to tell yet.
    case incomplete
    /// A DMS RPC preface of this version (which may not be supported).
    case preface(version: UInt16)
    /// An HTTP request (`GET `, `POST`, `PUT `, `HEAD`, `PRI `).
    case http
    /// A TLS ClientHello: a TLS client on a plaintext port.
    case tls
    /// Anything else.
    case garbage
  }

  private static let httpStarts: [[UInt8]] = ["GET ", "POST", "PUT ", "HEAD", "PRI "].map {
    Array($0.utf8)
  }

  /// Classifies the first bytes of a connection without consuming them.
  public static func detect(_ buffer: ByteBuffer) -> Detection {
    let view = buffer.readableBytesView
    let available = Array(view.prefix(size))
    if let first = available.first, first == 0x16 { return .tls }
    if available.count >= 4, httpStarts.contains(Array(available.prefix(4))) { return .http }
    let magicPart = available.prefix(magic.count)
    if !magic.starts(with: magicPart) {
      // Not our magic; it may still be the start of an HTTP method.
      let couldBeHTTP = httpStarts.contains { $0.starts(with: available.prefix(4)) }
      return couldBeHTTP && available.count < 4 ? .incomplete : .garbage
    }
    guard available.count >= size else { return .incomplete }
    return .preface(version: UInt16(available[6]) << 8 | UInt16(available[7]))
  }
}
