import DMSClient
import DMSDomain
import DMSMessages
import DMSRPC
import DMSStorage
import DMSStubs
import Foundation
import Testing

/// The mail account over the wire (MAIL-1 … MAIL-22, PRESET-1 … 3; docs/settings/MAIL.md),
/// on the backend the run tests (`DMS_TEST_BACKEND`).
@Suite("Mail account")
struct MailTests {
  /// Calls for `company` (the `company` metadata).
  static func acting(for company: String) -> CallOptions { CallOptions(metadata: [MetadataKey.company: company]) }

  /// A complete mail-component account.
  static func account() -> Dms_Settings_V1_MailAccount {
    var account = Dms_Settings_V1_MailAccount()
    account.enabled = true
    account.accountName = "DMS"
    account.senderAddress = "dms@acme.example"
    account.displayName = "DMS – powiadomienia"
    account.server = "smtp.acme.example"
    account.port = 587
    account.login = "dms@acme.example"
    account.encryption = .starttls
    return account
  }

  @Test(
    "MAIL-7 … MAIL-18, MAIL-13 (SMTP), MAIL-25: per company, saved with revisions, checked rule by rule, the password write-only"
  )
  func account() async throws {
    try await withTestServer { server async throws in
      let client = server.client()
      let mail = Dms_Settings_V1_Mail.Client(client)
      for code in ["ACME", "BETA"] {
        var create = Dms_Settings_V1_CreateCompanyRequest()
        create.company = companyMessage(code)
        _ = try await Dms_Settings_V1_Companies.Client(client).create(create)
      }
      let acme = Self.acting(for: "acme")  // short names ignore case
      // Which company: the metadata says; without it, or naming none, the call is refused.
      let unnamed = await rpcError { _ = try await mail.getAccount() }
      #expect(unnamed?.code == .invalidArgument && unnamed?.message.contains("company") == true)
      #expect(await rpcError { _ = try await mail.getAccount(options: Self.acting(for: "NOPE")) }?.code == .notFound)
      let empty = try await mail.getAccount(options: acme)
      #expect(empty.revision == 0 && !empty.enabled && empty.serverType == "SMTP" && !empty.passwordSet)

      // Rule by rule, nothing saved.
      var update = Dms_Settings_V1_UpdateMailAccountRequest()
      update.account.enabled = true
      update.account.senderAddress = "not an address"
      update.account.port = 70000
      update.account.ssl = true
      let refused = await rpcError { _ = try await mail.updateAccount(update, options: acme) }
      #expect(refused?.code == .invalidArgument)
      #expect(
        rules(refused) == [
          "account.account_name:MAIL-8", "account.server:MAIL-14", "account.sender_address:MAIL-9",
          "account.port:MAIL-15", "account.ssl:MAIL-19",
        ])
      #expect(try await mail.getAccount(options: acme).revision == 0)

      update.account = Self.account()
      update.password = secret("hasło aplikacji")
      let saved = try await mail.updateAccount(update, options: acme)
      #expect(saved.revision == 1 && saved.passwordSet && saved.accountName == "DMS" && saved.encryption == .starttls)
      #expect(try await mail.getAccount(options: acme) == saved)
      #expect(try await mail.getAccount(options: Self.acting(for: "BETA")).revision == 0)
      // The same save again: a stale revision.
      #expect(await rpcError { _ = try await mail.updateAccount(update, options: acme) }?.code == .aborted)
      // Unchanged: the same revision.
      update.account = saved
      update.clearPassword()
      #expect(try await mail.updateAccount(update, options: acme).revision == 1)

      // MAIL-18: revealed only with a reason, and audited.
      var reveal = Dms_Settings_V1_RevealMailPasswordRequest()
      #expect(await rpcError { _ = try await mail.revealPassword(reveal, options: acme) }?.code == .invalidArgument)
      reveal.reason = "checking the app password"
      #expect(try await mail.revealPassword(reveal, options: acme).value == "hasło aplikacji")
      #expect(
        await rpcError { _ = try await mail.revealPassword(reveal, options: Self.acting(for: "BETA")) }?.code
          == .notFound)
      let audit = try await server.store.registry.auditRecords(company: nil, after: 0, limit: 100)
      #expect(
        audit.filter { $0.area == MailAccount.area }.map { "\($0.company ?? "") \($0.action) \($0.field)" } == [
          "ACME create set password", "ACME reveal password", "BETA reveal password",
        ])

      // MAIL-21: no OAuth2 for Google; MAIL-17: no password with OAuth2.
      update.account = saved
      update.account.server = "smtp.gmail.com"
      update.account.authentication = .oauth2
      update.account.oauth.clientID = "app"
      update.password = secret("again")
      #expect(
        rules(await rpcError { _ = try await mail.updateAccount(update, options: acme) }) == [
          "password:MAIL-17", "account.authentication:MAIL-21",
        ])
      // Microsoft 365 with OAuth2: the stored password goes (MAIL-17).
      update.account.server = "smtp.office365.com"
      update.clearPassword()
      let oauth = try await mail.updateAccount(update, options: acme)
      #expect(oauth.revision == 2 && !oauth.passwordSet && !oauth.signedIn)
      #expect(oauth.oauth.authority == MailAccount.OAuth.microsoftAuthority && oauth.oauth.clientID == "app")

      // MAIL-6: the database profile needs the database administrator
      // (MailDatabaseProfileTests).
      update.account = oauth
      update.account.transport = .databaseProfile
      update.account.encryption = .none
      update.account.authentication = .password
      update.account.clearOauth()
      #expect(
        rules(await rpcError { _ = try await mail.updateAccount(update, options: acme) }) == [
          "database_administrator.login:MAIL-6", "database_administrator.password:MAIL-6",
        ])
      await client.close()
    }
  }

  @Test("PRESET-1 … PRESET-3, Microsoft 365: listed, and a draft made from one for a sender address, not saved")
  func presets() async throws {
    try await withTestServer { server async throws in
      let client = server.client()
      let mail = Dms_Settings_V1_Mail.Client(client)
      var create = Dms_Settings_V1_CreateCompanyRequest()
      create.company = companyMessage("ACME")
      _ = try await Dms_Settings_V1_Companies.Client(client).create(create)
      let acme = Self.acting(for: "ACME")
      let presets = try await mail.listPresets().presets
      #expect(presets.map(\.id) == ["wp", "onet", "gmail", "microsoft365"])
      #expect(presets[0].server == "smtp.wp.pl" && presets[0].port == 587 && presets[0].login == "local_part")

      var update = Dms_Settings_V1_UpdateMailAccountRequest()
      update.account = Self.account()
      update.password = secret("old password")
      let saved = try await mail.updateAccount(update, options: acme)
      var draft = Dms_Settings_V1_DraftMailAccountRequest()
      draft.preset = "WP"
      draft.senderAddress = " jan.kowalski@wp.pl"
      let wp = try await mail.draftFromPreset(draft, options: acme)
      #expect(wp.server == "smtp.wp.pl" && wp.port == 587 && wp.encryption == .automatic && wp.login == "jan.kowalski")
      #expect(wp.revision == saved.revision && wp.accountName == "DMS" && wp.passwordSet)
      #expect(try await mail.getAccount(options: acme) == saved, "a draft is not saved")
      // Saved as drafted, with the mailbox's own password.
      update.account = wp
      update.password = secret("app password")
      #expect(try await mail.updateAccount(update, options: acme).server == "smtp.wp.pl")

      draft.preset = "yahoo"
      #expect(rules(await rpcError { _ = try await mail.draftFromPreset(draft, options: acme) }) == ["preset:PRESET-1"])
      draft.preset = "gmail"
      draft.senderAddress = "jan"
      #expect(
        rules(await rpcError { _ = try await mail.draftFromPreset(draft, options: acme) }) == ["sender_address:MAIL-9"])
      await client.close()
    }
  }

  @Test("an operator reads the account of a company of theirs only, and saves none (administrators do)")
  func access() async throws {
    try await withTestServer { server async throws in
      let admin = server.client()
      for code in ["ACME", "BETA"] {
        var create = Dms_Settings_V1_CreateCompanyRequest()
        create.company = companyMessage(code)
        _ = try await Dms_Settings_V1_Companies.Client(admin).create(create)
      }
      var jan = Dms_Settings_V1_CreateOperatorRequest()
      jan.operator.login = "jan"
      jan.operator.fullName = "Jan"
      jan.operator.companies = ["BETA"]
      jan.password = "river stone lantern"
      _ = try await Dms_Settings_V1_Operators.Client(admin).create(jan)
      let token = try await SignInTests.login(SignInTests.anonymous(server), "jan", "river stone lantern").token
      let client = SignInTests.signedIn(server, token)
      let mail = Dms_Settings_V1_Mail.Client(client)
      #expect(try await mail.getAccount(options: Self.acting(for: "BETA")).revision == 0)
      let other = await rpcError { _ = try await mail.getAccount(options: Self.acting(for: "ACME")) }
      #expect(other?.code == .notFound && other?.message == "no company with the short name ACME")
      var update = Dms_Settings_V1_UpdateMailAccountRequest()
      update.account = Self.account()
      #expect(
        await rpcError { _ = try await mail.updateAccount(update, options: Self.acting(for: "BETA")) }?.code
          == .permissionDenied)
      await client.close()
      await admin.close()
    }
  }

  @Test("MAIL-23, MAIL-24: stored tokens read as signed in; a new mailbox or leaving OAuth2 drops them")
  func tokens() async throws {
    try await withTestServer { server async throws in
      let client = server.client()
      var create = Dms_Settings_V1_CreateCompanyRequest()
      create.company = companyMessage("ACME")
      _ = try await Dms_Settings_V1_Companies.Client(client).create(create)
      let mail = Dms_Settings_V1_Mail.Client(client)
      let acme = Self.acting(for: "ACME")
      var update = Dms_Settings_V1_UpdateMailAccountRequest()
      update.account = Self.account()
      update.account.server = "smtp.office365.com"
      update.account.authentication = .oauth2
      update.account.oauth.clientID = "app"
      let saved = try await mail.updateAccount(update, options: acme)
      #expect(!saved.signedIn)
      // The sign-in (to come) stores the tokens as the account's secrets; here, directly.
      let key = try #require(try await server.store.registry.company(code: "ACME"))
      let tokens = [MailAccount.Secret.oauthAccessToken.rawValue, MailAccount.Secret.oauthRefreshToken.rawValue]
      func signIn(_ account: MailAccount, revision: Int64) async throws {
        _ = try await server.store.transaction(company: key, by: AuditActor(peer: "test")) { tx in
          try tx.write(
            account, secrets: [tokens[0]: .set("access"), tokens[1]: .set("refresh")], expectedRevision: revision)
        }
      }
      let value = try #require(try await server.store.read(MailAccount.self, of: key))
      try await signIn(value.value, revision: value.revision)
      let signedIn = try await mail.getAccount(options: acme)
      #expect(signedIn.signedIn && signedIn.revision == 2)
      // Another mailbox: the tokens were the old one's.
      update.account = signedIn
      update.account.login = "other@acme.example"
      let moved = try await mail.updateAccount(update, options: acme)
      #expect(!moved.signedIn)
      #expect(try await server.store.read(MailAccount.self, of: key)?.secretsSet.isDisjoint(with: tokens) == true)
      // Signed in again, then back to login and password: dropped too.
      try await signIn(
        try #require(try await server.store.read(MailAccount.self, of: key)).value, revision: moved.revision)
      update.account = try await mail.getAccount(options: acme)
      #expect(update.account.signedIn)
      update.account.authentication = .password
      update.account.clearOauth()
      #expect(try await !mail.updateAccount(update, options: acme).signedIn)
      #expect(try await server.store.read(MailAccount.self, of: key)?.secretsSet.isDisjoint(with: tokens) == true)
      await client.close()
    }
  }

  @Test("a saved account is a change Watch streams, for its company; a draft is none")
  func watched() async throws {
    try await withTestServer { server async throws in
      let client = server.client()
      var create = Dms_Settings_V1_CreateCompanyRequest()
      create.company = companyMessage("ACME")
      _ = try await Dms_Settings_V1_Companies.Client(client).create(create)
      var watch = Dms_Settings_V1_WatchSettingsRequest()
      watch.shortName = "ACME"
      var events = Dms_Settings_V1_SettingsEvents.Client(client).watch(watch).makeAsyncIterator()
      #expect(try await events.next()?.kind == .subscribed)
      let mail = Dms_Settings_V1_Mail.Client(client)
      var draft = Dms_Settings_V1_DraftMailAccountRequest()
      draft.preset = "onet"
      draft.senderAddress = "jan@onet.pl"
      var update = Dms_Settings_V1_UpdateMailAccountRequest()
      update.account = try await mail.draftFromPreset(draft, options: Self.acting(for: "ACME"))
      update.account.accountName = "DMS"
      update.account.enabled = true
      update.password = secret("onet password")
      _ = try await mail.updateAccount(update, options: Self.acting(for: "ACME"))
      let event = try #require(try await events.next())
      #expect(
        event.kind == .created && event.shortName == "ACME" && event.area == MailAccount.area && event.revision == 1)
      await client.close()
    }
  }

  @Test("single-company mode: no metadata needed; the first save registers the single company")
  func singleCompany() async throws {
    try await withTestServer(deployment: DeploymentConfiguration(mode: .singleCompany)) { server async throws in
      let client = server.client()
      let mail = Dms_Settings_V1_Mail.Client(client)
      #expect(try await mail.getAccount().revision == 0)
      var update = Dms_Settings_V1_UpdateMailAccountRequest()
      update.account = Self.account()
      let saved = try await mail.updateAccount(update)
      #expect(saved.revision == 1 && !saved.passwordSet)
      #expect(try await mail.getAccount() == saved)
      #expect(try await server.store.registry.companies().map(\.code) == ["MAIN"])
      await client.close()
    }
  }
}
