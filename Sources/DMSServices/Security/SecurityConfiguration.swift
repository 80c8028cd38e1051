import DMSDomain

/// How sign-in and sessions behave (configuration keys `security.*`,
/// docs/CONFIGURATION.md).
public struct SecurityConfiguration: Sendable {
  /// A session ends this long after sign-in, whatever happens
  /// (`security.session-lifetime-minutes`).
  public var sessionLifetime: Duration
  /// A session ends after this long without a call (`security.session-idle-minutes`).
  public var idleTimeout: Duration
  /// What passwords must be.
  public var passwordPolicy: PasswordPolicy
  /// How failed sign-ins slow down further ones.
  public var throttle: LoginThrottle.Policy
  /// The issuer authenticator apps show beside a two-step login's codes
  /// (`security.two-step-issuer`; TOOLS-4).
  public var twoStepIssuer = "DMS"

  /// The defaults: 12 hours, 1 hour idle.
  public init(
    sessionLifetime: Duration = .seconds(12 * 3600),
    idleTimeout: Duration = .seconds(3600),
    passwordPolicy: PasswordPolicy = PasswordPolicy(),
    throttle: LoginThrottle.Policy = LoginThrottle.Policy()
  ) {
    self.sessionLifetime = sessionLifetime
    self.idleTimeout = idleTimeout
    self.passwordPolicy = passwordPolicy
    self.throttle = throttle
  }
}
