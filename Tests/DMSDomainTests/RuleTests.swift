import DMSDomain
import Testing

@Suite("Domain rules")
struct RuleTests {
  @Test(
    "INT-1 / ERP-13: NIP checksum",
    arguments: [
      ("8567346215", true), ("8567346216", false), ("PL8567346215", true), ("pl 856-734-62-15", true),
      ("856 734 62 15", true), ("856734621", false), ("85673462155", false), ("85673462a5", false), ("", false),
      // Weighted sum 0+..: digits 0000000000 → remainder 0 equals digit 0: valid by the rule.
      ("0000000000", true),
      // Remainder 10 never matches: 1000000000 → 6 % 11 = 6 ≠ 0; 2000000006 → 12 % 11 = 1 ≠ 6.
      ("1000000006", true), ("0000000010", false),
    ])
  func nip(text: String, valid: Bool) {
    #expect(NIP.isValid(text) == valid)
  }

  @Test("INT-1: a remainder of 10 never matches")
  func nipRemainderTen() {
    // 0,0,0,0,0,0,0,0,3 weighted → 3*7 = 21 → 21 % 11 = 10: no last digit can match.
    for last in 0...9 { #expect(!NIP.isValid("000000003\(last)")) }
  }

  @Test(
    "INT-5 / ERP-15: e-Delivery address form",
    arguments: [
      ("AE:PL-12345-67890-ABCDE-12", true), ("AE:PL-12345-67890-abcde-12", false), ("AE:PL-1234-67890-ABCDE-12", false),
      ("AE:DE-12345-67890-ABCDE-12", false), ("AE:PL-12345-67890-ABCDE-1X", false), ("", false),
    ])
  func eDelivery(text: String, valid: Bool) {
    #expect(EDeliveryAddress.isValid(text) == valid)
  }

  static func validCompany() -> Company {
    Company(
      code: "ACME", mode: .erpXL, name: "Acme",
      connection: ERPConnection(server: "sql01", database: "XL", authentication: .sql, user: "dms"))
  }

  static func rules(of company: Company, centers: [String] = []) -> [String] {
    do {
      _ = try company.validated(centers: centers)
      return []
    } catch {
      return error.violations.map { "\($0.field):\($0.rule)" }
    }
  }

  @Test("a complete company passes, with its NIP normalized")
  func validCompanyPasses() throws {
    var company = Self.validCompany()
    company.nip = "PL 856-734-62-15"
    #expect(try company.validated(centers: []).nip == "8567346215")
  }

  /// A change that breaks one rule, and the field:rule it must be reported as.
  static func broken(_ name: String) -> Company {
    var c = validCompany()
    switch name {
    case "blank name": c.name = "  "
    case "no short name": c.code = ""
    case "long short name": c.code = "TOOLONG"
    case "short name with a space": c.code = "A B"
    case "no server": c.connection.server = ""
    case "no database": c.connection.database = ""
    case "no SQL user": c.connection.user = ""
    case "integrated with a user": c.connection.authentication = .integrated
    case "Altum connection without Altum":
      c.altumConfiguration = ERPConnection(server: "s", database: "d", user: "u")
    case "bad NIP": c.nip = "8567346216"
    case "bad e-Delivery address": c.eDeliveryAddress = "AE:PL-1"
    case "domain without use_domain": c.domainName = "corp.local"
    case "group without use_domain": c.domainGroup = "All"
    case "use_domain without domain":
      c.useDomain = true
      c.domainGroup = "All"
    case "use_domain without group":
      c.useDomain = true
      c.domainName = "corp.local"
    case "center with none published": c.defaultCenter = "North"
    default: Issue.record("unknown case \(name)")
    }
    return c
  }

  @Test(
    "ERP-2 … ERP-15: each broken rule is reported under its field and rule",
    arguments: [
      ("blank name", "name:ERP-2"), ("no short name", "short_name:ERP-3"), ("long short name", "short_name:ERP-3"),
      ("short name with a space", "short_name:ERP-3"), ("no server", "connection.server:ERP-4"),
      ("no database", "connection.database:ERP-4"), ("no SQL user", "connection.user:ERP-4"),
      ("integrated with a user", "connection.user:ERP-4"),
      ("Altum connection without Altum", "altum_configuration:ERP-4"), ("bad NIP", "nip:ERP-13"),
      ("bad e-Delivery address", "edelivery_address:ERP-15"), ("domain without use_domain", "domain_name:ERP-11"),
      ("group without use_domain", "domain_group:ERP-12"), ("use_domain without domain", "domain_name:ERP-11"),
      ("use_domain without group", "domain_group:ERP-12"), ("center with none published", "default_center:ERP-7"),
    ])
  func companyRules(change: String, expected: String) {
    #expect(Self.rules(of: Self.broken(change)) == [expected])
  }

  @Test("ERP-7: the default center must be one of the published centers")
  func defaultCenter() {
    var company = Self.validCompany()
    company.defaultCenter = "North"
    #expect(Self.rules(of: company, centers: ["North", "South"]).isEmpty)
    #expect(Self.rules(of: company, centers: ["South"]) == ["default_center:ERP-7"])
  }

  @Test("ERP-10 … 12: with use_domain, domain and group are set")
  func domain() {
    var company = Self.validCompany()
    company.useDomain = true
    company.domainName = "corp.local"
    company.domainGroup = "All"
    #expect(Self.rules(of: company).isEmpty)
  }

  @Test("ERP-4: the Altum configuration connection is accepted in Altum mode")
  func altum() {
    var company = Self.validCompany()
    company.mode = .altum
    company.altumConfiguration = ERPConnection(server: "s", database: "cfg", authentication: .integrated)
    #expect(Self.rules(of: company).isEmpty)
  }

  @Test("ERP-S1, ERP-S2: shared settings choose from the server's lists")
  func shared() {
    let choices = SharedSettings.Choices.defaults
    #expect(throws: Never.self) {
      try SharedSettings(apiVersion: 20241, documentControlMode: "Standard").validate(choices: choices)
    }
    #expect {
      try SharedSettings(apiVersion: 20250, documentControlMode: "Nope").validate(choices: choices)
    } throws: { error in
      (error as? ValidationFailure)?.violations.map(\.rule) == ["ERP-S1", "ERP-S2"]
    }
    #expect(choices.initialSettings == SharedSettings(apiVersion: 20241, documentControlMode: "Standard"))
  }

  @Test(
    "APIAUTH-4: a leading or trailing space in any field is refused, naming the field",
    arguments: [
      (APIAuthorization(companyName: " Firma", operatorLogin: "op"), "x", "company_name"),
      (APIAuthorization(companyName: "Firma", operatorLogin: "op "), "x", "operator_login"),
      (APIAuthorization(companyName: "Firma", operatorLogin: "op"), " x", "password"),
      (APIAuthorization(companyName: "Firma", operatorLogin: "op"), "x\t", "password"),
    ])
  func apiAuthSpaces(value: APIAuthorization, password: String, field: String) {
    #expect {
      try value.validate(password: password)
    } throws: { error in
      (error as? ValidationFailure)?.violations == [
        RuleViolation(
          field: field, rule: "APIAUTH-4", message: "must not begin or end with a space: ERP authorization would fail")
      ]
    }
  }

  @Test("APIAUTH-1, APIAUTH-2: company name and login are required; inner spaces are fine")
  func apiAuthRequired() throws {
    #expect {
      try APIAuthorization(companyName: "", operatorLogin: "").validate(password: nil)
    } throws: { error in
      (error as? ValidationFailure)?.violations.map(\.rule) == ["APIAUTH-1", "APIAUTH-2"]
    }
    try APIAuthorization(companyName: "Firma Sp. z o.o.", operatorLogin: "jan kowalski").validate(password: "a b")
  }
}

@Suite("Secrets in logs")
struct SecretChangeRedactionTests {
  @Test("SecretChange.set never prints its value: description, debug description, dump, interpolation")
  func redacted() {
    let change = SecretChange.set("Sup3r-Secret")
    var dumped = ""
    dump(change, to: &dumped)
    let changes: [String: SecretChange] = ["password": change]
    for text in [
      "\(change)", String(describing: change), String(reflecting: change), dumped, "\(changes)",
      String(reflecting: changes),
    ] {
      #expect(!text.contains("Sup3r-Secret"), "\(text)")
    }
    #expect("\(change)" == "set(<redacted>)")
    #expect("\(SecretChange.clear)" == "clear" && "\(SecretChange.keep)" == "keep")
  }
}
