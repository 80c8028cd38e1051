import ArgumentParser
import DMSClient
import DMSMessages
import DMSStubs
import DMSWire
import Foundation

/// `dmsctl info`: the server's SETTINGS and, where served, ServerInfo.
struct Info: AsyncParsableCommand {
  static let configuration = CommandConfiguration(abstract: "Connect and print the server's name, version and limits.")

  @OptionGroup var connection: ConnectionOptions

  func run() async throws {
    try await connection.withClient { client in
      let settings = try await client.serverSettings(timeout: connection.callTimeout)
      // ServerInfo is a settings service: a server without it still answers info.
      let info = try? await Dms_Settings_V1_ServerInfo.Client(client).get(options: connection.callOptions)
      // The server that answered (with several given, the first that could be reached).
      let address = client.server.description
      if connection.json {
        Output.json(
          .object([
            ("address", .string(address)),
            ("protocol_version", .int(Preface.version)),
            ("settings", ProtoJSON.output(settings)),
            ("server_info", info.map { ProtoJSON.output($0) } ?? .null),
          ]))
      } else {
        Output.table(
          ["SETTING", "VALUE"],
          [
            ["server", settings.server],
            ["address", address],
            ["protocol version", "\(Preface.version)"],
            ["max frame size", "\(settings.maxFrameSize) bytes"],
            ["max concurrent calls", "\(settings.maxConcurrentCalls)"],
            ["idle timeout", "\(settings.idleTimeoutMs) ms"],
            ["features", settings.features.joined(separator: ", ")],
          ] + (info.map(Self.rows) ?? [])
        )
      }
    }
  }

  static func rows(_ info: Dms_Settings_V1_ServerInfoResponse) -> [[String]] {
    [
      ["server version", info.serverVersion],
      ["mode (CFG-1)", info.mode == .multiCompany ? "multi-company" : "single-company"],
      ["KSeF work mode (CFG-2)", info.ksefWorkMode],
      ["delete mails after sending (CFG-3)", Output.yesNo(info.deleteMailsAfterSending)],
      ["new document permissions (CFG-4)", Output.yesNo(info.useNewModeOfDocumentPermissions)],
      ["attachment workflow files (CFG-5)", info.destinationAttachmentWorkflow],
      ["repository files (CFG-6)", info.destinationAttachmentsRepository],
      ["use repository (CFG-7)", Output.yesNo(info.useRepository)],
      ["e-Delivery environment (CFG-8)", info.edeliveryEnvironment],
      ["API versions (ERP-S1)", info.supportedApiVersions.map(String.init).joined(separator: ", ")],
      ["document control modes (ERP-S2)", info.documentControlModes.joined(separator: ", ")],
    ] + (info.singleCompanyCode.isEmpty ? [] : [["single company", info.singleCompanyCode]])
  }
}
