import Foundation
import Testing

/// The README's first session, run for real and compared (a doc test): the README
/// cannot drift from what dmsctl prints.
///
/// A tested block is a ```console block right after an HTML comment
/// `<!-- doc-test: SESSION -->`, where SESSION is `single` (a server in single-company
/// mode, as `scripts/serve` starts it), `multi` (multi-company mode) or `offline` (no
/// server on the port). Blocks of one session run in order against one fresh server.
/// In a block:
/// - `$ COMMAND` (continued with `\` at a line's end) runs in `sh`, with dmsctl on the
///   PATH and DMS_SERVER pointing at the test's server; `alias` lines are skipped and
///   `echo $?` prints the previous command's exit status;
/// - the lines up to the next `$ ` are what it prints, standard error included (as a
///   terminal shows it); `…` in a line stands for any text, a line of only `…` for any
///   number of lines; blank lines around outputs do not count;
/// - the server's address is written 127.0.0.1:7411 whatever port the test uses.
@Suite("README: the first session, run", .serialized)
struct ReadmeSessionTests {
  struct Step {
    var command: String
    var expected: [String]
    var line: Int
  }

  static func steps(session: String) throws -> [Step] {
    let readme = try String(contentsOf: Tools.packageRoot.appendingPathComponent("README.md"), encoding: .utf8)
    let lines = readme.components(separatedBy: "\n")
    var steps: [Step] = []
    var index = 0
    while index < lines.count {
      defer { index += 1 }
      guard lines[index].trimmingCharacters(in: .whitespaces) == "<!-- doc-test: \(session) -->",
        index + 1 < lines.count, lines[index + 1].hasPrefix("```console")
      else { continue }
      index += 2
      while index < lines.count, !lines[index].hasPrefix("```") {
        let line = lines[index]
        if line.hasPrefix("$ ") {
          var command = String(line.dropFirst(2))
          let start = index + 1
          while command.hasSuffix("\\"), index + 1 < lines.count {
            index += 1
            command = String(command.dropLast()) + " " + lines[index].trimmingCharacters(in: .whitespaces)
          }
          steps.append(Step(command: command, expected: [], line: start))
        } else if !steps.isEmpty {
          steps[steps.count - 1].expected.append(line)
        }
        index += 1
      }
    }
    return steps.map { step in
      var step = step
      while step.expected.last?.trimmingCharacters(in: .whitespaces).isEmpty == true { step.expected.removeLast() }
      return step
    }
  }

  /// Whether `actual` matches `expected`, with `…` wildcards.
  static func matches(_ actual: [String], _ expected: [String]) -> Bool {
    guard let first = expected.first else { return actual.isEmpty }
    if first == "…" {
      return (0...actual.count).contains { matches(Array(actual[$0...]), Array(expected.dropFirst())) }
    }
    guard let line = actual.first, lineMatches(line, first) else { return false }
    return matches(Array(actual.dropFirst()), Array(expected.dropFirst()))
  }

  static func lineMatches(_ actual: String, _ expected: String) -> Bool {
    let parts = expected.components(separatedBy: "…")
    guard parts.count > 1 else { return actual.trimmingTrailingSpaces == expected.trimmingTrailingSpaces }
    var rest = Substring(actual.trimmingTrailingSpaces)
    guard rest.hasPrefix(parts[0]) else { return false }
    rest = rest.dropFirst(parts[0].count)
    for (index, part) in parts.enumerated().dropFirst() {
      let part = index == parts.count - 1 ? part.trimmingTrailingSpaces : part
      if index == parts.count - 1 { return part.isEmpty || rest.hasSuffix(part) }
      guard let range = rest.range(of: part) else { return false }
      rest = rest[range.upperBound...]
    }
    return true
  }

  /// The shell's words up to an unquoted `#` comment, joined back (`dmsctl info   # x`).
  static func withoutComment(_ command: String) -> String {
    var quote: Character?
    var previous: Character = " "
    for (offset, character) in command.enumerated() {
      if let open = quote {
        if character == open { quote = nil }
      } else if character == "'" || character == "\"" {
        quote = character
      } else if character == "#", previous.isWhitespace {
        return String(command.prefix(offset)).trimmingCharacters(in: .whitespaces)
      }
      previous = character
    }
    return command
  }

  func run(session: String, daemonArguments: [String]?) async throws {
    let steps = try Self.steps(session: session)
    #expect(!steps.isEmpty, "README.md has no <!-- doc-test: \(session) --> block")
    // The steps run where `scripts/serve` keeps its data: ./data. The single-company
    // session starts as a first start does (`admin` and its one-time password); the
    // multi-company one is already signed in, as a reader who restarted the server in
    // that mode still is (sessions survive restarts).
    let folder = Tools.temporaryDirectory()
    var daemon: Daemon?
    if let daemonArguments {
      daemon = try await Daemon.start(daemonArguments, dataDirectory: folder + "/data", signIn: session != "single")
    }
    let port = daemon?.port ?? Self.refusingPort
    var status: Int32 = 0
    for step in steps {
      let command = Self.withoutComment(step.command)
      if command.hasPrefix("alias ") { continue }
      var output: String
      if command == "echo $?" {
        output = "\(status)\n"
      } else {
        let run = try await Tools.run(
          "/bin/sh",
          ["-c", "exec 2>&1; " + command.replacingOccurrences(of: "127.0.0.1:7411", with: "127.0.0.1:\(port)")],
          environment: [
            "DMS_SERVER": "127.0.0.1:\(port)",
            "PATH": Tools.pathWithTools,
            "HOME": folder, "PWD": folder, "XDG_CONFIG_HOME": folder + "/data/config",
          ], workingDirectory: folder)
        status = run.status
        output = run.stdout
      }
      output = output.replacingOccurrences(of: "127.0.0.1:\(port)", with: "127.0.0.1:7411")
      var actual = output.components(separatedBy: "\n")
      if actual.last == "" { actual.removeLast() }
      #expect(
        Self.matches(actual, step.expected),
        """
        README.md line \(step.line): $ \(step.command)
        --- the README shows
        \(step.expected.joined(separator: "\n"))
        --- dmsctl printed
        \(actual.joined(separator: "\n"))
        """)
    }
    try await daemon?.stop()
  }

  /// A port nothing listens on: port 1 refuses on loopback (a random high port might
  /// be taken by the time dmsctl connects).
  static let refusingPort = 1

  @Test("the single-company session (scripts/serve)")
  func singleCompany() async throws {
    try await run(session: "single", daemonArguments: [])
  }

  @Test("the multi-company session (scripts/serve --settings-multi-company true)")
  func multiCompany() async throws {
    try await run(session: "multi", daemonArguments: ["--settings-multi-company", "true"])
  }

  @Test("the session without a server")
  func offline() async throws {
    try await run(session: "offline", daemonArguments: nil)
  }

  @Test("the wildcard matching the doc test relies on")
  func wildcards() {
    #expect(Self.lineMatches("ping 1: 412 µs", "ping 1: …"))
    #expect(Self.lineMatches("a 1 b 2 c", "a … b … c"))
    #expect(!Self.lineMatches("a 1 b", "a … c"))
    #expect(Self.matches(["x", "1", "2", "y"], ["x", "…", "y"]))
    #expect(!Self.matches(["x", "1"], ["x"]))
    #expect(Self.withoutComment("dmsctl info   # a comment") == "dmsctl info")
    #expect(Self.withoutComment("dmsctl x --reason \"ticket #42\"") == "dmsctl x --reason \"ticket #42\"")
  }
}

extension String {
  fileprivate var trimmingTrailingSpaces: String {
    var text = self
    while text.last == " " { text.removeLast() }
    return text
  }
}
