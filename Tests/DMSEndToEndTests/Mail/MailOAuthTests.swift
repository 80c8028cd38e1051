import DMSClient
import DMSDomain
import DMSMessages
import DMSRPC
import DMSStubs
import Foundation
import Testing

/// OAuth2 for Microsoft 365-style accounts (MAIL-22 … MAIL-24) against a stand-in
/// identity provider and a real SMTP server checking XOAUTH2, on the backend the run
/// tests.
@Suite("Mail OAuth2", .enabled(if: SMTPTestServer.available, "python3-aiosmtpd is not installed"))
struct MailOAuthTests {
  static let acme = MailTests.acting(for: "ACME")

  @Test(
    "MAIL-22 … MAIL-24: sign-in with PKCE stores the tokens; mail goes out with XOAUTH2; an ended token is refreshed and the rotated one kept; a refused refresh means sign-in required, in the settings and the work log"
  )
  func signIn() async throws {
    // Access tokens last 1 s: every sending refreshes first.
    let provider = try await OAuthTestServer(expiresIn: 1)
    let smtp = try await SMTPTestServer.start(mode: .starttls, bearerFile: provider.bearersFile)
    try await withTestServer { server async throws in
      let client = server.client()
      var create = Dms_Settings_V1_CreateCompanyRequest()
      create.company = companyMessage("ACME")
      _ = try await Dms_Settings_V1_Companies.Client(client).create(create)
      let mail = Dms_Settings_V1_Mail.Client(client)
      var begin = Dms_Settings_V1_BeginMailOAuthRequest()
      begin.redirectUri = "http://127.0.0.1:53682/callback"
      // Not an OAuth2 account yet.
      let notYet = await rpcError { _ = try await mail.beginOauthSignIn(begin, options: Self.acme) }
      #expect(notYet?.code == .failedPrecondition)

      var update = Dms_Settings_V1_UpdateMailAccountRequest()
      update.account = MailTests.account()
      update.account.server = "127.0.0.1"
      update.account.port = Int32(smtp.port)
      update.account.authentication = .oauth2
      update.account.oauth.authority = provider.authority
      update.account.oauth.clientID = "app-1"
      update.account.trustedCertificates = smtp.certificatePEM + provider.certificatePEM
      _ = try await mail.updateAccount(update, options: Self.acme)

      var wrong = begin
      wrong.redirectUri = "http://evil.example/callback"
      #expect(
        rules(await rpcError { _ = try await mail.beginOauthSignIn(wrong, options: Self.acme) }) == [
          "redirect_uri:MAIL-22"
        ])
      let started = try await mail.beginOauthSignIn(begin, options: Self.acme)
      #expect(started.authorizationURL.hasPrefix(provider.authority + "/oauth2/v2.0/authorize?client_id=app-1"))
      #expect(started.authorizationURL.contains("code_challenge_method=S256"))
      #expect(!started.authorizationURL.contains("code_verifier"))
      let (code, state) = try provider.signIn(started.authorizationURL)
      #expect(state == started.state && !code.isEmpty)

      var complete = Dms_Settings_V1_CompleteMailOAuthRequest()
      complete.state = "not the state"
      complete.code = code
      #expect(
        await rpcError { _ = try await mail.completeOauthSignIn(complete, options: Self.acme) }?.code
          == .failedPrecondition)
      complete.state = state
      let done = try await mail.completeOauthSignIn(complete, options: Self.acme)
      #expect(done.signedIn && done.message == "Signed in user dms@acme.example")  // MAIL-23
      #expect(done.account.signedIn && !done.account.passwordSet)
      // The pending sign-in is spent.
      #expect(
        await rpcError { _ = try await mail.completeOauthSignIn(complete, options: Self.acme) }?.code
          == .failedPrecondition)

      // MAIL-24: sending signs in with the token; the ended one is refreshed first.
      var enqueue = Dms_Settings_V1_EnqueueMailRequest()
      enqueue.mail.to = ["anna@acme.example"]
      enqueue.mail.subject = "Przez OAuth2"
      _ = try await mail.enqueue(enqueue, options: Self.acme)
      let received = try await smtp.waitForMessages(1)
      #expect(received.first?.auth == "XOAUTH2" && received.first?.login == "dms@acme.example")
      #expect(received.first?.tls == true)
      #expect(provider.grants() == ["authorization_code", "refresh_token"])
      _ = try await mail.enqueue(enqueue, options: Self.acme)
      #expect(try await smtp.waitForMessages(2).count == 2)
      // The rotated refresh token was kept: the second refresh used it.
      #expect(provider.grants() == ["authorization_code", "refresh_token", "refresh_token"])

      // A refused refresh: the tokens go, the account shows sign-in required, the work
      // log says why (MAIL-23), the message fails.
      try provider.refuseRefresh(true)
      enqueue.mail.subject = "Bez tokenu"
      let refused = try await mail.enqueue(enqueue, options: Self.acme)
      let failed = try await MailQueueTests.waitFor(mail) { $0.last?.state == .failed }
      #expect(failed.last?.id == refused.id)
      #expect(try await mail.getAccount(options: Self.acme).signedIn == false)
      let log = try await mail.listWorkLog(Dms_Settings_V1_ListMailWorkLogRequest(), options: Self.acme).entries
      #expect(log.first?.message.hasPrefix("Could not sign in to the account of user dms@acme.example") == true)
      #expect(log.first?.message.contains("invalid_grant") == true)
      #expect(log.allSatisfy { !$0.message.contains("access-") && !$0.message.contains("refresh-") })
      await client.close()
    }
  }
}
