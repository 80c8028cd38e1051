import DMSDomain
import DMSMessages
import DMSRPC
import DMSStorage
import Foundation
import Logging

/// MAIL-6: who may save and delete a company's database profile, checked for real before
/// anything is written. On PostgreSQL the database server checks it: the login and
/// password must sign in as a superuser or a member of the role owning the settings
/// tables (`SettingsStore.verifyDatabaseAdministrator`). SQLite has no roles: the server's
/// configured storage administrator (`storage.administrator` with its scrypt hash,
/// `storage.administrator-password-hash`) stands in; without one, no profile can be saved.
public struct DatabaseAdministrators: Sendable {
  /// The storage administrator of an SQLite deployment.
  public struct StorageAccount: Sendable {
    public var login: String
    public var passwordHash: PasswordHasher.Hash

    public init(login: String, passwordHash: PasswordHasher.Hash) {
      self.login = login
      self.passwordHash = passwordHash
    }
  }

  let account: StorageAccount?
  let hasher: PasswordHasher
  /// How long a refused attempt waits before it is answered (guessing is slow).
  let refusalDelay: Duration

  /// `account` when the backend is SQLite (ignored on PostgreSQL, which checks its own
  /// roles); `hasher` verifies its hash on the hashing threads.
  public init(storageAccount account: StorageAccount?, hasher: PasswordHasher, refusalDelay: Duration = .seconds(1)) {
    self.account = account
    self.hasher = hasher
    self.refusalDelay = refusalDelay
  }

  /// The credentials of a request: both fields required (INVALID_ARGUMENT naming the
  /// missing one, under `field`).
  static func credentials(_ message: Dms_Settings_V1_DatabaseAdministrator?, field: String, into v: inout Validator)
    -> (login: String, password: String)
  {
    let login = message?.login.trimmingCharacters(in: .whitespaces) ?? ""
    let password = message?.password ?? ""
    v.require(
      !login.isEmpty, "\(field).login", "MAIL-6",
      "is required: the database profile is saved and deleted with the database administrator's login and password")
    v.require(!password.isEmpty, "\(field).password", "MAIL-6", "is required with the login")
    v.require(login.count <= 256 && password.count <= 1024, "\(field)", "MAIL-6", "is too long")
    return (login, password)
  }

  /// Checks `login` and `password`; returns the login to record, or throws
  /// PERMISSION_DENIED (refused), FAILED_PRECONDITION (no administrator configured) or
  /// UNAVAILABLE (the database cannot be reached). Every answer is logged, never the
  /// password.
  func verify(
    login: String, password: String, company: String, in store: any SettingsStore, context: ServerContext,
    logger: Logger
  ) async throws {
    let verdict: DatabaseAdministratorVerdict
    if let checked = try await store.verifyDatabaseAdministrator(login: login, password: password) {
      verdict = checked
    } else if let account {
      // The hash is always checked, so a wrong login takes as long as a wrong password.
      let matches = try await hasher.verify(password, against: account.passwordHash)
      verdict =
        matches && login == account.login
        ? .administrator : .refused("the storage administrator's login or password is wrong")
    } else {
      throw RPCError(
        code: .failedPrecondition,
        message:
          "no database administrator is configured for this server, so the database profile cannot be saved (MAIL-6): set storage.administrator and storage.administrator-password-hash (dms-settingsd hash-password makes the hash), or use the mail component"
      )
    }
    let metadata: Logger.Metadata = [
      "audit": "database-administrator", "company": "\(company)", "login": "\(login)",
      "operator": "\(context.auditActor.login)", "peer": "\(context.peer)",
      MetadataKey.requestID: "\(context.requestID)",
    ]
    switch verdict {
    case .administrator:
      logger.notice("mail: the database administrator signed in for the database profile (MAIL-6)", metadata: metadata)
    case .refused(let why):
      logger.warning("mail: database administrator refused (MAIL-6): \(why)", metadata: metadata)
      try? await Task.sleep(for: refusalDelay)
      throw RPCError(code: .permissionDenied, message: "\(why) (MAIL-6); nothing was saved")
    }
  }
}
