import DMSTestSupport
import Foundation
import Synchronization
import Testing

/// The built executables, run as an operator or a script runs them: real processes,
/// real exit codes, standard output and standard error apart.
enum Tools {
  /// The build folder holding `dmsctl` and `dms-settingsd` (the test bundle's own
  /// folder; `DMS_TOOLS_BIN` overrides it).
  static let binDirectory: URL = {
    if let path = ProcessInfo.processInfo.environment["DMS_TOOLS_BIN"] { return URL(fileURLWithPath: path) }
    let beside = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    if FileManager.default.isExecutableFile(atPath: beside.appendingPathComponent("dmsctl").path) { return beside }
    return packageRoot.appendingPathComponent(".build/debug")
  }()

  /// The package's folder (README.md, docs/).
  static let packageRoot = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

  /// The environment of the tools: this process's, without anything that configures
  /// the server or points dmsctl somewhere.
  static var cleanEnvironment: [String: String] {
    ProcessInfo.processInfo.environment.filter { name, _ in
      !["SERVER_", "SETTINGS_", "STORAGE_", "LOG_", "DMS_"].contains { name.hasPrefix($0) }
    }
  }

  /// PATH with the build folder first, so that a shell finds `dmsctl` as a user's would.
  static var pathWithTools: String {
    binDirectory.path + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")
  }

  /// What a finished run printed, and how it ended.
  struct Run: CustomStringConvertible {
    var status: Int32
    var stdout: String
    var stderr: String

    /// Standard output's lines, without the empty last one.
    var lines: [String] { stdout.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init) }

    var description: String { "exit \(status)\n--- stdout\n\(stdout)--- stderr\n\(stderr)" }
  }

  static func temporaryDirectory() -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("dms-tools-\(UUID().uuidString)").path
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
  }

  /// Runs `tool` (a build product, or an absolute path) to its end (killed after
  /// `timeout`), stdin from `input` (else empty).
  static func run(
    _ tool: String, _ arguments: [String], environment: [String: String] = [:], input: String? = nil,
    workingDirectory: String? = nil, timeout: Duration = .seconds(60)
  ) async throws -> Run {
    let folder = temporaryDirectory()
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let outPath = folder + "/stdout", errPath = folder + "/stderr", inPath = folder + "/stdin"
    FileManager.default.createFile(atPath: outPath, contents: nil)
    FileManager.default.createFile(atPath: errPath, contents: nil)
    FileManager.default.createFile(atPath: inPath, contents: Data((input ?? "").utf8))
    let process = ChildProcess()
    process.executableURL =
      tool.hasPrefix("/") ? URL(fileURLWithPath: tool) : binDirectory.appendingPathComponent(tool)
    process.arguments = arguments
    if let workingDirectory { process.currentDirectoryURL = URL(fileURLWithPath: workingDirectory) }
    process.environment = cleanEnvironment.merging(environment) { $1 }
    process.standardOutput = FileHandle(forWritingAtPath: outPath)
    process.standardError = FileHandle(forWritingAtPath: errPath)
    process.standardInput = FileHandle(forReadingAtPath: inPath)
    let status = try await finish(process, timeout: timeout)
    return Run(
      status: status,
      stdout: (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "",
      stderr: (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "")
  }

  /// `dmsctl` against `server`, signed in as its administrator.
  static func ctl(_ server: Daemon, _ arguments: String..., input: String? = nil) async throws -> Run {
    try await run("dmsctl", arguments, environment: server.environment, input: input)
  }

  /// A dmsctl that keeps running (a stream), its standard output read line by line as
  /// it is written.
  struct Streaming {
    let lines: LineReader
    let exit: Task<Int32, any Error>
    let process: ChildProcess

    /// Ctrl-C, then the exit status.
    func interrupt() async throws -> Int32 {
      process.interrupt()
      return try await exit.value
    }
  }

  /// Starts `dmsctl arguments` against `server`, signed in as its administrator;
  /// standard error is dropped.
  static func startCtl(_ arguments: [String], server: Daemon) -> Streaming {
    let pipe = Pipe()
    let process = ChildProcess()
    process.executableURL = binDirectory.appendingPathComponent("dmsctl")
    process.arguments = arguments
    process.environment = cleanEnvironment.merging(server.environment) { $1 }
    process.standardOutput = pipe
    process.standardError = FileHandle.nullDevice
    let lines = LineReader(pipe)
    return Streaming(lines: lines, exit: Task { try await finish(process, timeout: .seconds(90)) }, process: process)
  }

  /// Starts `process` and waits for its exit status; terminates it after `timeout`.
  static func finish(_ process: ChildProcess, timeout: Duration) async throws -> Int32 {
    let watchdog = Task {
      try await Task.sleep(for: timeout)
      process.terminate()
    }
    defer { watchdog.cancel() }
    return try await withCheckedThrowingContinuation { continuation in
      process.terminationHandler = { continuation.resume(returning: $0.terminationStatus) }
      do {
        try process.run()
      } catch {
        process.terminationHandler = nil
        continuation.resume(throwing: error)
      }
    }
  }
}

/// A `dms-settingsd` process on a free port with its own data folder, whose
/// administrator `tester` is signed in for the `dmsctl` runs of `Tools.ctl`.
final class Daemon: Sendable {
  let port: Int
  let dataDirectory: String
  let logPath: String

  /// The administrator made with `bootstrap-admin` before the first start.
  static let login = "tester"
  static let password = "a long test passphrase"
  /// Cheap password hashes: the tests sign in often (the server warns about it).
  static let hashCost = ["--security-password-hash-log-n", "10"]

  /// Where dmsctl keeps the session (`XDG_CONFIG_HOME`): beside the data, so a
  /// restarted server on the same data is still signed in.
  var configHome: String { dataDirectory + "/config" }

  /// The environment of a dmsctl signed in to this server.
  var environment: [String: String] {
    ["DMS_SERVER": "127.0.0.1:\(port)", "XDG_CONFIG_HOME": configHome]
  }
  private let process: ChildProcess
  private let exit: Task<Int32, any Error>

  private init(process: ChildProcess, port: Int, dataDirectory: String, logPath: String, exit: Task<Int32, any Error>) {
    self.process = process
    self.port = port
    self.dataDirectory = dataDirectory
    self.logPath = logPath
    self.exit = exit
  }

  /// Starts the server (multi-company mode unless `arguments` say otherwise) and waits
  /// until it listens; with `signIn`, first makes the administrator `tester` (on new
  /// data) and signs dmsctl in as it once the server listens.
  static func start(
    _ arguments: [String] = ["--settings-multi-company", "true"], port: Int = 0, dataDirectory: String? = nil,
    signIn: Bool = true
  ) async throws -> Daemon {
    let data = dataDirectory ?? Tools.temporaryDirectory()
    try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
    if signIn, !FileManager.default.fileExists(atPath: data + "/settings.sqlite") {
      let made = try await Tools.run(
        "dms-settingsd", ["bootstrap-admin", "--login", login, "--data-directory", data] + hashCost,
        input: password + "\n")
      guard made.status == 0 else { throw DaemonFailure(description: "bootstrap-admin failed: \(made)") }
    }
    let daemon = try await launch(arguments + hashCost, port: port, data: data)
    if signIn {
      let signedIn = try await Tools.run(
        "dmsctl", ["login", login, "--password-file", "-"], environment: daemon.environment, input: password + "\n")
      guard signedIn.status == 0 else {
        try? await daemon.stop()
        throw DaemonFailure(description: "dmsctl login failed: \(signedIn)")
      }
    }
    return daemon
  }

  private static func launch(_ arguments: [String], port: Int, data: String) async throws -> Daemon {
    let logPath = data + "/daemon-\(UUID().uuidString).log"
    FileManager.default.createFile(atPath: logPath, contents: nil)
    let process = ChildProcess()
    process.executableURL = Tools.binDirectory.appendingPathComponent("dms-settingsd")
    process.arguments = ["--port", String(port), "--data-directory", data] + arguments
    process.environment = Tools.cleanEnvironment
    let log = FileHandle(forWritingAtPath: logPath)
    process.standardOutput = log
    process.standardError = log
    process.standardInput = FileHandle.nullDevice
    let exit = Task { try await Tools.finish(process, timeout: .seconds(600)) }
    let deadline = ContinuousClock.now + .seconds(20)
    while ContinuousClock.now < deadline {
      let text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
      if let match = text.firstMatch(of: /127\.0\.0\.1:(\d+) tls=/), let port = Int(match.1) {
        return Daemon(process: process, port: port, dataDirectory: data, logPath: logPath, exit: exit)
      }
      try await Task.sleep(for: .milliseconds(50))
    }
    process.terminate()
    let text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
    throw DaemonFailure(description: "dms-settingsd did not start listening:\n\(text)")
  }

  struct DaemonFailure: Error, CustomStringConvertible { let description: String }

  /// What the server logged.
  var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

  /// SIGTERM, then its exit status.
  @discardableResult
  func stop() async throws -> Int32 {
    process.terminate()
    return try await exit.value
  }

  /// SIGKILL (a crash: nothing is flushed or drained), then its exit status.
  @discardableResult
  func kill() async throws -> Int32 {
    process.send(SIGKILL)
    return try await exit.value
  }
}

/// Reads a running process's standard output line by line, as it is written.
final class LineReader: Sendable {
  private let lines = Mutex<[String]>([])
  private let ended = Mutex(false)

  /// Starts reading `pipe` on a thread of its own (reads block).
  init(_ pipe: Pipe) {
    let handle = pipe.fileHandleForReading
    let thread = Thread { [self] in
      var pending = Data()
      while true {
        let data = handle.availableData
        if data.isEmpty { break }
        pending.append(data)
        while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
          let line = String(decoding: pending[pending.startIndex..<newline], as: UTF8.self)
          pending = Data(pending[pending.index(after: newline)...])
          lines.withLock { $0.append(line) }
        }
      }
      ended.withLock { $0 = true }
    }
    thread.start()
  }

  /// Every line read so far.
  var all: [String] { lines.withLock { $0 } }

  /// Waits until `count` lines were read; fails the test after `timeout`.
  func waitForLines(_ count: Int, timeout: Duration = .seconds(15)) async throws -> [String] {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
      let now = all
      if now.count >= count { return now }
      try await Task.sleep(for: .milliseconds(20))
    }
    Issue.record("expected \(count) lines within \(timeout), read \(all)")
    return all
  }
}
