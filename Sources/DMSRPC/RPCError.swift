/// How a call failed: a status code, a message, and the fields that broke rules.
///
/// Handlers throw it (or an `RPCErrorConvertible`); the server sends it as the call's
/// END status; the client library throws it back to the caller.
public struct RPCError: Error, Hashable, Sendable, CustomStringConvertible {
  /// The status code; never `.ok`.
  public var code: StatusCode
  /// What went wrong, for a person. Carries no secret and no tenant data.
  public var message: String
  /// The fields of the request that broke a rule.
  public var violations: [FieldViolation]
  /// Trailers of the END frame, such as `request-id`.
  public var trailers: [String: String]

  /// An error with `code` and `message`.
  public init(
    code: StatusCode,
    message: String,
    violations: [FieldViolation] = [],
    trailers: [String: String] = [:]
  ) {
    self.code = code
    self.message = message
    self.violations = violations
    self.trailers = trailers
  }

  public var description: String {
    var text = "\(code.name): \(message)"
    for violation in violations {
      let rule = violation.rule.isEmpty ? "" : " [\(violation.rule)]"
      text += "\n  \(violation.field)\(rule): \(violation.description)"
    }
    return text
  }
}

/// An error that knows which RPC status it stands for.
public protocol RPCErrorConvertible: Error {
  /// The status the server sends for this error.
  var rpcError: RPCError { get }
}

extension RPCError {
  /// The status a handler's thrown `error` is sent as.
  ///
  /// Unknown errors become INTERNAL with a generic message: their text may hold
  /// details that must not reach a client.
  public init(from error: any Error) {
    switch error {
    case let error as RPCError:
      self = error
    case let error as any RPCErrorConvertible:
      self = error.rpcError
    case is CancellationError:
      self.init(code: .cancelled, message: "the call was cancelled")
    default:
      self.init(code: .internal, message: "internal error")
    }
  }
}
