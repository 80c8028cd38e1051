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

extension Dms_Rpc_V1_Status {
  /// The status's bytes, trimmed to `limit` (the meta limit both sides keep): a
  /// handler's long message or many violations must not make an unsendable frame.
  /// The message is cut to 1,024 characters, the violations that fit are kept, and the
  /// message says how many more were left out.
  public func serializedBytes(trimmedTo limit: Int) -> [UInt8] {
    let bytes: [UInt8] = (try? serializedBytes()) ?? []
    guard bytes.count > limit else { return bytes }
    var trimmed = self
    trimmed.message = String(message.prefix(1024))
    trimmed.violations = []
    var shown = 0
    for violation in violations {
      trimmed.violations.append(violation)
      if ((try? trimmed.serializedBytes() as [UInt8])?.count ?? .max) > limit - 256 {
        trimmed.violations.removeLast()
        break
      }
      shown += 1
    }
    if shown < violations.count {
      trimmed.message += " (\(violations.count - shown) more violations not shown)"
    }
    return (try? trimmed.serializedBytes()) ?? []
  }
}
