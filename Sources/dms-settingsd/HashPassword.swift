import ArgumentParser
import DMSServices
import Foundation

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// `dms-settingsd hash-password`: the scrypt hash of a password, for
/// `storage.administrator-password-hash` (MAIL-6: the SQLite deployment's storage
/// administrator, who saves and deletes database mail profiles).
struct HashPassword: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "hash-password",
    abstract: "Print the hash of a password for storage.administrator-password-hash.",
    discussion: """
      The password is the first line of standard input (printf '%s\\n' "$PASSWORD" | ...), or
      asked for without echo on a terminal. The hash ($scrypt$ln=17,r=8,p=1$salt$hash) goes
      into the configuration with storage.administrator, the login (docs/settings/MAIL.md);
      its cost is security.password-hash-log-n. Exit codes: 0 done, 65 no password, 78 bad
      configuration.
      """)

  @OptionGroup var options: ConfigurationOptions

  func run() async throws {
    let loaded = try options.load()
    var password: String?
    if isatty(STDIN_FILENO) != 0 {
      password = getpass("storage administrator's password: ").map { String(cString: $0) }
    } else if let line = readLine(strippingNewline: true) {
      password = line.hasSuffix("\r") ? String(line.dropLast()) : line
    }
    guard let password, !password.isEmpty else {
      FileHandle.standardError.write(
        Data("dms-settingsd hash-password: no password on standard input (the first line is the password)\n".utf8))
      throw ExitCode(65)  // EX_DATAERR
    }
    print(try await loaded.passwordHasher.hash(password).encoded)
  }
}
