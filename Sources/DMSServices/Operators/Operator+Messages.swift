import DMSDomain
import DMSMessages
import DMSStorage

extension Operator {
  /// The domain value of a message (the output-only fields ignored).
  init(message: Dms_Settings_V1_Operator) {
    self.init(
      login: message.login, fullName: message.fullName, email: message.email, administrator: message.administrator,
      disabled: message.disabled, companies: message.companies, domainLogin: message.domainLogin,
      domainAccount: message.domainAccount, cooperatingSystem: message.cooperatingSystem,
      repositoryPermission: message.repositoryPermission)
  }

  /// The message of a stored operator.
  static func message(_ stored: StoredOperator) -> Dms_Settings_V1_Operator {
    var message = Dms_Settings_V1_Operator()
    let value = stored.value
    message.login = value.login
    message.fullName = value.fullName
    message.email = value.email
    message.administrator = value.administrator
    message.disabled = value.disabled
    message.companies = value.companies
    message.domainLogin = value.domainLogin
    message.domainAccount = value.domainAccount
    message.cooperatingSystem = value.cooperatingSystem
    message.repositoryPermission = value.repositoryPermission
    message.passwordSet = stored.passwordSet
    message.mustChangePassword = stored.mustChangePassword
    message.twoStepEnabled = stored.twoStepEnabled
    message.revision = stored.revision
    return message
  }
}
