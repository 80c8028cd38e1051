import DMSClient
import DMSDomain
import DMSMessages
import DMSRPC
import DMSStubs
import Foundation
import GRDB
import Testing

@testable import DMSServices
@testable import DMSStorage

/// Two-step login (TOOLS-4): TOTP against RFC 6238, enrolment, replay, enforcement.
@Suite("Two-step login")
struct TwoStepTests {
  @Test("TOTP: RFC 6238's SHA-1 test vectors, RFC 4226's HOTP vectors, base32 of RFC 4648")
  func vectors() {
    let secret = Array("12345678901234567890".utf8)
    // RFC 6238 appendix B (SHA-1, 8 digits).
    for (time, code) in [
      (59, "94287082"), (1_111_111_109, "07081804"), (1_111_111_111, "14050471"), (1_234_567_890, "89005924"),
      (2_000_000_000, "69279037"), (20_000_000_000, "65353130"),
    ] as [(Int64, String)] {
      let step = TOTP.step(at: Date(timeIntervalSince1970: TimeInterval(time)))
      #expect(TOTP.code(secret: secret, counter: step, digits: 8) == code, "T=\(time)")
    }
    // RFC 4226 appendix D (6 digits).
    let hotp = ["755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"]
    for (counter, code) in hotp.enumerated() {
      #expect(TOTP.code(secret: secret, counter: Int64(counter)) == code)
    }
    // RFC 4648 §10.
    for (text, encoded) in [
      ("", ""), ("f", "MY"), ("fo", "MZXQ"), ("foo", "MZXW6"), ("foob", "MZXW6YQ"), ("fooba", "MZXW6YTB"),
      ("foobar", "MZXW6YTBOI"),
    ] {
      #expect(Base32.encode(Array(text.utf8)) == encoded)
      #expect(Base32.decode(encoded) == Array(text.utf8))
      #expect(Base32.decode(encoded.lowercased() + "====") == Array(text.utf8))
    }
    #expect(Base32.decode("MZ1") == nil)
    // A code is accepted one step either side of now, once, and never at or before the last one used.
    let now = Date(timeIntervalSince1970: 1_111_111_111)
    let step = TOTP.step(at: now)
    for offset in [-1, 0, 1] as [Int64] {
      let code = TOTP.code(secret: secret, counter: step + offset)
      #expect(TOTP.matchingStep(code, secret: secret, at: now, after: 0) == step + offset)
      #expect(TOTP.matchingStep(code, secret: secret, at: now, after: step + offset) == nil, "no replay")
    }
    #expect(TOTP.matchingStep(TOTP.code(secret: secret, counter: step + 2), secret: secret, at: now, after: 0) == nil)
    #expect(TOTP.matchingStep("12345", secret: secret, at: now, after: 0) == nil)
    #expect(TOTP.matchingStep("abcdef", secret: secret, at: now, after: 0) == nil)
    let uri = TOTP.uri(secret: Array("foobar".utf8), issuer: "DMS Test", account: "jan@corp")
    #expect(
      uri
        == "otpauth://totp/DMS%20Test:jan%40corp?secret=MZXW6YTBOI&issuer=DMS%20Test&algorithm=SHA1&digits=6&period=30")
  }

  /// The code of `secret` (base32) at the current step plus `offset`.
  static func code(_ secret: String, _ offset: Int64 = 0) -> String {
    TOTP.code(secret: Base32.decode(secret)!, counter: TOTP.step(at: Date()) + offset)
  }

  static func login(_ client: RPCClient, _ login: String, _ password: String, code: String = "") async throws
    -> Dms_Auth_V1_LoginResponse
  {
    var request = Dms_Auth_V1_LoginRequest()
    request.login = login
    request.password = password
    request.oneTimeCode = code
    return try await Dms_Auth_V1_Auth.Client(client).login(request)
  }

  static func confirm(_ client: RPCClient, _ code: String) async throws {
    var request = Dms_Auth_V1_ConfirmTwoStepRequest()
    request.code = code
    _ = try await Dms_Auth_V1_Auth.Client(client).confirmTwoStep(request)
  }

  static func setEnforced(_ admin: RPCClient, _ on: Bool) async throws -> Dms_Settings_V1_SecurityPolicySettings {
    let policy = Dms_Settings_V1_SecurityPolicy.Client(admin)
    var request = Dms_Settings_V1_UpdateSecurityPolicyRequest()
    request.policy = try await policy.get()
    request.policy.enforceTwoStepLogin = on
    return try await policy.update(request)
  }

  @Test("enrol, confirm, sign in with a code; a code is never accepted twice; the secret is sealed at rest")
  func enrolment() async throws {
    try await withTestServer { server in
      let admin = server.client()
      let anonymous = SignInTests.anonymous(server)
      let password = "a garden of forking paths"
      _ = try await SignInTests.createOperator(admin, "kim", password: password)
      let kim = SignInTests.signedIn(server, try await Self.login(anonymous, "kim", password).token)
      let auth = Dms_Auth_V1_Auth.Client(kim)

      let early = await rpcError { try await Self.confirm(kim, "123456") }
      #expect(early?.code == .failedPrecondition, "nothing to confirm before enrolling")
      _ = try await auth.enrolTwoStep()
      let enrolment = try await auth.enrolTwoStep()
      #expect(enrolment.secret.count == 32 && Base32.decode(enrolment.secret)?.count == 20)
      #expect(enrolment.uri.hasPrefix("otpauth://totp/DMS:kim?secret=\(enrolment.secret)&issuer=DMS&algorithm=SHA1"))
      #expect(try await auth.whoAmI().twoStepEnabled == false, "pending until confirmed")
      // A pending enrolment does not yet ask for codes.
      _ = try await Self.login(anonymous, "kim", password)

      let malformed = await rpcError { try await Self.confirm(kim, "12 34") }
      #expect(rules(malformed) == ["code:TOOLS-4"])
      let wrong = String(format: "%06d", (Int(Self.code(enrolment.secret))! + 1) % 1_000_000)
      let refused = await rpcError { try await Self.confirm(kim, wrong) }
      #expect(refused?.code == .invalidArgument && rules(refused) == ["code:TOOLS-4"])
      // One code for the confirmation and the replay below: computed twice, the two could
      // fall either side of a 30 s step boundary, and the later one would rightly be accepted.
      let confirming = Self.code(enrolment.secret)
      try await Self.confirm(kim, confirming)
      #expect(try await auth.whoAmI().twoStepEnabled)
      #expect(try await OperatorsTests.get(admin, "kim").twoStepEnabled)
      let again = await rpcError { _ = try await auth.enrolTwoStep() }
      #expect(again?.code == .failedPrecondition)

      // Sign-ins now need a code: none, a wrong one and a used one are refused alike.
      let none = await rpcError { _ = try await Self.login(anonymous, "kim", password) }
      #expect(none?.code == .unauthenticated && none?.trailers["two-step"] == "required")
      let used = await rpcError {
        _ = try await Self.login(anonymous, "kim", password, code: confirming)
      }
      #expect(used?.code == .unauthenticated && used?.trailers["two-step"] == "required", "the confirming code")
      let next = Self.code(enrolment.secret, 1)
      let session = try await Self.login(anonymous, "kim", password, code: next)
      #expect(session.scope == .full)
      let replay = await rpcError { _ = try await Self.login(anonymous, "kim", password, code: next) }
      #expect(replay?.code == .unauthenticated, "the same code twice")
      let badPassword = await rpcError { _ = try await Self.login(anonymous, "kim", "not the password at all") }
      #expect(badPassword?.trailers["two-step"] == nil, "a wrong password says nothing of two-step login")

      // Sealed at rest: the column holds no form of the secret.
      let sealed = try await server.store.inspectData("SELECT two_step_secret FROM operator WHERE login = 'kim'")
      let raw = try #require(sealed.first)
      #expect(
        raw.range(of: Data(enrolment.secret.utf8)) == nil
          && raw.range(of: Data(Base32.decode(enrolment.secret)!)) == nil)

      // Off with a code (a later one than any used), or by an administrator.
      var disable = Dms_Auth_V1_DisableTwoStepRequest()
      disable.code = next
      #expect(await rpcError { _ = try await auth.disableTwoStep(disable) }?.code == .invalidArgument)
      var off = Dms_Settings_V1_DisableOperatorTwoStepRequest()
      off.login = "kim"
      #expect(try await Dms_Settings_V1_Operators.Client(admin).disableTwoStep(off).twoStepEnabled == false)
      let nothing = await rpcError { _ = try await Dms_Settings_V1_Operators.Client(admin).disableTwoStep(off) }
      #expect(nothing?.code == .failedPrecondition, "nothing left to turn off")
      _ = try await Self.login(anonymous, "kim", password)
      #expect(await rpcError { _ = try await auth.disableTwoStep(disable) }?.code == .failedPrecondition)

      var audit = Dms_Settings_V1_ListAuditRequest()
      audit.subject = "kim"
      let actions = try await Dms_Settings_V1_Audit.Client(admin).list(audit).entries.map(\.action)
      #expect(
        actions.filter { $0.hasPrefix("operator.two-step") } == [
          "operator.two-step.enrol", "operator.two-step.enrol", "operator.two-step.on", "operator.two-step.off",
        ])
      for client in [admin, anonymous, kim] { await client.close() }
    }
  }

  @Test("the operator turns it off with a current code; then sign-ins need none")
  func disableWithCode() async throws {
    try await withTestServer { server in
      let admin = server.client()
      let anonymous = SignInTests.anonymous(server)
      let password = "a garden of forking paths"
      _ = try await SignInTests.createOperator(admin, "ola", password: password)
      let ola = SignInTests.signedIn(server, try await Self.login(anonymous, "ola", password).token)
      let secret = try await Dms_Auth_V1_Auth.Client(ola).enrolTwoStep().secret
      try await Self.confirm(ola, Self.code(secret))
      var disable = Dms_Auth_V1_DisableTwoStepRequest()
      disable.code = Self.code(secret, 1)
      _ = try await Dms_Auth_V1_Auth.Client(ola).disableTwoStep(disable)
      #expect(try await Self.login(anonymous, "ola", password).scope == .full)
      for client in [admin, anonymous, ola] { await client.close() }
    }
  }

  @Test("TOOLS-4 enforcement: open sessions stay; a sign-in without two-step login may only enrol, then goes on")
  func enforcement() async throws {
    try await withTestServer { server in
      let admin = server.client()
      let anonymous = SignInTests.anonymous(server)
      let password = "a garden of forking paths"
      _ = try await SignInTests.createOperator(admin, "eva", password: password)
      let before = SignInTests.signedIn(server, try await Self.login(anonymous, "eva", password).token)

      let policy = try await Self.setEnforced(admin, true)
      #expect(policy.enforceTwoStepLogin && policy.revision == 2)
      var stale = Dms_Settings_V1_UpdateSecurityPolicyRequest()
      stale.policy.revision = 1
      #expect(
        await rpcError { _ = try await Dms_Settings_V1_SecurityPolicy.Client(admin).update(stale) }?.code == .aborted)
      // Sessions open when the switch was turned on stay valid.
      _ = try await Dms_Settings_V1_Companies.Client(before).list()

      let login = try await Self.login(anonymous, "eva", password)
      #expect(login.scope == .enrolTwoStep)
      let eva = SignInTests.signedIn(server, login.token)
      let blocked = await rpcError { _ = try await Dms_Settings_V1_Companies.Client(eva).list() }
      #expect(blocked?.code == .failedPrecondition && blocked?.message.contains("two-step login is enforced") == true)
      #expect(try await Dms_Auth_V1_Auth.Client(eva).whoAmI().scope == .enrolTwoStep)
      let secret = try await Dms_Auth_V1_Auth.Client(eva).enrolTwoStep().secret
      try await Self.confirm(eva, Self.code(secret))
      #expect(try await Dms_Auth_V1_Auth.Client(eva).whoAmI().scope == .full)
      _ = try await Dms_Settings_V1_Companies.Client(eva).list()
      #expect(try await Self.login(anonymous, "eva", password, code: Self.code(secret, 1)).scope == .full)

      // A reset password first, then enrolment.
      _ = try await SignInTests.createOperator(admin, "max", password: password, mustChange: true)
      let first = try await Self.login(anonymous, "max", password)
      #expect(first.scope == .changePassword)
      let max = SignInTests.signedIn(server, first.token)
      var change = Dms_Auth_V1_ChangePasswordRequest()
      change.currentPassword = password
      change.newPassword = "another garden of paths"
      _ = try await Dms_Auth_V1_Auth.Client(max).changePassword(change)
      #expect(try await Dms_Auth_V1_Auth.Client(max).whoAmI().scope == .enrolTwoStep)

      // Not enforced any more: sign-ins without two-step login are full again.
      _ = try await Self.setEnforced(admin, false)
      #expect(try await Self.login(anonymous, "max", "another garden of paths").scope == .full)
      var audit = Dms_Settings_V1_ListAuditRequest()
      audit.action = "security-policy.update"
      let rows = try await Dms_Settings_V1_Audit.Client(admin).list(audit).entries
      #expect(rows.map(\.detail) == ["enforced", "not enforced"] && rows.allSatisfy { $0.login == "tester" })
      for client in [admin, anonymous, before, eva, max] { await client.close() }
    }
  }
}
