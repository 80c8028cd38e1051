import ArgumentParser
import DMSDomain
import DMSServices
import DMSStorage
import Foundation
import Logging

/// `dms-settingsd bootstrap-admin --login L`: makes `L` an administrator with the
/// password read from standard input, for deployments that provision the server
/// without a person at it (and for an administrator locked out). Run it with the
/// server stopped: a running server would not see the change until restarted.
struct BootstrapAdmin: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "bootstrap-admin",
    abstract: "Create an administrator (or reset one's password); the password is read from standard input.",
    discussion: """
      The password is the first line of standard input (printf '%s\\n' "$PASSWORD" | ...).
      When the login exists, it becomes an enabled administrator with that password and
      its sessions end. Run it while the server is stopped (it reads the same
      configuration: --config, --data-directory, ...). Exit codes: 0 done, 65 the login
      or password breaks a rule, 78 bad configuration, 74 the database cannot be used.
      """)

  @Option(help: "The administrator's login.")
  var login: String

  @OptionGroup var options: ConfigurationOptions

  func run() async throws {
    let loaded = try options.load()
    var logger = Logger(label: "dms-settingsd")
    logger.logLevel = loaded.logLevel
    guard let line = readLine(strippingNewline: true), !line.isEmpty else {
      FileHandle.standardError.write(
        Data("dms-settingsd bootstrap-admin: no password on standard input (the first line is the password)\n".utf8))
      throw ExitCode(65)  // EX_DATAERR
    }
    let password = line.hasSuffix("\r") ? String(line.dropLast()) : line
    let store = try await StoreOpening.open(loaded, logger: logger)
    let outcome: Result<InitialAdministrator.Outcome, any Error>
    do {
      outcome = .success(
        try await InitialAdministrator.bootstrap(
          login: login, password: password, store: store, hasher: loaded.passwordHasher,
          policy: loaded.security.passwordPolicy))
    } catch {
      outcome = .failure(error)
    }
    // The change in settings.sqlite itself, not only in its log (a copy of the folder).
    await StoreOpening.close(store, logger: logger)
    do {
      let what = try outcome.get() == .created ? "created the administrator" : "reset the password of the administrator"
      print("dms-settingsd bootstrap-admin: \(what) \(login)")
    } catch let error as ValidationFailure {
      for violation in error.violations {
        FileHandle.standardError.write(Data("dms-settingsd bootstrap-admin: \(violation)\n".utf8))
      }
      throw ExitCode(65)
    } catch let error as StoreError {
      FileHandle.standardError.write(Data("dms-settingsd bootstrap-admin: \(error.message)\n".utf8))
      throw ExitCode(74)
    }
  }
}
