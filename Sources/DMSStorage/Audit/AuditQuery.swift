/// Which audit rows to read, and in which order (`CompanyRegistry.auditRecords`).
public struct AuditQuery: Sendable, Hashable {
  /// One company's rows (by its storage id), or every row when nil.
  public var companyID: Int64?
  /// Rows naming this company code, ignoring case (rows outlive their company).
  public var companyCode: String?
  /// Rows of this action (`update`, `operator.create`, …).
  public var action: String?
  /// Rows made by this login, ignoring case.
  public var login: String?
  /// Rows about this operator or API system (`subject`), ignoring case.
  public var subject: String?
  /// Oldest first: rows after this id. Newest first: rows before it (0: from the newest).
  public var cursor: Int64
  /// Newest first, rather than oldest first.
  public var newestFirst: Bool
  /// The most rows.
  public var limit: Int

  /// A query; by default every row, oldest first.
  public init(
    companyID: Int64? = nil, companyCode: String? = nil, action: String? = nil, login: String? = nil,
    subject: String? = nil, cursor: Int64 = 0, newestFirst: Bool = false, limit: Int = 100
  ) {
    self.companyID = companyID
    self.companyCode = companyCode
    self.action = action
    self.login = login
    self.subject = subject
    self.cursor = cursor
    self.newestFirst = newestFirst
    self.limit = limit
  }
}
