import Foundation
import Synchronization

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// A child process, started with `posix_spawn`: the part of Foundation's `Process` the
/// tests use, under the same names.
///
/// Not Foundation's `Process` because, on Linux with Swift 6.3, its `run()` lists
/// `/proc/self/fd` by copying each `dirent`'s whole 256-byte name, which reads past the
/// end of glibc's buffer when an entry ends a page: it crashed the whole test process
/// with SIGSEGV in `Process.run()` (swift-corelibs-foundation pull request 5472, in no
/// release yet). The test process, with its hundreds of sockets, made that likely.
/// swift-subprocess has no such fault but only an async API, and the helpers that make
/// certificates and start stand-ins are synchronous.
///
/// The child gets standard input, output and error as set (a `FileHandle`, a `Pipe`, or
/// nil to share this process's), no other descriptor (glibc's `closefrom` action), every
/// signal at its default and none blocked, and a process group of its own, as
/// Foundation gives it.
public final class ChildProcess: @unchecked Sendable {  // configured before run(), then only read; state under a lock
  public var executableURL: URL?
  public var arguments: [String] = []
  /// nil: this process's environment.
  public var environment: [String: String]?
  public var currentDirectoryURL: URL?
  /// A `FileHandle`, a `Pipe` (the child gets the matching end), or nil for this
  /// process's own.
  public var standardInput: Any?
  public var standardOutput: Any?
  public var standardError: Any?
  /// Called once, on the thread that waited for the child, after it ended.
  public var terminationHandler: (@Sendable (ChildProcess) -> Void)?

  private struct State {
    var pid: pid_t = 0
    var running = false
    var status: Int32 = 0
  }
  private let state = Mutex(State())
  private let ended = NSCondition()

  public init() {}

  public struct SpawnError: Error, CustomStringConvertible {
    public let description: String
  }

  /// The child's pid (0 before `run()`).
  public var processIdentifier: Int32 { state.withLock { $0.pid } }
  public var isRunning: Bool { state.withLock { $0.running } }
  /// The exit code, or the number of the signal that ended it.
  public var terminationStatus: Int32 { state.withLock { $0.status } }

  /// Starts the child; returns once it is spawned.
  public func run() throws {
    guard let executable = executableURL?.path else { throw SpawnError(description: "no executable") }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }

    var closeInParent: [FileHandle] = []
    for (slot, value, childReads) in [
      (Int32(0), standardInput, true), (Int32(1), standardOutput, false), (Int32(2), standardError, false),
    ] {
      let handle: FileHandle?
      if let pipe = value as? Pipe {
        handle = childReads ? pipe.fileHandleForReading : pipe.fileHandleForWriting
        closeInParent.append(handle!)
      } else {
        handle = value as? FileHandle
      }
      if handle === FileHandle.nullDevice {
        // Foundation's null device has no descriptor of its own.
        try check(posix_spawn_file_actions_addopen(&actions, slot, "/dev/null", O_RDWR, 0), "addopen /dev/null")
      } else if let handle {
        try check(posix_spawn_file_actions_adddup2(&actions, handle.fileDescriptor, slot), "adddup2 \(slot)")
      }
    }
    try check(Self.closeFrom(&actions, 3), "addclosefrom_np")
    if let directory = currentDirectoryURL?.path {
      try check(Self.changeDirectory(&actions, directory), "addchdir_np \(directory)")
    }

    var none = sigset_t()
    sigemptyset(&none)
    var all = sigset_t()
    sigfillset(&all)
    try check(posix_spawnattr_setsigmask(&attributes, &none), "setsigmask")
    try check(posix_spawnattr_setsigdefault(&attributes, &all), "setsigdefault")
    try check(posix_spawnattr_setpgroup(&attributes, 0), "setpgroup")
    try check(
      posix_spawnattr_setflags(
        &attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP)),
      "setflags")

    let argv = ([executable] + arguments).map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    let environment = (self.environment ?? ProcessInfo.processInfo.environment).map { strdup("\($0)=\($1)") } + [nil]
    defer { environment.forEach { free($0) } }

    var pid: pid_t = 0
    try check(posix_spawn(&pid, executable, &actions, &attributes, argv, environment), "posix_spawn \(executable)")
    // The child has its ends of the pipes; this process keeps only its own, so that a
    // read sees the end when the child is gone.
    for handle in closeInParent { try? handle.close() }
    state.withLock {
      $0.pid = pid
      $0.running = true
    }
    let child = pid
    let waiter = Thread { [self] in waitForExit(child) }
    waiter.name = "wait \(child)"
    waiter.start()
  }

  private func waitForExit(_ pid: pid_t) {
    var status: Int32 = 0
    while waitpid(pid, &status, 0) == -1, errno == EINTR {}
    // WIFSIGNALED / WTERMSIG / WEXITSTATUS, which Swift does not import (macros).
    let signal = status & 0x7f
    let signaled = signal != 0 && signal != 0x7f
    ended.lock()
    state.withLock {
      $0.running = false
      $0.status = signaled ? signal : (status >> 8) & 0xff
    }
    ended.broadcast()
    ended.unlock()
    terminationHandler?(self)
  }

  /// Blocks until the child has ended.
  public func waitUntilExit() {
    ended.lock()
    while isRunning { ended.wait() }
    ended.unlock()
  }

  /// Waits up to `seconds` for the child to end by itself (a stand-in whose stdin was
  /// closed), then kills it.
  public func end(waitingUpTo seconds: Double) {
    let deadline = Date(timeIntervalSinceNow: seconds)
    ended.lock()
    while isRunning, ended.wait(until: deadline) {}
    ended.unlock()
    send(SIGKILL)
  }

  /// SIGTERM.
  public func terminate() { send(SIGTERM) }

  /// SIGINT (Ctrl-C).
  public func interrupt() { send(SIGINT) }

  /// Sends `signal` while the child runs (not after it was reaped: its pid may be
  /// another's by then).
  public func send(_ signal: Int32) {
    state.withLock { if $0.running { _ = kill($0.pid, signal) } }
  }

  private func check(_ result: Int32, _ what: String) throws {
    guard result == 0 else { throw SpawnError(description: "\(what): \(String(cString: strerror(result)))") }
  }

  // glibc's posix_spawn_file_actions_addclosefrom_np (2.34) and _addchdir_np (2.29),
  // which Swift's Glibc module does not declare: looked up by name.
  private typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
  private typealias ChangeDirectory =
    @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>) -> Int32

  private static let closeFromFunction: CloseFrom? = lookUp("posix_spawn_file_actions_addclosefrom_np")
  private static let changeDirectoryFunction: ChangeDirectory? = lookUp("posix_spawn_file_actions_addchdir_np")

  private static func lookUp<F>(_ name: String) -> F? {
    guard let symbol = dlsym(dlopen(nil, RTLD_NOW), name) else { return nil }
    return unsafeBitCast(symbol, to: F.self)
  }

  private static func closeFrom(_ actions: UnsafeMutablePointer<posix_spawn_file_actions_t>, _ first: Int32) -> Int32 {
    guard let function = closeFromFunction else { return ENOSYS }
    return function(actions, first)
  }

  private static func changeDirectory(_ actions: UnsafeMutablePointer<posix_spawn_file_actions_t>, _ path: String)
    -> Int32
  {
    guard let function = changeDirectoryFunction else { return ENOSYS }
    return path.withCString { function(actions, $0) }
  }
}
