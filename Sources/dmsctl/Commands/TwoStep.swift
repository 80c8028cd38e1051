import ArgumentParser
import DMSClient
import DMSMessages
import DMSRPC
import DMSStubs
import Foundation

/// `dmsctl 2fa`: two-step login (TOOLS-4).
struct TwoStep: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "2fa",
    abstract: "Two-step login (TOOLS-4): a one-time code from an authenticator app at every sign-in.",
    discussion: """
      enrol prints a secret and an otpauth:// URI for the app (shown once); confirm
      turns two-step login on with the app's first code. Administrators turn it off for
      another operator (disable --operator) and enforce it for everyone (enforce on).
      """,
    subcommands: [Status.self, Enrol.self, Confirm.self, Disable.self, Enforce.self]
  )

  static let flags = FlagNames(byField: ["code": "code", "login": "--operator", "policy.revision": "revision"])

  struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Whether you have two-step login, and whether it is enforced.")
    @OptionGroup var connection: ConnectionOptions

    func run() async throws {
      try await connection.withClient(flags: TwoStep.flags) { client in
        let me = try await Dms_Auth_V1_Auth.Client(client).whoAmI(options: connection.callOptions)
        let policy: Dms_Settings_V1_SecurityPolicySettings? =
          me.scope == .full
          ? try await Dms_Settings_V1_SecurityPolicy.Client(client).get(options: connection.callOptions) : nil
        if connection.json {
          var members: [(String, JSONOutput)] = [
            ("login", .string(me.login)), ("two_step_enabled", .bool(me.twoStepEnabled)),
          ]
          if let policy { members.append(("enforced", .bool(policy.enforceTwoStepLogin))) }
          return Output.json(.object(members))
        }
        Output.fields(
          [("login", me.login), ("two-step login", me.twoStepEnabled ? "on" : "off")]
            + (policy.map { [("enforced for everyone", $0.enforceTwoStepLogin ? "yes" : "no")] } ?? []))
      }
    }
  }

  struct Enrol: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Start two-step login: prints the secret and the otpauth:// URI for the app (once).")
    @OptionGroup var connection: ConnectionOptions

    func run() async throws {
      try await connection.withClient(flags: TwoStep.flags) { client in
        let response = try await Dms_Auth_V1_Auth.Client(client).enrolTwoStep(options: connection.callOptions)
        if connection.json { return Output.message(response) }
        Output.fields([("secret", response.secret), ("uri", response.uri)])
        var stderr = StandardError()
        print(
          "add it to an authenticator app (the URI as a QR code, or the secret by hand), then: dmsctl 2fa confirm CODE",
          to: &stderr)
      }
    }
  }

  struct Confirm: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Turn two-step login on with the app's current code.")
    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "The app's 6-digit code.") var code: String

    func run() async throws {
      try await connection.withClient(flags: TwoStep.flags) { client in
        var request = Dms_Auth_V1_ConfirmTwoStepRequest()
        request.code = code
        _ = try await Dms_Auth_V1_Auth.Client(client).confirmTwoStep(request, options: connection.callOptions)
        if connection.json { return Output.json(.object([("two_step_enabled", .bool(true))])) }
        Output.line("two-step login is on: every sign-in now needs a code (dmsctl login --code)")
      }
    }
  }

  struct Disable: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Turn your two-step login off with a current code, or another operator's (administrators).")
    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "The app's current 6-digit code (for your own).") var code: String?
    @Option(help: "The operator whose two-step login to turn off (administrators).") var `operator`: String?

    func validate() throws {
      guard (code == nil) != (`operator` == nil) else {
        throw ValidationError("give your current CODE, or --operator LOGIN (administrators), not both")
      }
    }

    func run() async throws {
      try await connection.withClient(flags: TwoStep.flags) { client in
        if let login = `operator` {
          var request = Dms_Settings_V1_DisableOperatorTwoStepRequest()
          request.login = login
          let saved = try await Dms_Settings_V1_Operators.Client(client).disableTwoStep(
            request, options: connection.callOptions)
          if connection.json { return Output.message(saved) }
          return Output.line("two-step login of \(saved.login) is off")
        }
        var request = Dms_Auth_V1_DisableTwoStepRequest()
        request.code = code ?? ""
        _ = try await Dms_Auth_V1_Auth.Client(client).disableTwoStep(request, options: connection.callOptions)
        if connection.json { return Output.json(.object([("two_step_enabled", .bool(false))])) }
        Output.line("two-step login is off")
      }
    }
  }

  struct Enforce: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Enforce two-step login for every operator, or stop (administrators).",
      discussion: """
        Sessions open now stay valid; from their next sign-in, operators without
        two-step login may only enrol (TOOLS-4).
        """)
    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "on or off.") var state: String

    func validate() throws {
      guard ["on", "off"].contains(state) else { throw ValidationError("STATE must be on or off, not \(state)") }
    }

    func run() async throws {
      try await connection.withClient(flags: TwoStep.flags) { client in
        let policy = Dms_Settings_V1_SecurityPolicy.Client(client)
        var request = Dms_Settings_V1_UpdateSecurityPolicyRequest()
        request.policy = try await policy.get(options: connection.callOptions)
        request.policy.enforceTwoStepLogin = state == "on"
        let saved = try await policy.update(request, options: connection.callOptions)
        if connection.json { return Output.message(saved) }
        Output.line("two-step login is \(saved.enforceTwoStepLogin ? "enforced for every operator" : "not enforced")")
      }
    }
  }
}
