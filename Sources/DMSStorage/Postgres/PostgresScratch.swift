import Foundation
import Logging
import NIOCore
import NIOPosix
import PostgresNIO

/// Throwaway databases for tests: `DMS_TEST_POSTGRES` names a superuser's URL of a
/// PostgreSQL the tests may use (`scripts/postgres start` prints one; `scripts/test`
/// starts one). Each database is new and empty, owned by `dms_owner`; the server works
/// as `dms_app`, which owns nothing, as in production.
package enum PostgresScratch {
  /// MAIL-6 in tests: a role that signs in with a password and is a member of `dms_owner`
  /// (the database's administrator, as `PostgresSettingsStore.verifyDatabaseAdministrator`
  /// sees it), and one that signs in but is not. scripts/postgres checks their passwords
  /// (scram-sha-256), unlike the trusted roles'.
  package static let databaseAdministrator = (login: "dms_dba", password: "the database administrator's password")
  package static let clerk = (login: "dms_clerk", password: "a clerk's own password")

  /// The superuser URL from the environment, if any.
  package static var adminURL: String? {
    ProcessInfo.processInfo.environment["DMS_TEST_POSTGRES"].flatMap { $0.isEmpty ? nil : $0 }
  }

  /// A new empty database and the options that reach it as `dms_app` (owner: `dms_owner`).
  package static func create(adminURL: String) async throws -> PostgresOptions {
    let admin = try PostgresOptions.Endpoint(url: adminURL, key: "DMS_TEST_POSTGRES")
    let name = "dms_test_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
    let connection: PostgresConnection
    do {
      connection = try await connect(admin)
    } catch {
      throw StoreError(.unavailable, "making a test database: \(String(reflecting: error))")
    }
    do {
      let quoted = { (text: String) in text.replacingOccurrences(of: "'", with: "''") }
      let roles = [
        "dms_owner LOGIN", "dms_app LOGIN",
        "\(databaseAdministrator.login) LOGIN PASSWORD '\(quoted(databaseAdministrator.password))' IN ROLE dms_owner",
        "\(clerk.login) LOGIN PASSWORD '\(quoted(clerk.password))'",
      ]
      for role in roles {
        // Roles are the cluster's: made once, by whichever test comes first.
        try await connection.query(
          PostgresQuery(
            unsafeSQL: """
              DO $$ BEGIN CREATE ROLE \(role); EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$
              """), logger: connection.logger)
      }
      try await connection.query(
        PostgresQuery(unsafeSQL: "CREATE DATABASE \(name) OWNER dms_owner"), logger: connection.logger)
      try await connection.close()
    } catch {
      try? await connection.close()
      throw StoreError(.unavailable, "making a test database: \(String(reflecting: error))")
    }
    var app = admin
    app.user = "dms_app"
    app.password = nil
    app.database = name
    app.tls = .disable
    var owner = app
    owner.user = "dms_owner"
    var options = PostgresOptions(endpoint: app, owner: owner)
    options.poolSize = 1
    // Tests run many servers at once on a loaded machine.
    options.connectTimeout = .seconds(30)
    return options
  }

  /// A plain connection as `endpoint`'s role (tests that look at the database directly).
  package static func connect(_ endpoint: PostgresOptions.Endpoint) async throws -> PostgresConnection {
    var configuration = PostgresConnection.Configuration(
      host: endpoint.host, port: endpoint.port, username: endpoint.user, password: endpoint.password,
      database: endpoint.database, tls: .disable)
    configuration.options.connectTimeout = .seconds(5)
    return try await PostgresConnection.connect(
      on: MultiThreadedEventLoopGroup.singleton.next(), configuration: configuration, id: 0,
      logger: Logger(label: "dms.tests.postgres"))
  }
}
