/// A person who signs in to the DMS: an operator (the original's employee card, in the
/// parts the settings reach). docs/SECURITY.md.
///
/// The login is unique ignoring case. Administrators may call every method; other
/// operators read settings, and in multi-company mode only those of the companies they
/// belong to. The password, the two-step secret and the sessions are kept apart from
/// this value (storage), never in it.
public struct Operator: Sendable, Hashable {
  /// The sign-in name: 1 to 128 characters, no spaces or control characters, unique
  /// ignoring case.
  public var login: String
  /// The name shown to people.
  public var fullName: String
  /// Where notifications go; empty when none.
  public var email: String
  /// May call every method, change every setting and manage operators.
  public var administrator: Bool
  /// Signed-in calls are refused and sessions ended while set.
  public var disabled: Bool
  /// The short names of the companies the operator belongs to (multi-company mode),
  /// as registered (ERP-3); unused in single-company mode.
  public var companies: [String]
  /// DOM-4: signs in through the domain (LDAP/AD) rather than with a password here.
  public var domainLogin: Bool
  /// DOM-4: the domain account chosen ("DOMAIN\\user" or a user principal name).
  public var domainAccount: String
  /// APISYS-4: the cooperating system of the employee card's API tab; empty or one of
  /// the API systems.
  public var cooperatingSystem: String
  /// STORE-2: may be the default repository operator.
  public var repositoryPermission: Bool

  /// An operator.
  public init(
    login: String,
    fullName: String = "",
    email: String = "",
    administrator: Bool = false,
    disabled: Bool = false,
    companies: [String] = [],
    domainLogin: Bool = false,
    domainAccount: String = "",
    cooperatingSystem: String = "",
    repositoryPermission: Bool = false
  ) {
    self.login = login
    self.fullName = fullName
    self.email = email
    self.administrator = administrator
    self.disabled = disabled
    self.companies = companies
    self.domainLogin = domainLogin
    self.domainAccount = domainAccount
    self.cooperatingSystem = cooperatingSystem
    self.repositoryPermission = repositoryPermission
  }

  /// The longest login.
  public static let maxLoginLength = 128

  /// The key logins are unique under: lower case.
  public static func loginKey(_ login: String) -> String { login.lowercased() }

  /// The value with its texts trimmed and its companies without repeats (ignoring
  /// case), or every rule it breaks, on fields named as in the RPC message.
  public func validated() throws(ValidationFailure) -> Operator {
    var v = Validator()
    var value = self
    value.login = String(login.trimmingWhitespace())
    value.fullName = String(fullName.trimmingWhitespace())
    value.email = String(email.trimmingWhitespace())
    value.domainAccount = String(domainAccount.trimmingWhitespace())
    value.cooperatingSystem = String(cooperatingSystem.trimmingWhitespace())
    if value.login.isEmpty {
      v.add("login", "operator login", "is required")
    } else {
      v.require(
        value.login.count <= Self.maxLoginLength, "login", "operator login",
        "must be at most \(Self.maxLoginLength) characters")
      v.require(
        !value.login.unicodeScalars.contains(where: {
          $0.properties.isWhitespace || $0.properties.generalCategory == .control
            || $0.properties.generalCategory == .format
        }),
        "login", "operator login", "must not contain spaces or control characters")
    }
    v.limit(value.fullName, "full_name")
    if !value.email.isEmpty {
      v.require(EmailAddress.isValid(value.email), "email", "e-mail address", "is not an e-mail address (name@domain)")
    }
    if value.domainLogin {
      v.require(!value.domainAccount.isEmpty, "domain_account", "DOM-4", "is required with domain_login")
    }
    v.limit(value.domainAccount, "domain_account")
    v.limit(value.cooperatingSystem, "cooperating_system")
    var seen = Set<String>()
    value.companies = []
    for (index, code) in companies.enumerated() {
      let trimmed = String(code.trimmingWhitespace())
      if trimmed.isEmpty {
        v.add("companies[\(index)]", "ERP-3", "is empty")
      } else if seen.insert(Company.codeKey(trimmed)).inserted {
        value.companies.append(trimmed)
      }
    }
    try v.check()
    return value
  }
}
