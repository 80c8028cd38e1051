import DMSDomain
import DMSMessages
import DMSRPC
import DMSStorage

extension ValidationFailure: RPCErrorConvertible {
  /// INVALID_ARGUMENT with one violation per broken rule.
  public var rpcError: RPCError {
    RPCError(
      code: .invalidArgument,
      message: violations.count == 1
        ? "invalid \(violations[0].field): \(violations[0].message)" : "\(violations.count) fields break rules",
      violations: violations.map { FieldViolation(field: $0.field, rule: $0.rule, description: $0.message) }
    )
  }
}

extension StoreError: RPCErrorConvertible {
  /// The status a storage failure is sent as.
  public var rpcError: RPCError {
    switch kind {
    case .notFound:
      return RPCError(code: .notFound, message: message)
    case .alreadyExists:
      return RPCError(
        code: .alreadyExists, message: message,
        violations: field.map { [FieldViolation(field: $0, rule: rule ?? "", description: message)] } ?? [])
    case .staleRevision:
      var trailers: [String: String] = [:]
      if let currentRevision { trailers["current-revision"] = String(currentRevision) }
      return RPCError(
        code: .aborted, message: "\(message): someone saved a newer version; read it again and reapply your change",
        trailers: trailers)
    case .secretUnreadable, .corrupt, .unreadable:
      return RPCError(code: .dataLoss, message: message)
    case .full, .fellBehind:
      return RPCError(code: .resourceExhausted, message: message)
    case .outOfRange:
      return RPCError(code: .outOfRange, message: message)
    case .inUse:
      return RPCError(code: .failedPrecondition, message: message)
    default:  // busy, unavailable
      return RPCError(code: .unavailable, message: message)
    }
  }
}

extension ValidationFailure {
  /// The same violations with their fields named under the request's message
  /// (`settings.company_name`), but for the fields in `kept`, which are the request's own
  /// (`password`).
  func under(_ message: String, keeping kept: Set<String> = []) -> ValidationFailure {
    ValidationFailure(
      violations.map {
        RuleViolation(
          field: kept.contains($0.field) ? $0.field : "\(message).\($0.field)", rule: $0.rule, message: $0.message)
      })
  }
}

/// The company `code` names, if the caller may reach it (belongs to it, or is an
/// administrator): NOT_FOUND otherwise, the same answer as for a company that does not
/// exist.
func reachableCompany(_ code: String, in registry: any CompanyRegistry, context: ServerContext) async throws
  -> CompanyKey
{
  guard context.mayReach(company: code), let key = try await registry.company(code: code) else {
    throw RPCError(code: .notFound, message: "no company with the short name \(code)")
  }
  return key
}

/// Checks and converts a `SecretInput` (absent: keep).
func secretChange(
  _ input: Dms_Settings_V1_SecretInput?,
  field: String,
  rule: String,
  maxLength: Int = TextLimits.secret,
  into validator: inout Validator
) -> SecretChange {
  switch input?.change {
  case nil:
    return .keep
  case .clear(let clear):
    return clear ? .clear : .keep
  case .set(let value):
    if value.isEmpty {
      validator.add(field, rule, "is empty: to remove a secret, send clear")
    } else if value.count > maxLength {
      validator.add(field, rule, "must be at most \(maxLength) characters")
    }
    return .set(value)
  }
}

/// Requires a revision on an update.
func requireRevision(_ revision: Int64, field: String = "revision") throws(ValidationFailure) {
  guard revision > 0 else {
    throw ValidationFailure([
      RuleViolation(
        field: field, rule: "", message: "is required: send the revision you read (updates never overwrite blindly)")
    ])
  }
}
