/// The settings common to all companies, rules ERP-S1 … ERP-S3.
public struct SharedSettings: Sendable, Hashable {
  /// ERP-S1: the ERP API version every company's database runs.
  public var apiVersion: Int
  /// ERP-S2: how the application works with the ERP XL Document control.
  public var documentControlMode: String
  /// ERP-S3: generate documents with an analytical description.
  public var analyticalDescription: Bool

  /// Shared settings.
  public init(apiVersion: Int, documentControlMode: String, analyticalDescription: Bool = false) {
    self.apiVersion = apiVersion
    self.documentControlMode = documentControlMode
    self.analyticalDescription = analyticalDescription
  }

  /// The closed lists ERP-S1 and ERP-S2 choose from (server configuration).
  public struct Choices: Sendable, Hashable {
    /// ERP-S1's supported API versions.
    public var apiVersions: [Int]
    /// ERP-S2's modes.
    public var documentControlModes: [String]

    /// The lists.
    public init(apiVersions: [Int], documentControlModes: [String]) {
      self.apiVersions = apiVersions
      self.documentControlModes = documentControlModes
    }

    /// The defaults: API versions 20232, 20240, 20241; modes Standard, Extended.
    public static let defaults = Choices(
      apiVersions: [20232, 20240, 20241], documentControlModes: ["Standard", "Extended"])

    /// The settings a fresh server starts with: the newest version, the first mode.
    public var initialSettings: SharedSettings {
      SharedSettings(apiVersion: apiVersions.max() ?? 0, documentControlMode: documentControlModes.first ?? "")
    }
  }

  /// Checks ERP-S1 and ERP-S2 against the server's lists; returns the settings with
  /// the document control mode spelled as the list spells it (it is matched ignoring
  /// case: `extended` is `Extended`).
  public func validated(choices: Choices) throws(ValidationFailure) -> SharedSettings {
    var settings = self
    let written = documentControlMode.lowercased()
    if let canonical = choices.documentControlModes.first(where: { $0.lowercased() == written }) {
      settings.documentControlMode = canonical
    }
    try settings.validate(choices: choices)
    return settings
  }

  /// Checks ERP-S1 and ERP-S2 against the server's lists, exactly.
  public func validate(choices: Choices) throws(ValidationFailure) {
    var v = Validator()
    v.require(
      choices.apiVersions.contains(apiVersion), "api_version", "ERP-S1",
      "must be one of \(choices.apiVersions.map(String.init).joined(separator: ", ")) (got \(apiVersion))")
    v.require(
      choices.documentControlModes.contains(documentControlMode), "document_control_mode", "ERP-S2",
      "must be one of \(choices.documentControlModes.joined(separator: ", ")) (got \"\(documentControlMode)\")")
    try v.check()
  }
}
