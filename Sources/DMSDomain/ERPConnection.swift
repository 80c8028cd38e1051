/// How the server reaches an ERP database, rule ERP-4. The password is a secret and
/// is kept apart from this value.
public struct ERPConnection: Sendable, Hashable {
  /// How the connection authenticates.
  public enum Authentication: String, Sendable, CaseIterable {
    /// A database login and password.
    case sql = "SQL"
    /// The server's own (Windows/Kerberos) identity: no login, no password.
    case integrated = "INTEGRATED"
  }

  /// The database server, such as `sql01\ERP` or `10.0.0.5,1433`.
  public var server: String
  /// The database's name.
  public var database: String
  /// SQL login or integrated security.
  public var authentication: Authentication
  /// The SQL login (with `.sql` only).
  public var user: String

  /// A connection.
  public init(server: String = "", database: String = "", authentication: Authentication = .sql, user: String = "") {
    self.server = server
    self.database = database
    self.authentication = authentication
    self.user = user
  }

  /// Checks ERP-4 on this connection, reported under `field`.
  func validate(_ field: String, into validator: inout Validator) {
    validator.requireText(server, "\(field).server", "ERP-4")
    validator.requireText(database, "\(field).database", "ERP-4")
    switch authentication {
    case .sql:
      validator.requireText(user, "\(field).user", "ERP-4")
    case .integrated:
      validator.require(user.isEmpty, "\(field).user", "ERP-4", "must be empty with integrated authentication")
    }
  }
}
