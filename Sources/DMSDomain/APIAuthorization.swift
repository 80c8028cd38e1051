/// The default ERP operator and database (single-company mode), rules APIAUTH-1 … 5.
/// The password (APIAUTH-3) is a secret, stored apart.
public struct APIAuthorization: Sendable, Hashable {
  /// The secret field.
  public static let passwordField = "password"

  /// APIAUTH-1: the ERP company name.
  public var companyName: String
  /// APIAUTH-2: the default ERP operator's login.
  public var operatorLogin: String

  /// The settings.
  public init(companyName: String = "", operatorLogin: String = "") {
    self.companyName = companyName
    self.operatorLogin = operatorLogin
  }

  /// Checks APIAUTH-1, -2 and -4; `password` is the new password, if one is being set.
  public func validate(password: String?) throws(ValidationFailure) {
    var v = Validator()
    v.requireText(companyName, "company_name", "APIAUTH-1")
    v.requireText(operatorLogin, "operator_login", "APIAUTH-2")
    if let password, password.isEmpty {
      v.add("password", "APIAUTH-3", "is required")
    }
    for (field, value) in [
      ("company_name", companyName), ("operator_login", operatorLogin), ("password", password ?? ""),
    ]
    where value.first?.isWhitespace == true || value.last?.isWhitespace == true {
      v.add(field, "APIAUTH-4", "must not begin or end with a space: ERP authorization would fail")
    }
    try v.check()
  }
}
