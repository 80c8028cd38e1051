import ArgumentParser
import DMSClient
import DMSMessages
import DMSStubs

/// `dmsctl shared`: the section common to all companies.
struct Shared: AsyncParsableCommand {
  /// The flag that sets each field, for messages to people.
  static let flags = FlagNames(byField: [
    "settings.api_version": "--api-version", "settings.document_control_mode": "--document-control-mode",
    "settings.analytical_description": "--analytical-description", "settings.revision": "revision",
  ])

  static let configuration = CommandConfiguration(
    abstract: "The shared section: API version, ERP XL Document control mode, analytical description (ERP-S1 … S3).",
    subcommands: [Show.self, Set.self]
  )

  static func printShared(_ shared: Dms_Settings_V1_Shared, json: Bool) throws {
    if json { return Output.message(shared) }
    Output.fields([
      ("API version (ERP-S1)", String(shared.apiVersion)),
      ("  supported", shared.supportedApiVersions.map(String.init).joined(separator: ", ")),
      ("document control mode (ERP-S2)", shared.documentControlMode),
      ("  allowed", shared.documentControlModes.joined(separator: ", ")),
      ("analytical description (ERP-S3)", Output.yesNo(shared.analyticalDescription)),
      ("revision", String(shared.revision)),
    ])
  }

  struct Show: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show the shared section.")
    @OptionGroup var connection: ConnectionOptions

    func run() async throws {
      try await connection.withClient(flags: Shared.flags) { client in
        try printShared(
          try await Dms_Settings_V1_SharedSettings.Client(client).get(options: connection.callOptions),
          json: connection.json)
      }
    }
  }

  struct Set: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Change the shared section (saved with the revision read).")
    @OptionGroup var connection: ConnectionOptions
    @Option(help: "ERP-S1: one of the supported API versions.") var apiVersion: Int32?
    @Option(help: "ERP-S2: one of the allowed modes.") var documentControlMode: String?
    @Option(help: "ERP-S3: true or false.") var analyticalDescription: Bool?

    func run() async throws {
      try await connection.withClient(flags: Shared.flags) { client in
        let shared = Dms_Settings_V1_SharedSettings.Client(client)
        var settings = try await shared.get(options: connection.callOptions)
        if let apiVersion { settings.apiVersion = apiVersion }
        if let documentControlMode { settings.documentControlMode = documentControlMode }
        if let analyticalDescription { settings.analyticalDescription = analyticalDescription }
        var request = Dms_Settings_V1_UpdateSharedSettingsRequest()
        request.settings = settings
        let saved = try await shared.update(request, options: connection.callOptions)
        Output.noteUnchanged(before: settings.revision, after: saved.revision, json: connection.json)
        try printShared(saved, json: connection.json)
      }
    }
  }
}
