import DMSDomain
import DMSStorage
import Foundation
import Logging

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// The first administrator. No default password exists anywhere: on a data folder
/// without operators the server creates `admin` with a random password, writes it to
/// `initial-admin-password` in the data folder (mode 0600) and says where in its log.
/// The first sign-in with it may only change the password; once changed, the file is
/// removed. `dms-settingsd bootstrap-admin` does the same with a password of the
/// deployment's choosing (docs/SECURITY.md).
public struct InitialAdministrator: Sendable {
  /// The login of the administrator made at first start.
  public static let login = "admin"
  /// The file's name in the data folder.
  public static let fileName = "initial-admin-password"

  /// Where the generated password is written.
  public let passwordFile: String

  /// The first administrator of the data folder `dataFolder`.
  public init(dataFolder: String) {
    passwordFile = (dataFolder as NSString).appendingPathComponent(Self.fileName)
  }

  /// Creates `admin` with a random password if no operator exists, writing the
  /// password to `passwordFile` first. Returns whether it did.
  public func ensure(store: any SettingsStore, hasher: PasswordHasher, logger: Logger) async throws -> Bool {
    guard try await store.operators.transaction(by: .system("first start"), { try $0.operatorCount() }) == 0 else {
      return false
    }
    let password = Self.randomPassword()
    let hash = try await hasher.hash(password).encoded
    try Self.writeSecretFile(passwordFile, contents: password + "\n")
    let created: Bool
    do {
      created = try await store.operators.transaction(by: .system("first start")) { tx in
        guard try tx.operatorCount() == 0 else { return false }
        _ = try tx.createOperator(
          Operator(login: Self.login, fullName: "Administrator", administrator: true), passwordHash: hash,
          mustChangePassword: true)
        return true
      }
    } catch {
      try? FileManager.default.removeItem(atPath: passwordFile)
      throw error
    }
    if created {
      logger.notice(
        "first start: created the administrator \(Self.login); its one-time password is in \(passwordFile) (mode 0600). Sign in with it (dmsctl login \(Self.login)) and choose a new password; the file is removed then.",
        metadata: ["login": "\(Self.login)", "file": "\(passwordFile)"])
    } else {
      try? FileManager.default.removeItem(atPath: passwordFile)
    }
    return created
  }

  /// An operator changed its password: the first password's file goes (it no longer
  /// opens anything).
  func passwordChanged(login: String) {
    guard Operator.loginKey(login) == Operator.loginKey(Self.login) else { return }
    try? FileManager.default.removeItem(atPath: passwordFile)
  }

  /// What `bootstrap` did.
  public enum Outcome: Sendable, Equatable {
    case created
    case passwordReset
  }

  /// Creates the administrator `login` with `password`, or, when it exists, makes it
  /// an enabled administrator with that password (ending its sessions): for
  /// deployments, and for an operator locked out of every administrator account.
  ///
  /// - Throws: `ValidationFailure` when the login or password breaks a rule.
  public static func bootstrap(
    login: String, password: String, store: any SettingsStore, hasher: PasswordHasher,
    policy: PasswordPolicy = PasswordPolicy()
  ) async throws -> Outcome {
    let value = try Operator(login: login, fullName: "Administrator", administrator: true).validated()
    try policy.check(password, login: value.login)
    let hash = try await hasher.hash(password).encoded
    return try await store.operators.transaction(by: .system("bootstrap-admin")) { tx in
      if let existing = try tx.operator(login: value.login) {
        var changed = existing.value
        changed.administrator = true
        changed.disabled = false
        _ = try tx.updateOperator(id: existing.id, changed, expectedRevision: existing.revision)
        _ = try tx.setPassword(
          operatorID: existing.id, passwordHash: hash, mustChangePassword: false, keeping: nil, keptScope: .full)
        return .passwordReset
      }
      _ = try tx.createOperator(value, passwordHash: hash, mustChangePassword: false)
      return .created
    }
  }

  /// 20 characters from 31 that cannot be misread (no 0/o, 1/l/i): about 99 bits, in
  /// four groups of five.
  static func randomPassword() -> String {
    let alphabet = Array("23456789abcdefghjkmnpqrstuvwxyz")
    var generator = SystemRandomNumberGenerator()
    let groups = (0..<4).map { _ in
      String((0..<5).map { _ in alphabet[Int.random(in: 0..<alphabet.count, using: &generator)] })
    }
    return groups.joined(separator: "-")
  }

  /// Writes `contents` to `path` with mode 0600 from the start (never readable by
  /// others, not even for a moment), replacing any file there.
  static func writeSecretFile(_ path: String, contents: String) throws {
    let temporary = path + ".tmp"
    unlink(temporary)
    let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL, 0o600)
    guard descriptor >= 0 else {
      throw CocoaError(.fileWriteNoPermission, userInfo: [NSFilePathErrorKey: temporary])
    }
    let bytes = Array(contents.utf8)
    let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
    let synced = fsync(descriptor)
    close(descriptor)
    guard written == bytes.count, synced == 0, rename(temporary, path) == 0 else {
      unlink(temporary)
      throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path])
    }
  }
}
