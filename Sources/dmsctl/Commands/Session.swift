import ArgumentParser
import DMSClient
import DMSMessages
import DMSRPC
import DMSStubs
import Foundation

/// `dmsctl login`: signs in and saves the session for the server.
struct Login: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Sign in; the session is saved for this server (mode 0600) and used by every later command.",
    discussion: """
      The password is asked on the terminal without echo, or read with --password-file
      (- for stdin: printf '%s\\n' "$PASSWORD" | dmsctl login admin --password-file -).
      The session is saved in $XDG_CONFIG_HOME/dmsctl/ (default ~/.config/dmsctl/), one
      file per server; DMS_TOKEN, when set, is used instead. A session made with a
      generated or reset password may only change it: dmsctl passwd.
      An API system signs in with --system: the argument is its identifier and the
      password its secret (dmsctl api-systems).
      """)
  @OptionGroup var connection: ConnectionOptions
  @Argument(help: "The operator's login (with --system: the system's identifier).") var login: String
  @Option(help: "Read the password (or secret) from a file (- for stdin).") var passwordFile: String?
  @Flag(help: "Sign in as an API system (Auth/LoginSystem).") var system = false
  @Option(
    help: """
      The one-time code of two-step login (dmsctl 2fa). Without it, an operator with \
      two-step login is asked for one on the terminal.
      """)
  var code: String?

  func run() async throws {
    var stdinTaken = false
    guard
      let password = try SecretSource(
        name: system ? "secret" : "password", label: system ? "Secret of \(login)" : "Password for \(login)",
        prompt: passwordFile == nil, file: passwordFile
      ).value(stdinTaken: &stdinTaken)
    else { return }
    let file = try connection.sessionFile()
    try await connection.withClient(signedIn: false) { client in
      let auth = Dms_Auth_V1_Auth.Client(client)
      let response: Dms_Auth_V1_LoginResponse
      if system {
        var request = Dms_Auth_V1_LoginSystemRequest()
        request.identifier = login
        request.secret = password
        response = try await auth.loginSystem(request, options: connection.callOptions)
      } else {
        var request = Dms_Auth_V1_LoginRequest()
        request.login = login
        request.password = password
        request.oneTimeCode = code ?? ""
        do {
          response = try await auth.login(request, options: connection.callOptions)
        } catch let error as RPCError
          where error.trailers["two-step"] == "required" && code == nil && isatty(STDIN_FILENO) == 1
        {
          // Two-step login is on: the code is asked for, and the sign-in made again.
          request.oneTimeCode = try SecretSource.ask("One-time code for \(login): ", option: "code")
          response = try await auth.login(request, options: connection.callOptions)
        }
      }
      try file.save(response.token)
      if connection.json {
        Output.json(
          .object([
            ("login", .string(response.login)), ("administrator", .bool(response.administrator)),
            ("scope", .string(Session.scopeName(response.scope))),
            ("expires_at_unix_ms", .int(Int(response.expiresAtUnixMs))), ("session_file", .string(file.path)),
          ]))
        return
      }
      Output.line(
        "signed in as \(response.login)\(response.administrator ? " (administrator)" : ""); session saved in \(file.path)"
      )
      Output.line(
        "session ends \(Session.time(response.expiresAtUnixMs)), or after \(response.idleTimeoutSeconds / 60) minutes without a call"
      )
      if response.scope == .changePassword {
        Output.line("this password must be changed before anything else: dmsctl passwd")
      }
      if response.scope == .enrolTwoStep {
        Output.line("two-step login is enforced: turn it on before anything else: dmsctl 2fa enrol")
      }
    }
  }
}

/// `dmsctl logout`: ends the session and forgets it.
struct Logout: AsyncParsableCommand {
  static let configuration = CommandConfiguration(abstract: "End the session and remove the saved one.")
  @OptionGroup var connection: ConnectionOptions

  func run() async throws {
    let file = try connection.sessionFile()
    // A session file others could read is the one to end first.
    guard try file.token(allowingOthers: true) != nil else {
      Output.line("not signed in")
      return
    }
    try await connection.withClient(anySession: true) { client in
      do {
        _ = try await Dms_Auth_V1_Auth.Client(client).logout(options: connection.callOptions)
      } catch let error as RPCError where error.code == .unauthenticated {
        // Already ended on the server: forgetting it is all that is left.
      }
      file.remove()
      if connection.json { return Output.json(.object([("signed_out", .bool(true))])) }
      Output.line("signed out")
    }
  }
}

/// `dmsctl whoami`.
struct WhoAmI: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "whoami", abstract: "Show who the session belongs to.")
  @OptionGroup var connection: ConnectionOptions

  func run() async throws {
    try await connection.withClient { client in
      let me = try await Dms_Auth_V1_Auth.Client(client).whoAmI(options: connection.callOptions)
      if connection.json { return Output.message(me) }
      Output.fields([
        ("login", me.login),
        ("full name", me.fullName),
        ("administrator", me.administrator ? "yes" : "no"),
        ("companies", me.companies.joined(separator: ", ")),
        ("two-step login", me.system ? "(an API system)" : me.twoStepEnabled ? "on" : "off"),
        ("scope", Session.scopeName(me.scope)),
        ("session ends", Session.time(me.expiresAtUnixMs)),
      ])
    }
  }
}

/// `dmsctl passwd`: changes the signed-in operator's own password.
struct Passwd: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Change your own password (every other session of yours ends).",
    discussion: """
      Both passwords are asked on the terminal without echo (the new one twice), or read
      from files: --password-file (the current one) and --new-password-file (- for stdin,
      for one of them).
      """)
  @OptionGroup var connection: ConnectionOptions
  @Option(help: "Read the current password from a file (- for stdin).") var passwordFile: String?
  @Option(help: "Read the new password from a file (- for stdin).") var newPasswordFile: String?

  func run() async throws {
    var stdinTaken = false
    let current =
      try SecretSource(
        name: "password", label: "Current password", prompt: passwordFile == nil, file: passwordFile
      ).value(stdinTaken: &stdinTaken) ?? ""
    let new =
      try SecretSource(
        name: "new-password", label: "New password", prompt: newPasswordFile == nil, file: newPasswordFile
      ).value(stdinTaken: &stdinTaken) ?? ""
    if newPasswordFile == nil, try SecretSource.ask("New password again: ", option: "new-password") != new {
      throw ValidationError("the two new passwords differ; nothing was changed")
    }
    try await connection.withClient(
      flags: FlagNames(byField: ["current_password": "--password", "new_password": "--new-password"])
    ) { client in
      var request = Dms_Auth_V1_ChangePasswordRequest()
      request.currentPassword = current
      request.newPassword = new
      _ = try await Dms_Auth_V1_Auth.Client(client).changePassword(request, options: connection.callOptions)
      if connection.json { return Output.json(.object([("password_changed", .bool(true))])) }
      Output.line("password changed; your other sessions have ended")
    }
  }
}

enum Session {
  static func scopeName(_ scope: Dms_Auth_V1_SessionScope) -> String {
    switch scope {
    case .full: return "full"
    case .changePassword: return "change password only"
    case .enrolTwoStep: return "enrol in two-step login only"
    default: return "unknown"
    }
  }

  /// A Unix time in milliseconds as UTC ISO 8601.
  static func time(_ unixMs: Int64) -> String {
    ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: TimeInterval(unixMs) / 1000))
  }
}
