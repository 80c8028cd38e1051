import DMSMessages

extension RPCError {
  /// The END meta for this error.
  public var wireStatus: Dms_Rpc_V1_Status {
    var status = Dms_Rpc_V1_Status()
    status.code = code.rawValue
    status.message = message
    status.violations = violations.map { violation in
      var v = Dms_Rpc_V1_FieldViolation()
      v.field = violation.field
      v.rule = violation.rule
      v.description_p = violation.description
      return v
    }
    status.trailers = trailers
    return status
  }

  /// The error an END status stands for (its code is not OK).
  public init(wireStatus status: Dms_Rpc_V1_Status) {
    self.init(
      code: StatusCode(rawValue: status.code),
      message: status.message,
      violations: status.violations.map {
        FieldViolation(field: $0.field, rule: $0.rule, description: $0.description_p)
      },
      trailers: status.trailers
    )
  }
}
