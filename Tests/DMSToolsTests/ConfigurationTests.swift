import Foundation
import Testing

/// `dms-settingsd`'s configuration as an operator meets it (CFG-10): a misspelt key in
/// any source stops start-up naming the nearest known key; a broken file says where.
@Suite("dms-settingsd configuration (CFG-10)", .serialized)
struct ConfigurationTests {
  /// Runs the server with `arguments` and environment `environment`; it must refuse to
  /// start (exit 78) before listening.
  func refused(_ arguments: [String], environment: [String: String] = [:]) async throws -> Tools.Run {
    let data = Tools.temporaryDirectory()
    defer { try? FileManager.default.removeItem(atPath: data) }
    let run = try await Tools.run(
      "dms-settingsd", ["--port", "0", "--data-directory", data] + arguments, environment: environment,
      timeout: .seconds(20))
    #expect(run.status == 78, "\(run)")
    #expect(!run.stderr.contains("listening"), "\(run)")
    return run
  }

  func file(_ text: String) -> String {
    let path = Tools.temporaryDirectory() + "/settings.json"
    FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
    return path
  }

  @Test("CFG-10: a misspelt key on the command line stops start-up, naming the nearest key")
  func misspeltOption() async throws {
    let run = try await refused(["--settings-ksef-workmode", "Test"])
    #expect(
      run.stderr.contains(
        "unknown configuration key --settings-ksef-workmode on the command line; the nearest known key is --settings-ksef-work-mode"
      ), "\(run)")
  }

  @Test("CFG-10: misspelt keys in the file are each named, with line and column")
  func misspeltFileKeys() async throws {
    let path = file(
      """
      {
        "settings": {
          "ksef-workmode": "Test",
          "multicompany": true
        }
      }
      """)
    let run = try await refused(["--config", path])
    #expect(
      run.stderr.contains(
        "\(path), line 3, column 5: unknown key settings.ksef-workmode; the nearest known key is settings.ksef-work-mode"
      ),
      "\(run)")
    #expect(
      run.stderr.contains(
        "\(path), line 4, column 5: unknown key settings.multicompany; the nearest known key is settings.multi-company"),
      "\(run)")
  }

  @Test("CFG-10: an environment variable under the server's prefixes that is not a key stops start-up")
  func misspeltEnvironmentVariable() async throws {
    let run = try await refused([], environment: ["SETTINGS_KSEF_WORKMODE": "Test"])
    #expect(run.stderr.contains("unknown environment variable SETTINGS_KSEF_WORKMODE"), "\(run)")
    #expect(run.stderr.contains("the nearest known key is SETTINGS_KSEF_WORK_MODE"), "\(run)")
  }

  @Test(
    "a broken configuration file is reported with its line and column",
    arguments: [
      ("{\n  \"server\": {\n    \"port\": 7411,\n  }\n}", "line 4, column 3: a trailing comma before '}'"),
      ("{\"server\": {\"port\": 7411}", "line 1, column 26: the object is not closed"),
      ("{\"log\": {\"level\": 'debug'}}", "line 1, column 19: strings are written in double quotes"),
      ("", "the text is empty"),
      ("[1]", "line 1, column 1: expected an object"),
      (
        "{\"server\": {\"port\": 1}, \"server\": {}}", "the key \"server\" is written twice (first at line 1, column 2)"
      ),
    ])
  func brokenFile(text: String, expected: String) async throws {
    let path = file(text)
    let run = try await refused(["--config", path])
    #expect(run.stderr.contains(path), "\(run)")
    #expect(run.stderr.contains(expected), "\(run)")
    #expect(!run.stderr.contains("NSCocoaErrorDomain"), "\(run)")
  }

  @Test(
    "storage.postgres.*: a bad URL, sslmode or parameter, a tuning key without a URL, an owner on another database",
    arguments: [
      (["--storage-postgres-url", "mysql://u:hunter2@db/x"], "storage.postgres.url: not a postgres:// URL"),
      (["--storage-postgres-url", "postgres://u:hunter2@db"], "storage.postgres.url: names no database"),
      (
        ["--storage-postgres-url", "postgres://u:hunter2@db/x?sslmode=strict"],
        "sslmode strict is not one of disable, prefer, require, verify-ca, verify-full"
      ),
      (
        ["--storage-postgres-url", "postgres://u:hunter2@db/x?sslmde=require"],
        "unknown parameter sslmde (known: sslmode, sslrootcert, host, connect_timeout, application_name)"
      ),
      (
        ["--storage-postgres-url", "postgres://u:hunter2@db/x?connect_timeout=0"],
        "storage.postgres.url: connect_timeout 0 is not a whole number of seconds, 1–120"
      ),
      (
        ["--storage-postgres-pool-size", "8"],
        "storage.postgres.pool-size is set but storage.postgres.url is not"
      ),
      (
        ["--storage-postgres-url", "postgres://u:hunter2@db/x", "--storage-postgres-pool-size", "0"],
        "storage.postgres.pool-size"
      ),
      (
        [
          "--storage-postgres-url", "postgres://app:hunter2@db/x",
          "--storage-postgres-owner-url", "postgres://owner:hunter2@db/y",
        ],
        "name different databases (postgres://app@db:5432/x and postgres://owner@db:5432/y)"
      ),
    ])
  func postgresKeys(arguments: [String], expected: String) async throws {
    let run = try await refused(arguments)
    #expect(run.stderr.contains(expected), "\(run)")
    #expect(!run.stderr.contains("hunter2"), "the password is never repeated: \(run)")
  }

  @Test(
    "MAIL-6: storage.administrator and its hash go together, the hash must be one, and neither with PostgreSQL",
    arguments: [
      (["--storage-administrator", "dba"], "go together: set both or neither"),
      (["--storage-administrator-password-hash", "$scrypt$ln=10,r=8,p=1$c2FsdA$hunter2"], "go together"),
      (
        ["--storage-administrator", "dba", "--storage-administrator-password-hash", "hunter2"],
        "make one with dms-settingsd hash-password"
      ),
      (
        [
          "--storage-postgres-url", "postgres://u:hunter2@db/x", "--storage-administrator", "dba",
          "--storage-administrator-password-hash", "$scrypt$ln=10,r=8,p=1$c2FsdGVkc2FsdA$ZGlnZXN0ZGlnZXN0ZGlnZXN0",
        ],
        "storage.administrator is for SQLite"
      ),
    ])
  func storageAdministratorKeys(arguments: [String], expected: String) async throws {
    let run = try await refused(arguments)
    #expect(run.stderr.contains(expected), "\(run)")
    #expect(!run.stderr.contains("hunter2"), "the password is never repeated: \(run)")
  }

  @Test(
    "storage.postgres.url naming a database that does not answer: exit 74 at once, why in plain words, no password",
    arguments: [
      ("postgres://app:hunter2@127.0.0.1:1/x?sslmode=disable", "postgres://app@127.0.0.1:1/x"),
      // An IPv6 address is written in brackets and connected to without them.
      ("postgres://app:hunter2@[::1]:1/x?sslmode=disable", "postgres://app@[::1]:1/x"),
    ])
  func postgresUnreachable(url: String, shown: String) async throws {
    let data = Tools.temporaryDirectory()
    defer { try? FileManager.default.removeItem(atPath: data) }
    let started = ContinuousClock.now
    let run = try await Tools.run(
      "dms-settingsd", ["--port", "0", "--data-directory", data, "--storage-postgres-url", url], timeout: .seconds(20))
    #expect(run.status == 74, "\(run)")
    #expect(
      run.stderr.contains(
        "cannot reach the PostgreSQL database at \(shown) (connection refused (is PostgreSQL running and listening there?))"
      ), "\(run)")
    #expect(!run.stderr.contains("hunter2"), "\(run)")
    #expect(ContinuousClock.now - started < .seconds(19))
  }

  @Test("a key set to an object where a value belongs is named with its position")
  func objectWhereAValueBelongs() async throws {
    let run = try await refused(["--config", file("{\"server\": {\"host\": {\"name\": \"x\"}}}")])
    #expect(run.stderr.contains("line 1, column 13: server.host must be a value, not an object"), "\(run)")
  }

  @Test("a configuration file given as a pipe (--config <(...)) is read")
  func fileFromAPipe() async throws {
    let run = try await Tools.run(
      "/bin/bash",
      [
        "-c",
        "dms-settingsd --port 0 --data-directory \(Tools.temporaryDirectory()) "
          + "--config <(echo '{\"settings\": {\"ksef-workmode\": \"Test\"}}')",
      ], environment: ["PATH": Tools.pathWithTools], timeout: .seconds(20))
    #expect(run.status == 78, "\(run)")
    #expect(run.stderr.contains("unknown key settings.ksef-workmode"), "read, then refused for its key: \(run)")
  }

  @Test(
    "one process per SQLite data folder: a second server and bootstrap-admin beside a running one are refused (75) naming it; after a kill -9 the folder is free"
  )
  func oneProcessPerDataFolder() async throws {
    let first = try await Daemon.start()
    let second = try await Tools.run(
      "dms-settingsd", ["--port", "0", "--data-directory", first.dataDirectory] + Daemon.hashCost,
      timeout: .seconds(30))
    #expect(second.status == 75, "\(second)")
    #expect(second.stderr.contains("is in use by another dms-settingsd (pid "), "\(second)")
    let bootstrap = try await Tools.run(
      "dms-settingsd",
      ["bootstrap-admin", "--login", "other", "--data-directory", first.dataDirectory] + Daemon.hashCost,
      input: Daemon.password + "\n", timeout: .seconds(30))
    #expect(bootstrap.status == 75 && bootstrap.stderr.contains("bootstrap-admin runs while the server is stopped"))
    // A file where the folder should be: said in plain words.
    let file = Tools.temporaryDirectory() + "/not-a-folder"
    FileManager.default.createFile(atPath: file, contents: Data())
    let notFolder = try await Tools.run(
      "dms-settingsd", ["--port", "0", "--data-directory", file] + Daemon.hashCost, timeout: .seconds(30))
    #expect(notFolder.status == 74 && notFolder.stderr.contains("is a file, not a folder"), "\(notFolder)")
    // A crash leaves no lock behind: the kernel's ends with the process.
    try await first.kill()
    let again = try await Daemon.start(dataDirectory: first.dataDirectory)
    #expect(try await again.stop() == 0)
  }

  /// A server with the company ACME, whose operator password (a secret) is `Op-Passw0rd`.
  private func daemonWithACME() async throws -> Daemon {
    let daemon = try await Daemon.start()
    let added = try await Tools.ctl(
      daemon, "companies", "add", "ACME", "--name", "Acme", "--db-server", "sql01", "--db-name", "XL", "--db-user",
      "dms", "--operator-password-file", "-", input: "Op-Passw0rd\n")
    #expect(added.status == 0, "\(added)")
    return daemon
  }

  @Test(
    "a master key that does not open the database's secrets (another one, or a new one made because it is missing) stops start-up (78) before anything is served or sealed"
  )
  func wrongMasterKey() async throws {
    let daemon = try await daemonWithACME()
    #expect(try await daemon.stop() == 0)
    let keyFile = daemon.dataDirectory + "/master.key"
    let key = try String(contentsOfFile: keyFile, encoding: .utf8)
    let write = { (text: String) throws in
      try text.write(toFile: keyFile, atomically: true, encoding: .utf8)
      try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: keyFile)
    }
    let start = { () async throws -> Tools.Run in
      try await Tools.run(
        "dms-settingsd", ["--port", "0", "--data-directory", daemon.dataDirectory] + Daemon.hashCost,
        timeout: .seconds(30))
    }
    try write(Data((0..<32).map { _ in UInt8.random(in: 0...255) }).base64EncodedString())
    let other = try await start()
    #expect(other.status == 78 && other.stderr.contains("the master key does not open this database's secrets"))
    #expect(other.stderr.contains("of company"), "which secrets were tried: \(other)")
    try FileManager.default.removeItem(atPath: keyFile)
    let missing = try await start()
    #expect(missing.status == 78 && missing.stderr.contains("the database's key is missing"), "\(missing)")
    try write(key)
    let restored = try await Daemon.start(dataDirectory: daemon.dataDirectory)
    #expect(try await restored.stop() == 0)
  }

  @Test(
    "a stopped server's whole database is in settings.sqlite, none left in its log: that file with master.key is a backup"
  )
  func stoppedFolderIsABackup() async throws {
    let daemon = try await daemonWithACME()
    #expect(try await daemon.stop() == 0)
    let wal = daemon.dataDirectory + "/settings.sqlite-wal"
    let left = (try? FileManager.default.attributesOfItem(atPath: wal)[.size] as? Int) ?? 0
    #expect(left == 0, "the log still holds \(left) bytes")
    // What an operator copies: the database file and the key, nothing else.
    let copy = Tools.temporaryDirectory()
    for name in ["settings.sqlite", "master.key"] {
      try FileManager.default.copyItem(atPath: daemon.dataDirectory + "/" + name, toPath: copy + "/" + name)
    }
    let restored = try await Daemon.start(dataDirectory: copy)
    let shown = try await Tools.ctl(restored, "companies", "show", "ACME")
    #expect(shown.status == 0 && shown.stdout.contains("Acme"), "\(shown)")
    // The secret opens with the copied key.
    let secret = try await Tools.ctl(restored, "companies", "reveal", "ACME", "operator-password", "--reason", "backup")
    #expect(secret.status == 0 && secret.stdout.contains("Op-Passw0rd"), "\(secret)")
    #expect(try await restored.stop() == 0)
  }

  @Test("a stray argument is refused with the form keys take")
  func strayArgument() async throws {
    let run = try await refused(["multi-company"])
    #expect(run.stderr.contains("unexpected argument \"multi-company\""), "\(run)")
  }

  @Test("CFG-10: every key of the file, environment and command line is documented in docs/CONFIGURATION.md")
  func everyKeyIsDocumented() async throws {
    // The server's --help lists no keys; the documentation must, so the list of keys
    // in ConfigurationKeys and the doc cannot drift: a file using every documented key
    // starts the server.
    let doc = try String(
      contentsOf: Tools.packageRoot.appendingPathComponent("docs/CONFIGURATION.md"), encoding: .utf8)
    let keys = doc.matches(of: /\| `((?:settings|server|storage|log)\.[a-z.-]+)` \|/).map { String($0.1) }
    #expect(keys.count >= 25, "\(keys)")
    // And the other way: every key the server reads (ConfigurationKeys.all) is documented.
    let source = try String(
      contentsOf: Tools.packageRoot.appendingPathComponent("Sources/dms-settingsd/ConfigurationKeys.swift"),
      encoding: .utf8)
    let read = source.matches(of: /^\s*"((?:settings|server|storage|log)\.[a-z.-]+)",$/.anchorsMatchLineEndings())
      .map { String($0.1) }
    #expect(read.count >= 25, "\(read)")
    #expect(
      Set(read) == Set(keys),
      "read but not documented: \(Set(read).subtracting(keys)); documented but not read: \(Set(keys).subtracting(read))"
    )
    // Each documented key, written as an environment variable with a bad value, is
    // recognised (refused for its value, not as unknown).
    for key in keys where key != "storage.master-key" {
      let name = key.uppercased().replacingOccurrences(of: ".", with: "_").replacingOccurrences(of: "-", with: "_")
      let run = try await Tools.run(
        "dms-settingsd", ["--port", "0", "--data-directory", Tools.temporaryDirectory(), "--log-level", "nonsense"],
        environment: [name: "x"], timeout: .seconds(20))
      #expect(run.status == 78)
      #expect(!run.stderr.contains("unknown environment variable"), "\(key): \(run)")
    }
  }
}
