import ArgumentParser
import DMSRPC
import Foundation

/// `dmsctl`: the command-line probe of a DMS settings server.
@main
struct DMSCtl: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "dmsctl",
    abstract: "Talk to a DMS settings server over DMS RPC.",
    discussion: """
      The server comes from --server host:port or DMS_SERVER (default 127.0.0.1:7411).
      Connection options (--server, --tls, --ca, --server-name, --timeout, --json) may
      stand anywhere: dmsctl --server h:7411 companies list = dmsctl companies list --server h:7411.
      Exit codes: 0 done, 1 the server answered with an error (its code is printed),
      2 a usage error, 3 the server could not be reached. See docs/CLI.md.
      """,
    version: Release.version,
    subcommands: [
      Login.self, Logout.self, WhoAmI.self, Passwd.self, Info.self, Ping.self, Methods.self, Call.self,
      Companies.self, Shared.self, APIAuth.self, Mail.self, Ksef.self, EDelivery.self, Operators.self, ApiSystems.self,
      TwoStep.self,
      Audit.self,
      Watch.self,
    ]
  )

  /// Parses and runs a command with the exit codes of docs/CLI.md: 0 done, 1 an RPC
  /// error, 2 usage, 3 cannot connect.
  static func main() async {
    let given = Array(CommandLine.arguments.dropFirst())
    let arguments = Self.movingConnectionOptions(given)
    let json = arguments.prefix { $0 != "--" }.contains("--json")
    var command: any ParsableCommand
    do {
      command = try parseAsRoot(arguments)
    } catch {
      // A mistyped subcommand leaves the connection options where no command takes
      // them, and the parser named the first of those ("Unknown option '--server'" for
      // `dmsctl --server h helth`): the words alone say what is wrong.
      let words = Self.movingConnectionOptions(given, keep: false)
      if words != arguments {
        do {
          _ = try parseAsRoot(words)
        } catch let wordsError {
          exitForParser(wordsError, json: json)
        }
      }
      exitForParser(error, json: json)
    }
    do {
      if var asyncCommand = command as? any AsyncParsableCommand {
        try await asyncCommand.run()
      } else {
        try command.run()
      }
    } catch let error as ValidationError {
      Self.exit(
        withError: Output.usage(error.message, usage: usageString(for: type(of: command)), json: json))
    } catch let error as ExitCode {
      Self.exit(withError: error)
    } catch let error as RPCError {
      Self.exit(withError: Output.failure(error, json: json))
    } catch {
      // The parser's own errors raised while running (`dmsctl help call`).
      exitForParser(error, json: json)
    }
  }

  /// Ends with an error of the argument parser: help and --version print and exit 0;
  /// anything else is a usage error (exit 2) with the command's own usage.
  private static func exitForParser(_ error: any Error, json: Bool) -> Never {
    if exitCode(for: error) == .success {
      Output.line(fullMessage(for: error))
      Self.exit(withError: ExitCode.success)
    }
    if json {
      Self.exit(withError: Output.usage(message(for: error), usage: "", json: true))
    }
    Output.write(fullMessage(for: error) + "\n", to: STDERR_FILENO)
    Self.exit(withError: Output.Exit.usage)
  }

  /// Connection options written anywhere before the command's last word (or before
  /// `--`), moved to the end, where the (sub)command's parser reads them: `dmsctl
  /// companies --server X list` works as `dmsctl companies list --server X`. With
  /// `keep` false, they are left out.
  static func movingConnectionOptions(_ arguments: [String], keep: Bool = true) -> [String] {
    let withValue: Set = ["--server", "--ca", "--server-name", "--cert", "--key", "--timeout"]
    let flags: Set = ["--json", "--tls"]
    var moved: [String] = []
    var rest: [String] = []
    var index = 0
    while index < arguments.count {
      let argument = arguments[index]
      if argument == "--" {
        rest += arguments[index...]
        break
      }
      let name = String(argument.split(separator: "=", maxSplits: 1).first ?? "")
      if flags.contains(argument) || (withValue.contains(name) && argument.contains("=")) {
        moved.append(argument)
        index += 1
      } else if withValue.contains(argument), index + 1 < arguments.count {
        moved += [argument, arguments[index + 1]]
        index += 2
      } else {
        rest.append(argument)
        index += 1
      }
    }
    if !keep { moved = [] }
    guard let separator = rest.firstIndex(of: "--") else { return rest + moved }
    return Array(rest[..<separator]) + moved + rest[separator...]
  }
}
