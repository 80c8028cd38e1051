import DMSDomain
import Foundation

/// The operators, their passwords and their sessions: the security room of the store
/// (docs/SECURITY.md). Cross-company, like the registry: an operator may belong to
/// several companies.
///
/// Who is signed in is answered from memory (`principal(forTokenHash:)`): the store
/// keeps every live session and every operator's authorization in a cache that
/// follows the commits, so checking a call's session reads no database and runs no KDF.
public protocol OperatorDirectory: Sendable {
  /// Every operator, by login.
  func operators() async throws -> [StoredOperator]

  /// The operator whose login is `login`, ignoring case.
  func `operator`(login: String) async throws -> StoredOperator?

  /// The stored password hash (PHC string) of the operator with `login` (ignoring
  /// case), with the operator; nil when there is no such operator.
  func credentials(login: String) async throws -> (StoredOperator, passwordHash: String?)?

  /// The session whose token hashes to `tokenHash` and its operator as they are now,
  /// from memory, marked as used now; nil when there is none, it was ended, it expired
  /// (`expiresAt` before `now`) or it was idle longer than `idleTimeout`.
  func principal(forTokenHash tokenHash: SessionTokenHash, at now: Date, idleTimeout: Duration) -> SessionPrincipal?

  /// The sessions idle longer than `idleTimeout` (in memory: idleness is not stored;
  /// after a restart it counts from the start).
  func idleSessions(idleTimeout: Duration) -> [SessionTokenHash]

  /// Runs `body` in one transaction over the operators (and, through `registry`,
  /// anything else); its audit rows commit with it. Same rules as
  /// `SettingsStore.transaction`.
  func transaction<Result: Sendable>(
    by actor: AuditActor,
    _ body: @escaping @Sendable (any OperatorTransaction) throws -> Result
  ) async throws -> Result
}

/// The security room's part of a transaction.
public protocol OperatorTransaction {
  /// How many operators exist.
  func operatorCount() throws -> Int

  /// The operator with `login`, ignoring case.
  func `operator`(login: String) throws -> StoredOperator?

  /// How many operators are administrators and not disabled.
  func enabledAdministratorCount() throws -> Int

  /// Adds an operator. Its companies must be registered (NOT_FOUND names the one that
  /// is not).
  ///
  /// - Throws: `StoreError.alreadyExists` (field `login`) when the login is taken,
  ///   ignoring case.
  func createOperator(_ value: Operator, passwordHash: String?, mustChangePassword: Bool) throws -> StoredOperator

  /// Replaces the operator `id`'s definition if it is at `expectedRevision`. A change
  /// that disables the operator ends its sessions. One that changes nothing writes
  /// nothing.
  ///
  /// - Throws: `StoreError.staleRevision`, `.notFound`, `.alreadyExists` (a new login
  ///   that is taken).
  func updateOperator(id: Int64, _ value: Operator, expectedRevision: Int64) throws -> StoredOperator

  /// Sets the operator's password hash and ends its sessions (all but `keeping`, the
  /// caller's own when it changes its own password, which goes on with full scope).
  /// Advances the revision.
  func setPassword(
    operatorID: Int64, passwordHash: String, mustChangePassword: Bool, keeping: SessionTokenHash?
  ) throws -> StoredOperator

  /// Replaces the stored hash without ending sessions or advancing the revision (a
  /// hash re-made with stronger parameters at login); audited.
  func upgradePasswordHash(operatorID: Int64, passwordHash: String) throws

  /// Removes the operator and ends its sessions.
  func deleteOperator(id: Int64) throws -> StoredOperator

  /// Opens a session.
  func createSession(_ session: SessionRecord) throws

  /// Ends one session; false when there was none.
  @discardableResult
  func endSession(tokenHash: SessionTokenHash) throws -> Bool

  /// Removes sessions whose absolute expiry has passed (not audited: nobody ended them).
  func removeExpiredSessions(before: Date) throws -> Int

  /// Removes the sessions `hashes` (idle ones; not audited).
  func removeSessions(_ hashes: [SessionTokenHash]) throws

  /// The same transaction, as the registry's.
  var registry: any RegistryTransaction { get }
}

/// An operator as stored.
public struct StoredOperator: Sendable, Hashable {
  /// The storage's id: never reused.
  public var id: Int64
  /// The definition (companies by registered short name, in code order).
  public var value: Operator
  /// Increases by one with every change (a password change included).
  public var revision: Int64
  /// Whether a password is stored (domain operators may have none).
  public var passwordSet: Bool
  /// The next sign-in may only change the password (the first start's `admin`).
  public var mustChangePassword: Bool
  /// When it was created and last changed.
  public var createdAt: Date
  public var updatedAt: Date

  public init(
    id: Int64, value: Operator, revision: Int64, passwordSet: Bool, mustChangePassword: Bool, createdAt: Date,
    updatedAt: Date
  ) {
    self.id = id
    self.value = value
    self.revision = revision
    self.passwordSet = passwordSet
    self.mustChangePassword = mustChangePassword
    self.createdAt = createdAt
    self.updatedAt = updatedAt
  }
}

/// The SHA-256 of a session token: what the store keeps instead of the token.
public struct SessionTokenHash: Sendable, Hashable {
  /// The 32 bytes.
  public let bytes: Data

  public init(bytes: Data) { self.bytes = bytes }
}

/// A session as stored.
public struct SessionRecord: Sendable, Hashable {
  /// What a session may do.
  public enum Scope: String, Sendable, Hashable {
    /// Everything the operator may do.
    case full
    /// Only change the password (the first sign-in with a generated one).
    case changePassword = "change-password"
  }

  public var tokenHash: SessionTokenHash
  public var operatorID: Int64
  public var scope: Scope
  public var createdAt: Date
  /// The absolute expiry.
  public var expiresAt: Date
  /// The address it was opened from.
  public var peer: String

  public init(
    tokenHash: SessionTokenHash, operatorID: Int64, scope: Scope, createdAt: Date, expiresAt: Date, peer: String
  ) {
    self.tokenHash = tokenHash
    self.operatorID = operatorID
    self.scope = scope
    self.createdAt = createdAt
    self.expiresAt = expiresAt
    self.peer = peer
  }
}

/// Who a session belongs to, as the cache knows it now.
public struct SessionPrincipal: Sendable {
  public var session: SessionRecord
  public var `operator`: StoredOperator
  /// The operator's companies as `Company.codeKey` (upper case).
  public var companyKeys: Set<String>
}
