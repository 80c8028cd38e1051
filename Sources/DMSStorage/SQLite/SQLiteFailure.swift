import GRDB

/// Turns SQLite's result codes into store errors an operator can act on.
enum SQLiteFailure {
  /// The store error for `error`; other errors pass through.
  static func map(_ error: any Error) -> any Error {
    guard let error = error as? DatabaseError else { return error }
    let code = "SQLite result code \(error.extendedResultCode.rawValue)"
    switch error.resultCode {
    case .SQLITE_BUSY, .SQLITE_LOCKED:
      return StoreError(
        .busy, "the database stayed locked by another process past storage.busy-timeout-ms (\(code)); try again")
    case .SQLITE_FULL:
      return StoreError(.full, "the disk holding the database is full (\(code)); nothing was saved")
    case .SQLITE_CORRUPT, .SQLITE_NOTADB:
      return StoreError(
        .corrupt, "the database file is damaged (\(code)); restore it from a backup (see docs/STORAGE.md)")
    case .SQLITE_READONLY:
      return StoreError(.unavailable, "the database is read-only (\(code)): check the data folder's permissions")
    default:
      return StoreError(.unavailable, "the database failed (\(code))")
    }
  }
}
