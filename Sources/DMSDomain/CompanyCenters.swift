/// The organisational centers published for a company by its ERP connector, from
/// which ERP-7's default center is chosen.
public struct CompanyCenters: Sendable, Hashable {
  /// The centers' names, as published.
  public var centers: [String]

  /// A list of centers.
  public init(centers: [String] = []) {
    self.centers = centers
  }
}
