import PostgresNIO

extension PostgresEngine {
  /// MAIL-6: `PostgresSettingsStore.verifyDatabaseAdministrator`, on the store's threads.
  func verifyAdministrator(login: String, password: String) async throws -> DatabaseAdministratorVerdict {
    var signIn = options.endpoint
    signIn.user = login
    signIn.password = password
    let endpoint = signIn
    do {
      return try await pool.runIfActive {
        let session: PostgresSession
        do {
          session = try self.connect(endpoint)
        } catch let error as PSQLError where error.code == .server {
          let state = error.serverInfo?[.sqlState] ?? ""
          // invalid_password, invalid_authorization_specification (no such role, or
          // pg_hba.conf refuses it): the same answer, so a login cannot be probed.
          guard state == "28P01" || state == "28000" else { throw error }
          return .refused("the database refused the sign-in of \(login): wrong login or password")
        }
        defer { session.close() }
        let administrator =
          try session.value(
            Bool.self,
            """
            SELECT r.rolsuper OR pg_has_role(r.oid, c.relowner, 'MEMBER')
            FROM pg_roles r, pg_class c
            WHERE r.rolname = current_user AND c.oid = 'public.dms_migration'::regclass
            """) ?? false
        return administrator
          ? .administrator
          : .refused(
            "the role \(login) is not the database's administrator: neither a superuser nor a member of the role that owns the settings tables"
          )
      }
    } catch {
      throw map(error)
    }
  }
}
