import ArgumentParser
import DMSClient
import DMSMessages
import DMSRPC
import DMSStubs
import Foundation

/// `dmsctl api-systems`: the systems that work with the DMS through its API (APISYS).
struct ApiSystems: AsyncParsableCommand {
  static let flags = FlagNames(byField: ["name": "name", "identifier": "system"])

  static let configuration = CommandConfiguration(
    commandName: "api-systems",
    abstract: "API systems (APISYS): systems that sign in with an identifier and secret (administrators only).",
    discussion: """
      Add and rotate print the secret once: the server keeps only its hash. A system
      signs in with `dmsctl login --system IDENTIFIER` or Auth/LoginSystem.
      """,
    subcommands: [List.self, Add.self, Rotate.self, Remove.self]
  )

  static func list(_ client: RPCClient, _ connection: ConnectionOptions) async throws -> [Dms_Settings_V1_ApiSystem] {
    try await Dms_Settings_V1_ApiSystems.Client(client).list(options: connection.callOptions).systems
  }

  /// The system named `system` (its identifier, or its name ignoring case).
  static func find(_ system: String, _ client: RPCClient, _ connection: ConnectionOptions) async throws
    -> Dms_Settings_V1_ApiSystem
  {
    let all = try await list(client, connection)
    if let found = all.first(where: { $0.identifier == system.lowercased() })
      ?? all.first(where: { $0.name.lowercased() == system.lowercased() })
    {
      return found
    }
    throw RPCError(
      code: .notFound,
      message: "no API system with the name or identifier \(system) (dmsctl api-systems list shows them)")
  }

  static func printSecret(_ response: Dms_Settings_V1_ApiSystemSecret, json: Bool) {
    if json { return Output.message(response) }
    Output.fields([
      ("name", response.system.name),
      ("identifier", response.system.identifier),
      ("secret", response.secret),
    ])
    var stderr = StandardError()
    print("the secret is shown this once: give it to \(response.system.name) now", to: &stderr)
  }

  struct List: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the API systems.")
    @OptionGroup var connection: ConnectionOptions

    func run() async throws {
      try await connection.withClient(flags: ApiSystems.flags) { client in
        let systems = try await ApiSystems.list(client, connection)
        if connection.json {
          var response = Dms_Settings_V1_ListApiSystemsResponse()
          response.systems = systems
          return Output.message(response)
        }
        Output.table(
          ["NAME", "IDENTIFIER", "SECRET"],
          systems.map {
            [$0.name, $0.identifier, $0.secretSet ? "set \(Session.time($0.secretSetAtUnixMs))" : "(none)"]
          })
      }
    }
  }

  struct Add: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Add an API system (APISYS-3: a name of at least 2 characters); prints its identifier and secret.")
    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "The name, unique ignoring case.") var name: String

    func run() async throws {
      try await connection.withClient(flags: ApiSystems.flags) { client in
        var request = Dms_Settings_V1_AddApiSystemRequest()
        request.name = name
        printSecret(
          try await Dms_Settings_V1_ApiSystems.Client(client).add(request, options: connection.callOptions),
          json: connection.json)
      }
    }
  }

  struct Rotate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Make a system a new secret: the old one stops working and its sessions end.",
      discussion: "Asks for confirmation on a terminal; scripts (no terminal) must give --yes.")
    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "The system's name or identifier.") var system: String
    @Flag(help: "Rotate without asking.") var yes = false

    func run() async throws {
      try await connection.withClient(flags: ApiSystems.flags) { client in
        let found = try await ApiSystems.find(system, client, connection)
        if !yes, found.secretSet {
          try Confirmation.ask(
            "Make \(found.name) a new secret? Its current secret stops working at once.",
            refusal: "api-systems rotate ends \(found.name)'s current secret: give --yes to confirm")
        }
        var request = Dms_Settings_V1_RotateApiSystemSecretRequest()
        request.identifier = found.identifier
        printSecret(
          try await Dms_Settings_V1_ApiSystems.Client(client).rotateSecret(request, options: connection.callOptions),
          json: connection.json)
      }
    }
  }

  struct Remove: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "rm",
      abstract: "Delete an API system (its sessions end).",
      discussion: "Asks for confirmation on a terminal; scripts (no terminal) must give --yes.")
    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "The system's name or identifier.") var system: String
    @Flag(help: "Delete without asking.") var yes = false

    func run() async throws {
      try await connection.withClient(flags: ApiSystems.flags) { client in
        let found = try await ApiSystems.find(system, client, connection)
        if !yes {
          try Confirmation.ask(
            "Delete API system \(found.name) (\(found.identifier))?",
            refusal: "api-systems rm deletes \(found.name): give --yes to confirm")
        }
        var request = Dms_Settings_V1_DeleteApiSystemRequest()
        request.identifier = found.identifier
        _ = try await Dms_Settings_V1_ApiSystems.Client(client).delete(request, options: connection.callOptions)
        if connection.json {
          return Output.json(.object([("deleted", .string(found.name)), ("identifier", .string(found.identifier))]))
        }
        Output.line("deleted \(found.name)")
      }
    }
  }
}
