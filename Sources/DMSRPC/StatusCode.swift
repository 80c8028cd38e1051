/// A call's status code: gRPC's codes, with gRPC's numbers.
///
/// A struct of constants rather than an enum, so a code this build does not know
/// (from a newer peer) still round-trips.
public struct StatusCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
  /// The wire value (`Status.code`).
  public let rawValue: Int32

  /// A code from its wire value.
  public init(rawValue: Int32) { self.rawValue = rawValue }

  public static let ok = StatusCode(rawValue: 0)
  public static let cancelled = StatusCode(rawValue: 1)
  public static let unknown = StatusCode(rawValue: 2)
  public static let invalidArgument = StatusCode(rawValue: 3)
  public static let deadlineExceeded = StatusCode(rawValue: 4)
  public static let notFound = StatusCode(rawValue: 5)
  public static let alreadyExists = StatusCode(rawValue: 6)
  public static let permissionDenied = StatusCode(rawValue: 7)
  public static let resourceExhausted = StatusCode(rawValue: 8)
  public static let failedPrecondition = StatusCode(rawValue: 9)
  public static let aborted = StatusCode(rawValue: 10)
  public static let outOfRange = StatusCode(rawValue: 11)
  public static let unimplemented = StatusCode(rawValue: 12)
  public static let `internal` = StatusCode(rawValue: 13)
  public static let unavailable = StatusCode(rawValue: 14)
  public static let dataLoss = StatusCode(rawValue: 15)
  public static let unauthenticated = StatusCode(rawValue: 16)

  private static let names = [
    "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
    "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
    "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
    "UNAUTHENTICATED",
  ]

  /// The gRPC name, such as `INVALID_ARGUMENT`, or `CODE_<n>` for an unknown code.
  public var name: String {
    rawValue >= 0 && Int(rawValue) < Self.names.count ? Self.names[Int(rawValue)] : "CODE_\(rawValue)"
  }

  /// The code named `name` (`INVALID_ARGUMENT`, case-insensitive), if any.
  public init?(name: String) {
    guard let index = Self.names.firstIndex(of: name.uppercased()) else { return nil }
    self.init(rawValue: Int32(index))
  }

  public var description: String { "\(name) (\(rawValue))" }
}
