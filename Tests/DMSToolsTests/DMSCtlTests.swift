import DMSRPC
import Foundation
import Testing

/// `dmsctl` as administrators and scripts use it, against a real `dms-settingsd`:
/// exit codes, output that scripts can parse, names that match, streams that reach a
/// pipe as they happen.
@Suite("dmsctl against dms-settingsd", .serialized)
struct DMSCtlTests {
  /// Every line of `run`'s standard output parses as one JSON object.
  func jsonLines(_ run: Tools.Run) throws -> [JSONDocument.Node] {
    try run.lines.map { line in
      let node = try JSONDocument(parsing: line).root
      guard case .object = node.value else { throw Failure("not an object: \(line)") }
      return node
    }
  }

  struct Failure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
  }

  func member(_ node: JSONDocument.Node, _ path: String...) -> JSONDocument.Value? {
    var current = node
    for key in path {
      guard case .object(let members) = current.value, let next = members.first(where: { $0.key == key }) else {
        return nil
      }
      current = next.node
    }
    return current.value
  }

  func withDaemon(
    _ arguments: [String] = ["--settings-multi-company", "true"], _ body: (Daemon) async throws -> Void
  ) async throws {
    let daemon = try await Daemon.start(arguments)
    do {
      try await body(daemon)
      try await daemon.stop()
    } catch {
      try? await daemon.stop()
      throw error
    }
  }

  @discardableResult
  func addCompany(_ daemon: Daemon, _ code: String) async throws -> Tools.Run {
    let run = try await Tools.ctl(
      daemon, "companies", "add", code, "--name", "Company \(code)", "--db-server", "sql01", "--db-name", "XL",
      "--db-user", "dms", "--operator-password-file", "-", input: "Op-Passw0rd\n")
    #expect(run.status == 0, "\(run)")
    return run
  }

  @Test("exit codes: 0 done, 1 an RPC error, 2 usage, 3 cannot connect")
  func exitCodes() async throws {
    try await withDaemon { daemon in
      #expect(try await Tools.ctl(daemon, "companies", "list").status == 0)
      let notFound = try await Tools.ctl(daemon, "companies", "show", "NOPE")
      #expect(notFound.status == 1 && notFound.stderr.hasPrefix("error: NOT_FOUND (5): "), "\(notFound)")
      let usage = try await Tools.ctl(daemon, "companies", "show")
      #expect(usage.status == 2, "\(usage)")
      let badOption = try await Tools.ctl(daemon, "companies", "list", "--nope")
      #expect(badOption.status == 2, "\(badOption)")
    }
    let refused = try await Tools.run("dmsctl", ["--server", "127.0.0.1:1", "info"])
    #expect(refused.status == 3, "\(refused)")
    #expect(refused.stderr.contains("cannot connect: connection refused by 127.0.0.1:1 (is the server running?)"))
    let json = try await Tools.run("dmsctl", ["--server", "127.0.0.1:1", "companies", "list", "--json"])
    #expect(json.status == 3 && json.stdout.isEmpty, "\(json)")
    let error = try JSONDocument(parsing: json.stderr.trimmingCharacters(in: .newlines)).root
    #expect(member(error, "error").map { "\($0)" } == "\(JSONDocument.Value.string("connect"))")
  }

  @Test("--server a,b: the first instance that answers; a session saved for the list is used with it")
  func severalServers() async throws {
    try await withDaemon { daemon in
      // 127.0.0.1:1 refuses: dmsctl goes on to the daemon, and says which one answered.
      let list = "127.0.0.1:1,127.0.0.1:\(daemon.port)"
      var environment = daemon.environment
      environment["DMS_SERVER"] = list
      let info = try await Tools.run("dmsctl", ["info", "--json"], environment: environment)
      #expect(info.status == 0 && info.stdout.contains("\"address\":\"127.0.0.1:\(daemon.port)\""), "\(info)")
      let login = try await Tools.run(
        "dmsctl", ["login", Daemon.login, "--password-file", "-"], environment: environment,
        input: Daemon.password + "\n")
      #expect(login.status == 0, "\(login)")
      #expect(try await Tools.run("dmsctl", ["whoami"], environment: environment).status == 0)
      let bad = try await Tools.run("dmsctl", ["--server", list + ",", "ping"])
      #expect(bad.status == 2 && bad.stderr.contains("or several separated by commas"), "\(bad)")
      let none = try await Tools.run("dmsctl", ["--server", "127.0.0.1:1,127.0.0.1:2", "ping"])
      #expect(none.status == 3 && none.stderr.contains("cannot reach any of 127.0.0.1:1, 127.0.0.1:2"), "\(none)")
    }
  }

  @Test(
    "a secret from a file saved on Windows (a byte-order mark, CRLF) is the secret without them, from a file or stdin")
  func windowsLineEnd() async throws {
    try await withDaemon { daemon in
      let file = Tools.temporaryDirectory() + "/password.txt"
      // As Notepad saves it: a byte-order mark first.
      try ("\u{FEFF}" + Daemon.password + "\r\n").write(toFile: file, atomically: true, encoding: .utf8)
      let fromFile = try await Tools.ctl(daemon, "login", Daemon.login, "--password-file", file)
      #expect(fromFile.status == 0, "\(fromFile)")
      let fromStdin = try await Tools.ctl(
        daemon, "login", Daemon.login, "--password-file", "-", input: Daemon.password + "\r\n")
      #expect(fromStdin.status == 0, "\(fromStdin)")
      // Only the line end: a password that ends in a space keeps it, so a wrong one still fails.
      let wrong = try await Tools.ctl(
        daemon, "login", Daemon.login, "--password-file", "-", input: Daemon.password + " \r\n")
      #expect(wrong.status == 1, "\(wrong)")
    }
  }

  @Test(
    "a session file others may read is refused (2), as ssh refuses such a key; logout still ends that session on the server"
  )
  func sessionFileReadableByOthers() async throws {
    try await withDaemon { daemon in
      let file = daemon.configHome + "/dmsctl/session-127.0.0.1-\(daemon.port)"
      let token = try String(contentsOfFile: file, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
      try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: file)
      let refused = try await Tools.ctl(daemon, "whoami")
      #expect(refused.status == 2 && refused.stderr.contains("may be read by others (mode 644)"), "\(refused)")
      let logout = try await Tools.ctl(daemon, "logout")
      #expect(logout.status == 0 && logout.stdout.contains("signed out"), "\(logout)")
      #expect(!FileManager.default.fileExists(atPath: file))
      // Ended on the server, not only forgotten: the copied token no longer works.
      var environment = daemon.environment
      environment["DMS_TOKEN"] = token
      let copied = try await Tools.run("dmsctl", ["whoami"], environment: environment)
      #expect(copied.status == 1 && copied.stderr.contains("UNAUTHENTICATED"), "\(copied)")
    }
  }

  @Test("usage errors show the subcommand's own usage, on stderr, exit 2")
  func usageOfTheSubcommand() async throws {
    try await withDaemon { daemon in
      // Raised while running (the secret's name is checked against the list).
      let run = try await Tools.ctl(daemon, "companies", "reveal", "ACME", "connection-password", "--reason", "x")
      #expect(run.status == 2 && run.stdout.isEmpty, "\(run)")
      #expect(run.stderr.contains("the secret must be one of db-password, altum-configuration-password"), "\(run)")
      #expect(run.stderr.contains("Usage: dmsctl companies reveal "), "\(run)")
      #expect(!run.stderr.contains("Usage: dmsctl <subcommand>"), "\(run)")
      // Raised in run() after connecting (a secret from a file that cannot be read).
      try await addCompany(daemon, "ACME")
      let file = try await Tools.ctl(daemon, "companies", "set", "ACME", "--db-password-file", "/nonexistent")
      #expect(file.status == 2 && file.stderr.contains("Usage: dmsctl companies set "), "\(file)")
    }
  }

  @Test(
    "a mistyped subcommand is named, wherever the connection options stand (not 'Unknown option --server'); a bad address by its source"
  )
  func mistypedSubcommand() async throws {
    for (arguments, word) in [
      (["--server", "127.0.0.1:1", "helth"], "helth"), (["companies", "--server", "127.0.0.1:1", "lst"], "lst"),
      (["companies", "lst", "--timeout", "3", "--tls"], "lst"),
    ] {
      let run = try await Tools.run("dmsctl", arguments)
      #expect(run.status == 2 && run.stderr.contains("Unexpected argument '\(word)'"), "\(arguments): \(run)")
      #expect(!run.stderr.contains("Unknown option"), "\(arguments): \(run)")
    }
    let json = try await Tools.run("dmsctl", ["--json", "companies", "lst"])
    #expect(json.status == 2 && json.stderr.contains(#""message":"Unexpected argument 'lst'""#), "\(json)")
    // An option no command knows is still named.
    let bogus = try await Tools.run("dmsctl", ["companies", "list", "--bogus", "--server", "127.0.0.1:1"])
    #expect(bogus.status == 2 && bogus.stderr.contains("Unknown option '--bogus'"), "\(bogus)")
    // A bad server address is named by where it came from.
    let environment = try await Tools.run("dmsctl", ["info"], environment: ["DMS_SERVER": "localhost"])
    #expect(environment.status == 2, "\(environment)")
    #expect(environment.stderr.contains("DMS_SERVER (the environment; --server overrides it) must be host:port"))
    let flag = try await Tools.run("dmsctl", ["info", "--server", "localhost"], environment: ["DMS_SERVER": "h:1"])
    #expect(flag.status == 2 && flag.stderr.contains("Error: --server must be host:port"), "\(flag)")
  }

  @Test("--json: one compact object per line, defaults included, numbers as numbers, errors as JSON on stderr")
  func jsonFormat() async throws {
    try await withDaemon { daemon in
      try await addCompany(daemon, "Bad3")
      for arguments in [
        ["info"], ["methods"], ["companies", "list"], ["companies", "show", "BAD3"], ["shared", "show"],
        ["ping", "--count", "1"], ["call", "/dms.rpc.v1.Health/Check"],
      ] {
        let run = try await Tools.run(
          "dmsctl", arguments + ["--json"], environment: daemon.environment)
        #expect(run.status == 0, "\(arguments): \(run)")
        #expect(try jsonLines(run).count == 1, "\(arguments): \(run)")
      }
      let show = try jsonLines(try await Tools.ctl(daemon, "companies", "show", "bad3", "--json"))[0]
      #expect("\(member(show, "use_domain")!)" == "\(JSONDocument.Value.bool(false))", "defaults are information")
      #expect("\(member(show, "revision")!)" == "\(JSONDocument.Value.number("1"))", "int64 as a number")
      #expect("\(member(show, "connection", "password_set")!)" == "\(JSONDocument.Value.bool(false))")

      // The stored name in answers.
      let removed = try await Tools.ctl(daemon, "companies", "rm", "bad3", "--yes", "--json")
      #expect(removed.stdout == "{\"deleted\":\"Bad3\"}\n", "\(removed)")

      let failed = try await Tools.ctl(daemon, "companies", "show", "BAD3", "--json")
      #expect(failed.status == 1 && failed.stdout.isEmpty, "\(failed)")
      let error = try JSONDocument(parsing: failed.stderr.trimmingCharacters(in: .newlines)).root
      #expect("\(member(error, "code_name")!)" == "\(JSONDocument.Value.string("NOT_FOUND"))", "\(failed)")
    }
  }

  @Test("one name per secret: --clear, reveal and the flags; errors name the flag, --json the field path")
  func namesThatMatch() async throws {
    try await withDaemon { daemon in
      try await addCompany(daemon, "ACME")
      let set = try await Tools.ctl(daemon, "companies", "set", "ACME", "--insecure-db-password", "Db-Passw0rd")
      #expect(set.status == 0, "\(set)")
      let revealed = try await Tools.ctl(daemon, "companies", "reveal", "ACME", "db-password", "--reason", "test")
      #expect(revealed.stdout == "Db-Passw0rd\n", "\(revealed)")
      #expect(try await Tools.ctl(daemon, "companies", "set", "ACME", "--clear", "db-password").status == 0)
      let unset = try await Tools.ctl(daemon, "companies", "reveal", "ACME", "db-password", "--reason", "test")
      #expect(unset.status == 1 && unset.stderr.contains("NOT_FOUND"), "revealing an unset secret: \(unset)")

      let bad = try await Tools.ctl(daemon, "companies", "set", "ACME", "--db-user", "", "--nip", "1")
      #expect(bad.status == 1, "\(bad)")
      #expect(bad.stderr.contains("  --db-user [ERP-4]: is required"), "\(bad)")
      #expect(bad.stderr.contains("  --nip [ERP-13]: "), "\(bad)")
      #expect(!bad.stderr.contains("company.connection.user"), "\(bad)")
      let badJSON = try await Tools.ctl(daemon, "companies", "set", "ACME", "--db-user", "", "--json")
      #expect(badJSON.stderr.contains("\"field\":\"company.connection.user\""), "\(badJSON)")
    }
  }

  @Test("mail: per company with --company, errors naming the flags, presets, the password write-only")
  func mail() async throws {
    try await withDaemon { daemon in
      try await addCompany(daemon, "ACME")
      let unnamed = try await Tools.ctl(daemon, "mail", "show")
      #expect(unnamed.status == 1 && unnamed.stderr.contains("`company` metadata"), "\(unnamed)")
      let set = try await Tools.ctl(
        daemon, "mail", "set", "--company", "acme", "--enabled", "true", "--account-name", "DMS", "--sender",
        "dms@acme.example", "--smtp-server", "smtp.acme.example", "--port", "587", "--encryption", "starttls",
        "--login", "dms@acme.example", "--password-file", "-", input: "Mail-Passw0rd\n")
      #expect(set.status == 0 && set.stdout.contains("password (MAIL-17)        (set)"), "\(set)")
      let bad = try await Tools.ctl(daemon, "mail", "set", "--company", "ACME", "--port", "70000", "--sender", "x")
      #expect(bad.status == 1, "\(bad)")
      #expect(bad.stderr.contains("  --port [MAIL-15]: ") && bad.stderr.contains("  --sender [MAIL-9]: "), "\(bad)")
      let usage = try await Tools.ctl(daemon, "mail", "set", "--company", "ACME", "--encryption", "ssl3")
      #expect(usage.status == 2 && usage.stderr.contains("--encryption must be"), "\(usage)")
      let revealed = try await Tools.ctl(daemon, "mail", "reveal-password", "--company", "ACME", "--reason", "test")
      #expect(revealed.stdout == "Mail-Passw0rd\n", "\(revealed)")
      let presets = try await Tools.ctl(daemon, "mail", "presets", "--json")
      #expect(try jsonLines(presets).count == 1 && presets.stdout.contains("\"id\":\"microsoft365\""), "\(presets)")
      let draft = try await Tools.ctl(daemon, "mail", "preset", "--company", "ACME", "wp", "jan@wp.pl")
      #expect(draft.status == 0 && draft.stdout.contains("smtp.wp.pl") && draft.stdout.contains("jan\n"), "\(draft)")
      let shown = try await Tools.ctl(daemon, "mail", "show", "--company", "ACME")
      #expect(shown.stdout.contains("smtp.acme.example") && !shown.stdout.contains("Mail-Passw0rd"), "\(shown)")
    }
  }

  @Test("a save that changes nothing says so and keeps the revision")
  func unchangedSave() async throws {
    try await withDaemon { daemon in
      try await addCompany(daemon, "SAME")
      let run = try await Tools.ctl(daemon, "companies", "set", "SAME")
      #expect(run.status == 0 && run.stderr == "nothing changed: still at revision 1\n", "\(run)")
      #expect(run.stdout.contains("revision                     1"), "\(run)")
      _ = try await Tools.ctl(daemon, "shared", "set")
      let shared = try await Tools.ctl(daemon, "shared", "set")
      #expect(shared.stderr == "nothing changed: still at revision 1\n", "\(shared)")
    }
  }

  @Test("connection options work before, between and after the subcommands")
  func optionsAnywhere() async throws {
    try await withDaemon { daemon in
      let server = "127.0.0.1:\(daemon.port)"
      for arguments in [
        ["--server", server, "companies", "list"], ["companies", "--server", server, "list"],
        ["companies", "list", "--server", server], ["companies", "--json", "list", "--server=\(server)"],
      ] {
        let run = try await Tools.run("dmsctl", arguments, environment: ["XDG_CONFIG_HOME": daemon.configHome])
        #expect(run.status == 0, "\(arguments): \(run)")
      }
    }
  }

  @Test("dmsctl --version is the server's version")
  func version() async throws {
    try await withDaemon { daemon in
      let version = try await Tools.run("dmsctl", ["--version"]).stdout.trimmingCharacters(in: .newlines)
      let serverVersion = try await Tools.run("dms-settingsd", ["--version"]).stdout.trimmingCharacters(in: .newlines)
      let info = try jsonLines(try await Tools.ctl(daemon, "info", "--json"))[0]
      #expect(!version.isEmpty && version == serverVersion)
      #expect("\(member(info, "server_info", "server_version")!)" == "\(JSONDocument.Value.string(version))")
    }
  }

  @Test("call: --help prints --data's default once; --data errors give the position and the field plainly")
  func call() async throws {
    let help = try await Tools.run("dmsctl", ["call", "--help"])
    let dataHelp = try #require(help.stdout.firstRange(of: "-d, --data <data>")).lowerBound
    let rest = help.stdout[dataHelp...]
    let metadataHelp = try #require(rest.firstRange(of: "-m, --metadata <metadata>")).lowerBound
    #expect(rest[..<metadataHelp].components(separatedBy: "default").count == 2, "\(help)")
    try await withDaemon { daemon in
      let unknown = try await Tools.ctl(
        daemon, "call", "/dms.rpc.v1.Health/Check", "--data", "{\n  \"servic\": \"\"\n}")
      #expect(unknown.status == 2, "\(unknown)")
      #expect(
        unknown.stderr.contains(
          "--data: dms.rpc.v1.HealthCheckRequest has no field \"servic\" (line 2, column 3); its fields are service"),
        "\(unknown)")
      let broken = try await Tools.ctl(daemon, "call", "/dms.rpc.v1.Health/Check", "--data", "{\"service\": }")
      #expect(broken.stderr.contains("--data is not valid JSON: line 1, column 13: expected a value"), "\(broken)")
    }
  }

  @Test("companies rm asks on a terminal and needs --yes in a script")
  func removeNeedsConfirmation() async throws {
    try await withDaemon { daemon in
      try await addCompany(daemon, "KEEP")
      let refused = try await Tools.ctl(daemon, "companies", "rm", "KEEP")
      #expect(refused.status == 2 && refused.stderr.contains("give --yes to confirm"), "\(refused)")
      #expect(try await Tools.ctl(daemon, "companies", "show", "KEEP").status == 0, "nothing was deleted")
      #expect(try await Tools.ctl(daemon, "companies", "rm", "keep", "--yes").stdout == "deleted KEEP\n")
    }
  }

  @Test("reveal needs --reason")
  func revealNeedsReason() async throws {
    let run = try await Tools.run("dmsctl", ["--server", "127.0.0.1:1", "companies", "reveal", "ACME", "ksef-token"])
    #expect(run.status == 2 && run.stderr.contains("--reason"), "\(run)")
  }

  @Test("streams reach a pipe event by event: watch and call …/Health/Watch, before they end")
  func streamsFlushEachEvent() async throws {
    try await withDaemon { daemon in
      for arguments in [["watch"], ["watch", "--json"], ["call", "/dms.rpc.v1.Health/Watch"]] {
        let ctl = Tools.startCtl(arguments, server: daemon)
        // The first line arrives while the command runs.
        let first = try await ctl.lines.waitForLines(1)
        #expect(!first.isEmpty, "\(arguments)")
        if arguments[0] == "watch" {
          try await addCompany(daemon, "P\(arguments.count)")
          let lines = try await ctl.lines.waitForLines(2)
          #expect(lines.count >= 2 && lines[1].contains("P\(arguments.count)"), "\(arguments): \(lines)")
        }
        _ = try await ctl.interrupt()  // Ctrl-C
        #expect(ctl.lines.all.count >= (arguments[0] == "watch" ? 2 : 1), "what was printed stays printed")
      }
    }
  }

  @Test("output into a pipe that closes early (| head) ends dmsctl quietly, exit 0")
  func pipeClosedEarly() async throws {
    try await withDaemon { daemon in
      let run = try await Tools.run(
        "/bin/bash",
        [
          "-c", "set -o pipefail; dmsctl methods | head -1; dmsctl methods | true; dmsctl companies list --json | true",
        ],
        environment: daemon.environment.merging(["PATH": Tools.pathWithTools]) { $1 })
      #expect(run.status == 0, "\(run)")
      #expect(run.stdout.hasPrefix("METHOD"), "\(run)")
      #expect(run.stderr.isEmpty, "\(run)")
    }
  }

  @Test("watch says why the stream ended and exits 1 when the server stops")
  func watchEndsLoudly() async throws {
    let daemon = try await Daemon.start()
    let watching = Task { try await Tools.ctl(daemon, "watch") }
    try await Task.sleep(for: .milliseconds(500))
    try await daemon.stop()
    let run = try await watching.value
    #expect(run.status == 1, "\(run)")
    #expect(run.stderr.contains("UNAVAILABLE") && run.stderr.contains("the stream ended"), "\(run)")
  }

  @Test("watch --follow reconnects after a restart and resumes: nothing missed, nothing twice")
  func watchFollow() async throws {
    let data = Tools.temporaryDirectory()
    var daemon = try await Daemon.start(dataDirectory: data)
    let port = daemon.port
    let ctl = Tools.startCtl(["watch", "--follow", "--json"], server: daemon)
    _ = try await ctl.lines.waitForLines(1)
    try await addCompany(daemon, "ONE")
    _ = try await ctl.lines.waitForLines(2)
    try await daemon.stop()
    daemon = try await Daemon.start(["--settings-multi-company", "true"], port: port, dataDirectory: data)
    // Made before the watcher is back: it must be replayed.
    try await addCompany(daemon, "TWO")
    let lines = try await ctl.lines.waitForLines(4, timeout: .seconds(30))
    _ = try await ctl.interrupt()
    try await daemon.stop()
    let created = lines.filter { $0.contains("\"kind\":\"CREATED\"") }
    #expect(created.count == 2, "\(lines)")
    #expect(created.first?.contains("ONE") == true && created.last?.contains("TWO") == true, "\(lines)")
  }
}
