import ArgumentParser
import DMSClient
import DMSMessages
import DMSRPC
import DMSStubs
import Foundation
import Histogram
import NIOSSL
import SwiftProtobuf

/// `dms-bench`: a load generator over the project's own client library.
@main
struct Bench: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "dms-bench",
    abstract: "Load generator for dms-settingsd: calls/s and latency percentiles.",
    discussion: """
      Runs connections × in-flight workers, each calling as fast as it is answered, for
      --duration seconds after --warmup seconds. Build in release mode for numbers that
      mean anything (scripts/bench does).
      """,
    subcommands: [Run.self, Seed.self, MailBench.self],
    defaultSubcommand: Run.self
  )
}

/// Connection options shared by the subcommands.
struct Target: ParsableArguments {
  @Option(help: "Server as host:port.") var server = "127.0.0.1:7411"
  @Option(help: "PEM file of the CA to trust; connects with TLS.") var ca: String?
  @Option(help: "Name the server's certificate must carry.") var serverName = "localhost"
  @Option(
    help: "Sign in as this operator first (its password from --password-file); every connection shares the session.")
  var login: String?
  @Option(help: "The file holding --login's password.") var passwordFile: String?

  /// A session token for the connections: signing in once (a KDF on the server), not
  /// once per connection. Nil without --login.
  func token() async throws -> String? {
    guard let login else { return nil }
    guard let passwordFile, let data = FileManager.default.contents(atPath: passwordFile) else {
      throw ValidationError("--login needs --password-file with the password")
    }
    let password = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .newlines)
    let client = try client(token: nil)
    defer { Task { await client.close() } }
    var request = Dms_Auth_V1_LoginRequest()
    request.login = login
    request.password = password
    return try await Dms_Auth_V1_Auth.Client(client).login(request).token
  }

  func client(token: String?) throws -> RPCClient {
    guard let colon = server.lastIndex(of: ":"), let port = Int(server[server.index(after: colon)...]) else {
      throw ValidationError("--server must be host:port")
    }
    var tls: TLSConfiguration?
    if let ca {
      var configuration = TLSConfiguration.makeClientConfiguration()
      configuration.trustRoots = .file(ca)
      tls = configuration
    }
    return RPCClient(
      configuration: ClientConfiguration(
        host: String(server[..<colon]), port: port, tls: tls, serverHostname: serverName, userAgent: "dms-bench",
        credentials: token.map { .token($0) }))
  }
}

/// A valid company for seeding.
func benchCompany(_ code: String) -> Dms_Settings_V1_Company {
  var company = Dms_Settings_V1_Company()
  company.shortName = code
  company.mode = .erpXl
  company.name = "Company \(code)"
  company.connection.server = "sql01"
  company.connection.database = "ERPXL_\(code)"
  company.connection.authentication = .sql
  company.connection.user = "dms"
  return company
}

/// `dms-bench seed`: stores companies 00001 … for read workloads.
struct Seed: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Create companies 00001 … NNNNN (existing ones are kept), for read workloads.")
  @OptionGroup var target: Target
  @Option(help: "How many companies.") var companies = 10

  func run() async throws {
    let client = try target.client(token: try await target.token())
    let api = Dms_Settings_V1_Companies.Client(client)
    let total = companies
    try await withThrowingTaskGroup(of: Void.self) { group in
      for worker in 0..<32 {
        group.addTask {
          var index = worker + 1
          while index <= total {
            var request = Dms_Settings_V1_CreateCompanyRequest()
            request.company = benchCompany(Self.code(index))
            do {
              _ = try await api.create(request)
            } catch let error as RPCError where error.code == .alreadyExists {}
            index += 32
          }
        }
      }
      try await group.waitForAll()
    }
    print("seeded \(total) companies")
    await client.close()
  }

  /// The short name of company `index` (1 … 99,999): five digits, as ERP-3 allows.
  static func code(_ index: Int) -> String {
    String(format: "%05d", index)
  }
}
