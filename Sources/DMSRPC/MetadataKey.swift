/// The metadata keys this protocol reserves. Keys are lower case.
public enum MetadataKey {
  /// `Bearer <token>`.
  public static let authorization = "authorization"
  /// The company code the call acts for.
  public static let company = "company"
  /// A request's id: echoed in the END trailers; the server makes one when absent.
  public static let requestID = "request-id"
  /// The client's name and version.
  public static let userAgent = "user-agent"
}
