import DMSRPC
import Foundation
import NIOPosix
import SwiftProtobuf
import Synchronization

/// Methods for tests, registered by hand (no .proto): echo, sleep, block.
enum TestService {
  static func descriptor(_ name: String, _ request: String, _ response: String) -> MethodDescriptor {
    MethodDescriptor(
      service: "dms.test.v1.Test", method: name, requestType: request, responseType: response, kind: .unary,
      access: .public)
  }

  /// `/dms.test.v1.Test/Echo`: returns the request bytes.
  static let echo = descriptor("Echo", "google.protobuf.BytesValue", "google.protobuf.BytesValue")
  /// `/dms.test.v1.Test/Sleep`: sleeps the requested milliseconds (cancellable).
  static let sleep = descriptor("Sleep", "google.protobuf.UInt32Value", "google.protobuf.Empty")
  /// `/dms.test.v1.Test/Block`: waits until cancelled; records start and cancellation
  /// under the request's string.
  static let block = descriptor("Block", "google.protobuf.StringValue", "google.protobuf.Empty")
  /// `/dms.test.v1.Test/Reject`: fails INVALID_ARGUMENT with one violation.
  static let reject = descriptor("Reject", "google.protobuf.StringValue", "google.protobuf.Empty")
  /// `/dms.test.v1.Test/Big`: returns the requested number of bytes.
  static let big = descriptor("Big", "google.protobuf.UInt32Value", "google.protobuf.BytesValue")
  /// `/dms.test.v1.Test/ManyViolations`: fails with the requested number of violations.
  static let manyViolations = descriptor("ManyViolations", "google.protobuf.UInt32Value", "google.protobuf.Empty")
  /// `/dms.test.v1.Test/BlockThread`: blocks its thread for the requested milliseconds,
  /// as a blocking C library (libcurl, libldap, a KDF) would.
  static let blockThread = descriptor("BlockThread", "google.protobuf.UInt32Value", "google.protobuf.Empty")
  /// `/dms.test.v1.Test/Fail`: throws a non-RPC error.
  static let fail = descriptor("Fail", "google.protobuf.Empty", "google.protobuf.Empty")
  /// `/dms.test.v1.Test/Where`: says where it ran: "immediate, no task" (answered on
  /// the event loop), or "task" when the request is "async" (the immediate handler
  /// passes); "refuse" fails NOT_FOUND from the immediate handler.
  static let whereRun = descriptor("Where", "google.protobuf.StringValue", "google.protobuf.StringValue")

  /// What the test handlers saw.
  final class Probe: Sendable {
    private let state = Mutex<(started: [String], cancelled: [String])>(([], []))
    func started(_ tag: String) { state.withLock { $0.started.append(tag) } }
    func cancelled(_ tag: String) { state.withLock { $0.cancelled.append(tag) } }
    var startedTags: [String] { state.withLock { $0.started } }
    var cancelledTags: [String] { state.withLock { $0.cancelled } }
  }

  struct Boom: Error, CustomStringConvertible {
    var description: String { "secret detail that must not reach the client" }
  }

  static func methods(probe: Probe) -> [RPCMethod] {
    [
      .unary(echo) { (request: Google_Protobuf_BytesValue, _) in request },
      .unary(sleep) { (request: Google_Protobuf_UInt32Value, _) in
        probe.started("sleep \(request.value)")
        try await Task.sleep(for: .milliseconds(Int(request.value)))
        return Google_Protobuf_Empty()
      },
      .unary(block) { (request: Google_Protobuf_StringValue, _) in
        probe.started(request.value)
        do {
          try await Task.sleep(for: .seconds(60))
        } catch {
          probe.cancelled(request.value)
          throw error
        }
        return Google_Protobuf_Empty()
      },
      .unary(reject) { (request: Google_Protobuf_StringValue, _) -> Google_Protobuf_Empty in
        throw RPCError(
          code: .invalidArgument,
          message: "the request breaks a rule",
          violations: [FieldViolation(field: "value", rule: "TEST-1", description: "must not be \(request.value)")]
        )
      },
      .unary(big) { (request: Google_Protobuf_UInt32Value, _) in
        var response = Google_Protobuf_BytesValue()
        response.value = Data(repeating: 7, count: Int(request.value))
        return response
      },
      .unary(manyViolations) { (request: Google_Protobuf_UInt32Value, _) -> Google_Protobuf_Empty in
        throw RPCError(
          code: .invalidArgument,
          message: "many rules broken",
          violations: (0..<Int(request.value)).map {
            FieldViolation(field: "items[\($0)].name", rule: "TEST-2", description: "must not be empty")
          }
        )
      },
      .unary(blockThread) { (request: Google_Protobuf_UInt32Value, _) in
        usleep(request.value * 1000)
        return Google_Protobuf_Empty()
      },
      .unary(fail) { (_: Google_Protobuf_Empty, _) -> Google_Protobuf_Empty in throw Boom() },
      .unary(
        whereRun,
        immediate: { (request: Google_Protobuf_StringValue, context) -> Google_Protobuf_StringValue? in
          switch request.value {
          case "async": return nil
          case "refuse": throw RPCError(code: .notFound, message: "refused immediately")
          case "context":
            let peer = context.peer.contains("127.0.0.1") ? "peer" : "no peer: \(context.peer)"
            return Google_Protobuf_StringValue(
              "\(context.method.fullName) \(context.metadata["x-test"] ?? "-") \(peer) \(context.requestID)")
          default:
            let inTask = withUnsafeCurrentTask { $0 != nil }
            return Google_Protobuf_StringValue(inTask ? "immediate, in a task" : "immediate, no task")
          }
        }
      ) { (_: Google_Protobuf_StringValue, _) in
        // Handlers run off the event loops: a blocking one must not stall a connection.
        Google_Protobuf_StringValue(
          MultiThreadedEventLoopGroup.currentEventLoop == nil ? "task" : "task, on an event loop")
      },
    ]
  }
}
