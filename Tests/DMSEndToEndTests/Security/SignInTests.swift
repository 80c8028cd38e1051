import DMSClient
import DMSDomain
import DMSMessages
import DMSRPC
import DMSStubs
import Foundation
import Logging
import Synchronization
import Testing

@testable import DMSServices
@testable import DMSStorage

/// Signing in and out over the wire (docs/SECURITY.md).
@Suite("Sign-in: sessions, passwords, slowdown, first start")
struct SignInTests {
  static func login(_ client: RPCClient, _ login: String, _ password: String) async throws
    -> Dms_Auth_V1_LoginResponse
  {
    var request = Dms_Auth_V1_LoginRequest()
    request.login = login
    request.password = password
    return try await Dms_Auth_V1_Auth.Client(client).login(request)
  }

  static func anonymous(_ server: TestServer) -> RPCClient { server.client { $0.credentials = nil } }

  static func signedIn(_ server: TestServer, _ token: String) -> RPCClient {
    server.client { $0.credentials = .token(token) }
  }

  /// Creates an operator through the API.
  static func createOperator(
    _ admin: RPCClient, _ login: String, password: String, administrator: Bool = false, mustChange: Bool = false
  ) async throws -> Dms_Settings_V1_Operator {
    var request = Dms_Settings_V1_CreateOperatorRequest()
    request.operator.login = login
    request.operator.fullName = "Operator \(login)"
    request.operator.administrator = administrator
    request.password = password
    request.mustChangePassword = mustChange
    return try await Dms_Settings_V1_Operators.Client(admin).create(request)
  }

  @Test("a login gets a 256-bit token that works until logout; the token is stored only as its hash")
  func loginAndLogout() async throws {
    try await withTestServer { server in
      let admin = server.client()
      _ = try await Self.createOperator(admin, "Jan", password: "open sesame twice over")
      let anonymous = Self.anonymous(server)
      let response = try await Self.login(anonymous, "JAN", "open sesame twice over")  // logins ignore case
      #expect(response.login == "Jan" && !response.administrator && response.scope == .full)
      #expect(response.token.count == 43, "32 bytes in base64url without padding")
      #expect(response.expiresAtUnixMs > Int64(Date().timeIntervalSince1970 * 1000))
      let jan = Self.signedIn(server, response.token)
      let me = try await Dms_Auth_V1_Auth.Client(jan).whoAmI()
      #expect(me.login == "Jan" && me.fullName == "Operator Jan")
      // The database holds the token's SHA-256, never the token.
      let stored = try await server.store.inspectData("SELECT token_hash FROM operator_session")
      let bytes = try #require(SessionTokens.decode(Substring(response.token)))
      #expect(stored.contains(SessionTokens.hash(bytes).bytes))
      #expect(!stored.contains(Data(bytes)))
      _ = try await Dms_Auth_V1_Auth.Client(jan).logout()
      let after = await rpcError { _ = try await Dms_Auth_V1_Auth.Client(jan).whoAmI() }
      #expect(after?.code == .unauthenticated)
      for client in [admin, anonymous, jan] { await client.close() }
    }
  }

  @Test("a wrong password and an unknown login get the same answer after the same work (one KDF each)")
  func sameAnswer() async throws {
    try await withTestServer { server in
      let admin = server.client()
      _ = try await Self.createOperator(admin, "ola", password: "purple monkey dishwasher")
      let anonymous = Self.anonymous(server)
      let hasher = server.hasher
      var answers: [String] = []
      for login in ["ola", "nobody"] {
        let before = hasher.derivations.load(ordering: .relaxed)
        let error = await rpcError { _ = try await Self.login(anonymous, login, "not the password") }
        #expect(hasher.derivations.load(ordering: .relaxed) - before == 1, "\(login)")
        #expect(error?.code == .unauthenticated)
        answers.append(error?.message ?? "")
      }
      #expect(answers[0] == answers[1] && answers[0] == "wrong login or password")
      // A disabled operator is refused the same way, even with its right password.
      var update = Dms_Settings_V1_UpdateOperatorRequest()
      var get = Dms_Settings_V1_GetOperatorRequest()
      get.login = "ola"
      update.login = "ola"
      update.operator = try await Dms_Settings_V1_Operators.Client(admin).get(get)
      update.operator.disabled = true
      _ = try await Dms_Settings_V1_Operators.Client(admin).update(update)
      let disabled = await rpcError { _ = try await Self.login(anonymous, "ola", "purple monkey dishwasher") }
      #expect(disabled?.code == .unauthenticated && disabled?.message == "wrong login or password")
      await anonymous.close()
      await admin.close()
    }
  }

  @Test("failed sign-ins slow down exponentially, per login and per address; even the right password waits")
  func slowdown() async throws {
    var security = SecurityConfiguration()
    security.throttle = LoginThrottle.Policy(
      freeFailuresPerLogin: 2, freeFailuresPerAddress: 5, firstWait: .seconds(30), maximumWait: .seconds(120))
    try await withTestServer(security: security) { server in
      let admin = server.client()
      _ = try await Self.createOperator(admin, "ewa", password: "river stone lantern")
      let anonymous = Self.anonymous(server)
      for _ in 0..<2 {
        #expect(await rpcError { _ = try await Self.login(anonymous, "ewa", "guess") }?.code == .unauthenticated)
      }
      // The third failure imposes the first wait; then the login is refused before any check.
      #expect(await rpcError { _ = try await Self.login(anonymous, "ewa", "guess") }?.code == .unauthenticated)
      let waiting = await rpcError { _ = try await Self.login(anonymous, "ewa", "river stone lantern") }
      #expect(waiting?.code == .resourceExhausted, "\(String(describing: waiting))")
      let wait = Int(waiting?.trailers["retry-after-ms"] ?? "") ?? 0
      // At most the first wait (what is left of it). The wait is long beside the calls
      // between: on a loaded machine (CI, the whole suite at once) they have taken more
      // than the 2 s it once was, and the wait was over before it was looked at.
      #expect(wait > 0 && wait <= 30000, "\(wait)")
      // Other logins from the same address go on until the address's own limit.
      #expect(await rpcError { _ = try await Self.login(anonymous, "someone", "guess") }?.code == .unauthenticated)
      #expect(await rpcError { _ = try await Self.login(anonymous, "another", "guess") }?.code == .unauthenticated)
      // The address's 6th failure imposes its first wait.
      #expect(await rpcError { _ = try await Self.login(anonymous, "third", "guess") }?.code == .unauthenticated)
      let addressBlocked = await rpcError { _ = try await Self.login(anonymous, "fourth", "guess") }
      #expect(addressBlocked?.code == .resourceExhausted, "\(String(describing: addressBlocked))")
      await anonymous.close()
      await admin.close()
    }
  }

  @Test("the wait doubles with each failure, up to the maximum; memory stays bounded")
  func throttlePolicy() {
    let throttle = LoginThrottle(
      policy: LoginThrottle.Policy(
        freeFailuresPerLogin: 3, freeFailuresPerAddress: 100, firstWait: .seconds(1), maximumWait: .seconds(10),
        maxTracked: 50))
    let start = ContinuousClock.now
    let waits = (1...8).map { throttle.failed(login: "x", address: "a", now: start.advanced(by: .seconds($0 * 20))) }
    #expect(waits == [.zero, .zero, .zero, .seconds(1), .seconds(2), .seconds(4), .seconds(8), .seconds(10)])
    #expect(
      throttle.wait(login: "X", address: "b", now: start.advanced(by: .seconds(161))) != nil, "logins ignore case")
    throttle.succeeded(login: "x")
    #expect(throttle.wait(login: "x", address: "b", now: start.advanced(by: .seconds(161))) == nil)
    for index in 0..<500 { throttle.failed(login: "user\(index)", address: "addr\(index)", now: start) }
    #expect(throttle.trackedCount <= 50)
  }

  @Test("changing the password ends the operator's other sessions; disabling and deleting end them all")
  func sessionsEnd() async throws {
    try await withTestServer { server in
      let admin = server.client()
      let operators = Dms_Settings_V1_Operators.Client(admin)
      _ = try await Self.createOperator(admin, "adam", password: "blue kettle morning")
      let anonymous = Self.anonymous(server)
      let first = Self.signedIn(server, try await Self.login(anonymous, "adam", "blue kettle morning").token)
      let second = Self.signedIn(server, try await Self.login(anonymous, "adam", "blue kettle morning").token)
      var change = Dms_Auth_V1_ChangePasswordRequest()
      change.currentPassword = "wrong"
      change.newPassword = "green kettle evening"
      let wrong = await rpcError { _ = try await Dms_Auth_V1_Auth.Client(first).changePassword(change) }
      #expect(wrong?.code == .invalidArgument && rules(wrong) == ["current_password:"])
      change.currentPassword = "blue kettle morning"
      change.newPassword = "adam"
      let weak = await rpcError { _ = try await Dms_Auth_V1_Auth.Client(first).changePassword(change) }
      #expect(rules(weak) == ["new_password:password policy", "new_password:password policy"])
      change.newPassword = "green kettle evening"
      _ = try await Dms_Auth_V1_Auth.Client(first).changePassword(change)
      #expect(try await Dms_Auth_V1_Auth.Client(first).whoAmI().login == "adam", "the session that changed it goes on")
      #expect(await rpcError { _ = try await Dms_Auth_V1_Auth.Client(second).whoAmI() }?.code == .unauthenticated)
      #expect(await rpcError { _ = try await Self.login(anonymous, "adam", "blue kettle morning") } != nil)
      let third = Self.signedIn(server, try await Self.login(anonymous, "adam", "green kettle evening").token)

      var get = Dms_Settings_V1_GetOperatorRequest()
      get.login = "adam"
      var update = Dms_Settings_V1_UpdateOperatorRequest()
      update.login = "adam"
      update.operator = try await operators.get(get)
      update.operator.disabled = true
      _ = try await operators.update(update)
      for client in [first, third] {
        #expect(await rpcError { _ = try await Dms_Auth_V1_Auth.Client(client).whoAmI() }?.code == .unauthenticated)
      }
      update.operator = try await operators.get(get)
      update.operator.disabled = false
      _ = try await operators.update(update)
      let fourth = Self.signedIn(server, try await Self.login(anonymous, "adam", "green kettle evening").token)
      var delete = Dms_Settings_V1_DeleteOperatorRequest()
      delete.login = "adam"
      _ = try await operators.delete(delete)
      #expect(await rpcError { _ = try await Dms_Auth_V1_Auth.Client(fourth).whoAmI() }?.code == .unauthenticated)
      // An administrator's reset ends the sessions too and may require a change at the next sign-in.
      _ = try await Self.createOperator(admin, "iga", password: "first key of the door")
      let iga = Self.signedIn(server, try await Self.login(anonymous, "iga", "first key of the door").token)
      var reset = Dms_Settings_V1_SetOperatorPasswordRequest()
      reset.login = "iga"
      reset.password = "a reset passphrase"
      reset.mustChangePassword = true
      let afterReset = try await operators.setPassword(reset)
      #expect(afterReset.mustChangePassword && afterReset.passwordSet)
      #expect(await rpcError { _ = try await Dms_Auth_V1_Auth.Client(iga).whoAmI() }?.code == .unauthenticated)
      let restricted = try await Self.login(anonymous, "iga", "a reset passphrase")
      #expect(restricted.scope == .changePassword)
      for client in [admin, anonymous, first, second, third, fourth, iga] { await client.close() }
    }
  }

  @Test("a session idle too long is refused and forgotten; the client library signs in again by itself, once")
  func idleAndRenew() async throws {
    try await withTestServer { server in
      let admin = server.client()
      _ = try await Self.createOperator(admin, "svc", password: "a service's passphrase", administrator: true)
      // Idleness, without waiting: with an idle timeout of zero every session is idle.
      // The lookup refuses it and forgets it: with the real timeout it is gone too.
      let token = try await Self.login(Self.anonymous(server), "svc", "a service's passphrase").token
      let hash = SessionTokens.hash(try #require(SessionTokens.decode(Substring(token))))
      #expect(server.store.operators.principal(forTokenHash: hash, at: Date(), idleTimeout: .seconds(3600)) != nil)
      #expect(server.store.operators.principal(forTokenHash: hash, at: Date(), idleTimeout: .zero) == nil)
      let byToken = Self.signedIn(server, token)
      #expect(await rpcError { _ = try await Dms_Auth_V1_Auth.Client(byToken).whoAmI() }?.code == .unauthenticated)

      let service = server.client { $0.credentials = .password(login: "svc", password: "a service's passphrase") }
      let before = server.hasher.derivations.load(ordering: .relaxed)
      // Concurrent first calls sign in once.
      try await withThrowingTaskGroup(of: Void.self) { group in
        for _ in 0..<8 { group.addTask { _ = try await Dms_Settings_V1_SharedSettings.Client(service).get() } }
        try await group.waitForAll()
      }
      #expect(server.hasher.derivations.load(ordering: .relaxed) - before == 1, "one sign-in for 8 calls")
      // The session ends behind the client's back (here: every session of svc, by a
      // reset of the same password); its next call signs in again and goes through.
      var reset = Dms_Settings_V1_SetOperatorPasswordRequest()
      reset.login = "svc"
      reset.password = "a service's passphrase"
      _ = try await Dms_Settings_V1_Operators.Client(admin).setPassword(reset)
      let afterReset = server.hasher.derivations.load(ordering: .relaxed)
      _ = try await Dms_Settings_V1_SharedSettings.Client(service).get()
      #expect(server.hasher.derivations.load(ordering: .relaxed) - afterReset == 1, "signed in again once")
      // A wrong password reaches the caller as the server's answer.
      let wrong = server.client { $0.credentials = .password(login: "svc", password: "not it") }
      #expect(
        await rpcError { _ = try await Dms_Settings_V1_SharedSettings.Client(wrong).get() }?.code == .unauthenticated)
      for client in [admin, byToken, service, wrong] { await client.close() }
    }
  }

  @Test("the sweep removes expired and idle sessions from the table and from memory; live ones stay")
  func sweep() async throws {
    try await withTestServer { server in
      let expired = try await server.session(of: Operator(login: "gone"), expiresIn: .seconds(-1))
      let live = try await server.session(of: Operator(login: "here"))
      func rows() async throws -> Int {
        try await server.store.inspectCount("SELECT count(*) FROM operator_session")
      }
      #expect(try await rows() == 3, "tester's, the expired one, the live one")
      var security = SecurityConfiguration()
      security.idleTimeout = .seconds(3600)
      #expect(
        await SessionSweeper(store: server.store, configuration: security, logger: Logger(label: "t")).sweep() == 1)
      #expect(try await rows() == 2)
      let client = server.client { $0.credentials = .token(live) }
      #expect(try await Dms_Auth_V1_Auth.Client(client).whoAmI().login == "here")
      // With an idle timeout of zero every session is idle.
      security.idleTimeout = .zero
      let swept = await SessionSweeper(store: server.store, configuration: security, logger: Logger(label: "t")).sweep()
      switch TestBackend.current {
      case .sqlite:
        #expect(swept == 2)
        #expect(try await rows() == 0)
        #expect(await rpcError { _ = try await Dms_Auth_V1_Auth.Client(client).whoAmI() }?.code == .unauthenticated)
      case .postgres:
        // A shared database: another instance may be using a session idle here, so
        // only expiry removes rows (docs/STORAGE.md, several instances).
        #expect(swept == 0)
        #expect(try await rows() == 2)
        #expect(try await Dms_Auth_V1_Auth.Client(client).whoAmI().login == "here")
      }
      _ = expired
      await client.close()
    }
  }

  @Test("first start: admin with a one-time password in a 0600 file; its session may only change it; the file goes")
  func firstStart() async throws {
    try await withTestServer { server in
      let folder = TestServer.temporaryDirectory()
      let first = InitialAdministrator(dataFolder: folder)
      // The test server already has its administrator: a data folder with operators gets none.
      #expect(try await !first.ensure(store: server.store, hasher: server.hasher, logger: Logger(label: "t")))
      #expect(!FileManager.default.fileExists(atPath: first.passwordFile))
      try await server.store.operators.transaction(by: .system("test")) { tx in
        let tester = try #require(try tx.operator(login: "tester"))
        _ = try tx.deleteOperator(id: tester.id)
      }
      #expect(try await first.ensure(store: server.store, hasher: server.hasher, logger: Logger(label: "t")))
      let attributes = try FileManager.default.attributesOfItem(atPath: first.passwordFile)
      #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
      let password = try String(contentsOfFile: first.passwordFile, encoding: .utf8).trimmingCharacters(
        in: .newlines)
      #expect(password.count == 23 && PasswordPolicy().violations(of: password, login: "admin").isEmpty)
      #expect(try await !first.ensure(store: server.store, hasher: server.hasher, logger: Logger(label: "t")))

      let anonymous = Self.anonymous(server)
      let login = try await Self.login(anonymous, "admin", password)
      #expect(login.scope == .changePassword && login.administrator)
      let admin = Self.signedIn(server, login.token)
      #expect(
        await rpcError { _ = try await Dms_Settings_V1_SharedSettings.Client(admin).get() }?.code
          == .failedPrecondition)
      // The server wired with this first start removes the file once the password changed.
      let auth = AuthService(
        store: server.store, hasher: server.hasher, configuration: SecurityConfiguration(),
        initialAdministrator: first, logger: Logger(label: "t"))
      var change = Dms_Auth_V1_ChangePasswordRequest()
      change.currentPassword = password
      change.newPassword = "the chief's own passphrase"
      let authorized = try SessionAuthorizer(directory: server.store.operators, configuration: SecurityConfiguration())
        .authorize(
          ServerContext.Origin(
            method: Dms_Auth_V1_Auth.Method.changePassword, metadata: [:], peer: "test",
            credential: SessionTokens.credential(authorization: "Bearer \(login.token)")))
      let caller = try #require(authorized)
      _ = try await auth.changePassword(
        request: change,
        context: ServerContext(
          method: Dms_Auth_V1_Auth.Method.changePassword, metadata: [:], requestID: "r", deadline: nil, peer: "test",
          caller: caller))
      #expect(!FileManager.default.fileExists(atPath: first.passwordFile))
      #expect(try await Dms_Settings_V1_SharedSettings.Client(admin).get().revision >= 0, "full scope now")
      await anonymous.close()
      await admin.close()
    }
  }

  @Test("bootstrap-admin makes an administrator, or resets one (enabled, its sessions ended); weak passwords refused")
  func bootstrap() async throws {
    try await withTestServer { server in
      let outcome = try await InitialAdministrator.bootstrap(
        login: "ops", password: "deployment passphrase", store: server.store, hasher: server.hasher)
      #expect(outcome == .created)
      let token = try await Self.login(Self.anonymous(server), "ops", "deployment passphrase").token
      let ops = Self.signedIn(server, token)
      #expect(try await Dms_Auth_V1_Auth.Client(ops).whoAmI().administrator)
      let again = try await InitialAdministrator.bootstrap(
        login: "OPS", password: "another deployment passphrase", store: server.store, hasher: server.hasher)
      #expect(again == .passwordReset)
      #expect(await rpcError { _ = try await Dms_Auth_V1_Auth.Client(ops).whoAmI() }?.code == .unauthenticated)
      await #expect(throws: ValidationFailure.self) {
        _ = try await InitialAdministrator.bootstrap(
          login: "x", password: "short", store: server.store, hasher: server.hasher)
      }
      await ops.close()
    }
  }

  @Test("the server's log holds no password and no token of a whole session of sign-ins and changes")
  func noSecretsInLogs() async throws {
    let captured = CapturedLog()
    let secrets = Mutex<[String]>([])
    var logger = Logger(label: "capture") { _ in captured }
    logger.logLevel = .trace
    try await withTestServer(logger: logger) { server in
      let admin = server.client()
      let anonymous = Self.anonymous(server)
      var used = ["quiet harbour lights", "loud harbour lights", "Xl-Passw0rd-123", server.adminToken]
      _ = try await Self.createOperator(admin, "kim", password: used[0])
      _ = await rpcError { _ = try await Self.login(anonymous, "kim", "a wrong guess at it") }
      used.append("a wrong guess at it")
      let token = try await Self.login(anonymous, "kim", used[0]).token
      used.append(token)
      let kim = Self.signedIn(server, token)
      var change = Dms_Auth_V1_ChangePasswordRequest()
      change.currentPassword = used[0]
      change.newPassword = used[1]
      _ = try await Dms_Auth_V1_Auth.Client(kim).changePassword(change)
      var create = Dms_Settings_V1_CreateCompanyRequest()
      create.company = companyMessage("LOGS")
      create.secrets.connectionPassword = secret(used[2])
      _ = try await Dms_Settings_V1_Companies.Client(admin).create(create)
      var reveal = Dms_Settings_V1_RevealCompanySecretRequest()
      reveal.shortName = "LOGS"
      reveal.field = .connectionPassword
      reveal.reason = "test"
      _ = try await Dms_Settings_V1_Companies.Client(admin).revealSecret(reveal)
      _ = try await Dms_Auth_V1_Auth.Client(kim).logout()
      for client in [admin, anonymous, kim] { await client.close() }
      secrets.withLock { $0 = used }
    }
    let text = captured.text
    #expect(text.contains("sign-in refused") && text.contains("signed in"), "the log was captured")
    for secret in secrets.withLock({ $0 }) {
      #expect(!text.contains(secret), "\(secret) in the log")
    }
    #expect(!text.contains("Bearer "), "no token in the log")
    #expect(text.contains("$scrypt$") == false, "no password hash in the log")
  }
}

/// Every log line, as text.
///
/// A value, as a `LogHandler` should be: libraries set metadata on their own copy of a
/// logger (PostgresNIO, on each connection it makes, from several threads at once),
/// and each copy keeps its own; the lines are shared, behind a lock.
struct CapturedLog: LogHandler {
  private final class Lines: Sendable {
    let lines = Mutex<[String]>([])
  }

  private let lines = Lines()
  var metadata: Logger.Metadata = [:]
  var logLevel: Logger.Level = .trace

  subscript(metadataKey key: String) -> Logger.Metadata.Value? {
    get { metadata[key] }
    set { metadata[key] = newValue }
  }

  func log(event: LogEvent) {
    let all = metadata.merging(event.metadata ?? [:]) { $1 }
    lines.lines.withLock { $0.append("\(event.level) \(event.message) \(all)") }
  }

  var text: String { lines.lines.withLock { $0.joined(separator: "\n") } }
}
