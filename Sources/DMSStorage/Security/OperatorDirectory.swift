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

  /// Every API system, by name.
  func apiSystems() async throws -> [StoredApiSystem]

  /// The security policy (TOOLS-4's switch).
  func securityPolicy() async throws -> StoredSecurityPolicy

  /// The API system with `identifier` and the SHA-256 of its secret (nil: none set);
  /// nil when there is no such system.
  func systemCredentials(identifier: String) async throws -> (StoredApiSystem, secretHash: Data?)?

  /// The session whose token hashes to `tokenHash` and its holder as they are now,
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
  /// caller's own when it changes its own password, which goes on with `keptScope`).
  /// Advances the revision.
  func setPassword(
    operatorID: Int64, passwordHash: String, mustChangePassword: Bool, keeping: SessionTokenHash?,
    keptScope: SessionRecord.Scope
  ) throws -> StoredOperator

  /// Replaces the stored hash without ending sessions or advancing the revision (a
  /// hash re-made with stronger parameters at login); audited.
  func upgradePasswordHash(operatorID: Int64, passwordHash: String) throws

  /// Removes the operator and ends its sessions.
  func deleteOperator(id: Int64) throws -> StoredOperator

  /// The API system with `identifier`.
  func apiSystem(identifier: String) throws -> StoredApiSystem?

  /// Adds an API system with its secret's SHA-256.
  ///
  /// - Throws: `StoreError.alreadyExists` (field `name`) when the name or
  ///   the identifier is taken, ignoring case.
  func addApiSystem(_ system: ApiSystem, secretHash: Data) throws -> StoredApiSystem

  /// Replaces the system's secret (its SHA-256) and ends its sessions.
  func setApiSystemSecret(id: Int64, secretHash: Data) throws -> StoredApiSystem

  /// Removes the system and ends its sessions.
  ///
  /// - Throws: `StoreError.inUse` when it is an operator's cooperating system (APISYS-4).
  func deleteApiSystem(id: Int64) throws -> StoredApiSystem

  /// The operator's two-step login (its secret opened), nil when it has none, not even
  /// pending.
  func twoStep(operatorID: Int64) throws -> TwoStepRecord?

  /// Stores a new pending TOTP secret for the operator (replacing a pending one).
  /// Refused (`StoreError.inUse`) when two-step login is already on.
  func beginTwoStep(operatorID: Int64, secret: String) throws

  /// Turns the pending two-step login on, with the step of the code that confirmed it.
  /// `session`, when given, goes on with `scope` (an enrolment-only session becomes
  /// full).
  func confirmTwoStep(operatorID: Int64, step: Int64, session: SessionTokenHash?, scope: SessionRecord.Scope) throws
    -> StoredOperator

  /// Records the step of an accepted code (no code is accepted twice).
  func useTwoStep(operatorID: Int64, step: Int64) throws

  /// Turns two-step login off and forgets the secret; `by` says how (for the audit).
  func clearTwoStep(operatorID: Int64, detail: String) throws -> StoredOperator

  /// The security policy.
  func securityPolicy() throws -> StoredSecurityPolicy

  /// Replaces the policy if it is at `expectedRevision` (a change that changes nothing
  /// writes nothing).
  func setSecurityPolicy(_ policy: SecurityPolicy, expectedRevision: Int64) throws -> StoredSecurityPolicy

  /// Opens a session (an operator's or a system's).
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
  /// Two-step login is on (TOOLS-4): sign-ins need a one-time code.
  public var twoStepEnabled: Bool
  /// When it was created and last changed.
  public var createdAt: Date
  public var updatedAt: Date

  public init(
    id: Int64, value: Operator, revision: Int64, passwordSet: Bool, mustChangePassword: Bool,
    twoStepEnabled: Bool = false, createdAt: Date, updatedAt: Date
  ) {
    self.id = id
    self.value = value
    self.revision = revision
    self.passwordSet = passwordSet
    self.mustChangePassword = mustChangePassword
    self.twoStepEnabled = twoStepEnabled
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

/// An operator's two-step login as stored (TOOLS-4).
public struct TwoStepRecord: Sendable {
  /// The TOTP secret, base32.
  public var secret: String
  /// On; false while the enrolment waits for its first code.
  public var confirmed: Bool
  /// The last time step whose code was accepted.
  public var lastStep: Int64
}

/// The security policy: switches that apply to every operator.
public struct SecurityPolicy: Sendable, Hashable {
  /// TOOLS-4: every operator must use two-step login; one without it who signs in
  /// gets a session that may only enrol.
  public var enforceTwoStep: Bool

  public init(enforceTwoStep: Bool = false) {
    self.enforceTwoStep = enforceTwoStep
  }
}

/// The security policy as stored.
public struct StoredSecurityPolicy: Sendable, Hashable {
  public var value: SecurityPolicy
  public var revision: Int64
  public var updatedAt: Date
}

/// An API system as stored.
public struct StoredApiSystem: Sendable, Hashable {
  /// The storage's id: never reused.
  public var id: Int64
  public var value: ApiSystem
  /// Whether a secret is set (the predefined HRM has none until one is made).
  public var secretSet: Bool
  /// When the secret was last made.
  public var secretSetAt: Date?
  public var createdAt: Date

  public init(id: Int64, value: ApiSystem, secretSet: Bool, secretSetAt: Date?, createdAt: Date) {
    self.id = id
    self.value = value
    self.secretSet = secretSet
    self.secretSetAt = secretSetAt
    self.createdAt = createdAt
  }
}

/// Whose a session is.
public enum SessionHolder: Sendable, Hashable {
  /// An operator's (its id).
  case `operator`(Int64)
  /// An API system's (its id).
  case system(Int64)
}

/// A session as stored.
public struct SessionRecord: Sendable, Hashable {
  /// What a session may do.
  public enum Scope: String, Sendable, Hashable {
    /// Everything the operator may do.
    case full
    /// Only change the password (the first sign-in with a generated one).
    case changePassword = "change-password"
    /// Only turn two-step login on (TOOLS-4: enforced, and the operator has none).
    case enrolTwoStep = "enrol-two-step"
  }

  public var tokenHash: SessionTokenHash
  public var holder: SessionHolder
  public var scope: Scope
  public var createdAt: Date
  /// The absolute expiry.
  public var expiresAt: Date
  /// The address it was opened from.
  public var peer: String

  public init(
    tokenHash: SessionTokenHash, holder: SessionHolder, scope: Scope, createdAt: Date, expiresAt: Date, peer: String
  ) {
    self.tokenHash = tokenHash
    self.holder = holder
    self.scope = scope
    self.createdAt = createdAt
    self.expiresAt = expiresAt
    self.peer = peer
  }
}

/// Who a session belongs to, as the cache knows it now.
public struct SessionPrincipal: Sendable {
  /// The holder.
  public enum Holder: Sendable {
    /// An operator, with its companies as `Company.codeKey` (upper case).
    case `operator`(StoredOperator, companyKeys: Set<String>)
    /// An API system.
    case system(StoredApiSystem)
  }

  public var session: SessionRecord
  public var holder: Holder
}
