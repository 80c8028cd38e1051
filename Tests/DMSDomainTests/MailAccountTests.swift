import DMSDomain
import Testing

/// A complete mail-component account with login and password.
private let complete = MailAccount(
  enabled: true, accountName: "DMS", senderAddress: "dms@example.com", displayName: "DMS – powiadomienia",
  replyTo: "biuro@example.com", description: "notifications", server: "smtp.example.com", port: 587,
  login: "dms@example.com", encryption: .startTLS)

/// The `field rule` pairs `account` breaks, in order; empty when it passes.
private func broken(
  _ account: MailAccount, password: SecretChange = .keep, passwordSet: Bool = true
) -> [String] {
  do {
    _ = try account.validated(password: password, passwordSet: passwordSet)
    return []
  } catch {
    return error.violations.map { "\($0.field) \($0.rule)" }
  }
}

/// `complete` changed by `change`.
private func account(_ change: (inout MailAccount) -> Void) -> MailAccount {
  var account = complete
  change(&account)
  return account
}

@Suite("Mail account rules")
struct MailAccountTests {
  @Test("a complete account passes, its texts trimmed; one that is off may be saved unfinished")
  func complete() throws {
    #expect(broken(DMSDomainTests.complete).isEmpty)
    let spaced = account {
      $0.server = " smtp.example.com\n"
      $0.senderAddress = "\tdms@example.com "
    }
    let validated = try spaced.validated(password: .keep, passwordSet: true)
    #expect(validated.server == "smtp.example.com" && validated.senderAddress == "dms@example.com")
    #expect(broken(MailAccount(), passwordSet: false).isEmpty)
    #expect(broken(MailAccount(accountName: "draft", server: "smtp.example.com"), passwordSet: false).isEmpty)
  }

  @Test("MAIL-7: an account that sends needs its name, sender, server and port")
  func required() {
    #expect(
      broken(MailAccount(enabled: true), passwordSet: false) == [
        "account_name MAIL-8", "sender_address MAIL-9", "server MAIL-14", "port MAIL-15",
      ])
  }

  @Test(
    "MAIL-9, MAIL-11, MAIL-14, MAIL-15, MAIL-10: addresses, server, port and sender name have their forms",
    arguments: [
      (account { $0.senderAddress = "dms" }, ["sender_address MAIL-9"]),
      (account { $0.senderAddress = "dms@@example.com" }, ["sender_address MAIL-9"]),
      (account { $0.replyTo = "office at example.com" }, ["reply_to MAIL-11"]),
      (account { $0.server = "smtp://smtp.example.com" }, ["server MAIL-14"]),
      (account { $0.server = "smtp.example.com:587" }, ["server MAIL-14"]),
      (account { $0.server = "smtp example.com" }, ["server MAIL-14"]),
      (account { $0.port = 65536 }, ["port MAIL-15"]),
      (account { $0.port = -1 }, ["port MAIL-15"]),
      (account { $0.displayName = "DMS\nBcc: someone@example.com" }, ["display_name MAIL-10"]),
      (account { $0.server = "10.0.0.25" }, []),
      (account { $0.server = "fd00::25" }, []),
      (account { $0.port = 65535 }, []),
      (account { $0.replyTo = "" }, []),
    ])
  func forms(account: MailAccount, expected: [String]) {
    #expect(broken(account) == expected)
  }

  @Test(
    "MAIL-19, MAIL-20, MAIL-4: SSL is the database profile's, encryption and OAuth2 the mail component's",
    arguments: [
      (account { $0.ssl = true }, ["ssl MAIL-19"]),
      (account { $0.transport = .databaseProfile }, ["encryption MAIL-20"]),
      (
        account {
          $0.transport = .databaseProfile
          $0.encryption = .none
          $0.ssl = true
        }, []
      ),
      (
        account {
          $0.transport = .databaseProfile
          $0.encryption = .none
          $0.authentication = .oauth2
          $0.oauth = MailAccount.OAuth(clientID: "app")
        }, ["authentication MAIL-4"]
      ),
      // An in-house CA for the profile's SSL, not without SSL.
      (
        account {
          $0.transport = .databaseProfile
          $0.encryption = .none
          $0.ssl = true
          $0.trustedCertificates = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
        }, []
      ),
      (
        account {
          $0.transport = .databaseProfile
          $0.encryption = .none
          $0.trustedCertificates = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
        }, ["trusted_certificates MAIL-19"]
      ),
    ])
  func transports(account: MailAccount, expected: [String]) {
    #expect(broken(account) == expected)
  }

  @Test("MAIL-12: the description is free text, at most 1,024 characters")
  func description() {
    #expect(broken(account { $0.description = "Konto powiadomień\nwielowierszowe" }).isEmpty)
    #expect(broken(account { $0.description = String(repeating: "d", count: 1024) }).isEmpty)
    #expect(broken(account { $0.description = String(repeating: "d", count: 1025) }) == ["description "])
  }

  @Test("MAIL-16, MAIL-17: a password needs a login; an empty one is refused; none is a relay")
  func password() {
    #expect(broken(account { $0.login = "" }, password: .set("secret")) == ["login MAIL-16"])
    #expect(broken(account { $0.login = "" }, passwordSet: true) == ["login MAIL-16"])
    #expect(broken(account { $0.login = "" }, password: .clear).isEmpty)
    #expect(broken(account { $0.login = "" }, passwordSet: false).isEmpty)
    #expect(broken(DMSDomainTests.complete, password: .set("")) == ["password MAIL-17"])
    #expect(
      broken(DMSDomainTests.complete, password: .set(String(repeating: "x", count: 4097))) == ["password MAIL-17"])
  }

  @Test("MAIL-21, MAIL-22: OAuth2 needs its login and application, has no password, and is not for Google")
  func oauth() {
    let microsoft = account {
      $0.server = "smtp.office365.com"
      $0.authentication = .oauth2
      $0.oauth = MailAccount.OAuth(clientID: "00000000-aaaa-bbbb-cccc-000000000000")
    }
    #expect(broken(microsoft, passwordSet: false).isEmpty)
    #expect(broken(microsoft, password: .set("secret")) == ["password MAIL-17"])
    #expect(broken(account { $0.authentication = .oauth2 }) == ["oauth MAIL-22"])
    #expect(
      broken(
        account {
          $0.authentication = .oauth2
          $0.login = ""
          $0.oauth = MailAccount.OAuth(authority: "http://login.example.com", clientID: " ", scopes: "")
        }) == ["login MAIL-16", "oauth.authority MAIL-22", "oauth.client_id MAIL-22", "oauth.scopes MAIL-22"])
    for server in ["smtp.gmail.com", "SMTP.GoogleMail.com", "aspmx.l.google.com"] {
      var google = microsoft
      google.server = server
      #expect(broken(google) == ["authentication MAIL-21"], "\(server)")
    }
    #expect(broken(account { $0.oauth = MailAccount.OAuth(clientID: "app") }) == ["oauth MAIL-22"])
  }

  @Test("PRESET-1, PRESET-2, PRESET-3 and Microsoft 365: a draft from the sender address, then completed and saved")
  func presets() throws {
    #expect(MailPreset.all.map(\.id) == ["wp", "onet", "gmail", "microsoft365"])
    #expect(MailPreset.named("GMAIL") == .gmail && MailPreset.named("yahoo") == nil)
    var start = MailAccount(enabled: true, accountName: "DMS", encryption: .none)
    start.ssl = true
    start.transport = .databaseProfile

    let wp = MailPreset.wp.draft(from: start, address: " jan.kowalski@wp.pl ")
    #expect(wp.transport == .component && !wp.ssl && wp.accountName == "DMS")
    #expect((wp.server, wp.port, wp.encryption, wp.login) == ("smtp.wp.pl", 587, .automatic, "jan.kowalski"))
    #expect(broken(wp, password: .set("secret")).isEmpty)

    let onet = MailPreset.onet.draft(from: start, address: "jan@onet.pl")
    #expect((onet.server, onet.port, onet.login) == ("smtp.poczta.onet.pl", 465, "jan@onet.pl"))

    let gmail = MailPreset.gmail.draft(from: start, address: "jan@gmail.com")
    #expect(
      (gmail.server, gmail.port, gmail.authentication, gmail.login) == (
        "smtp.gmail.com", 465, .password, "jan@gmail.com"
      ))
    #expect(broken(gmail, password: .set("abcd efgh ijkl mnop")).isEmpty)
    var gmailOAuth = gmail
    gmailOAuth.authentication = .oauth2
    gmailOAuth.oauth = MailAccount.OAuth(clientID: "app")
    #expect(broken(gmailOAuth, passwordSet: false) == ["authentication MAIL-21"])

    let microsoft = MailPreset.microsoft365.draft(from: start, address: "jan@firma.onmicrosoft.com")
    #expect((microsoft.server, microsoft.port, microsoft.encryption) == ("smtp.office365.com", 587, .startTLS))
    #expect(microsoft.oauth == MailAccount.OAuth() && microsoft.login == "jan@firma.onmicrosoft.com")
    // Still needs the application's client id.
    #expect(broken(microsoft, passwordSet: false) == ["oauth.client_id MAIL-22"])
  }
}
