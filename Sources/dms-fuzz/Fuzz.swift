import CFuzzerDriver
import DMSMessages
import DMSProtocol
import DMSRPC
import DMSWire
import Foundation
import NIOCore
import SwiftProtobuf

/// libFuzzer targets, one binary: `DMS_FUZZ_TARGET=NAME dms-fuzz [libFuzzer flags]
/// [CORPUS...]` runs one.
///
/// - `frame-decoder`: bytes cut into frames; what decodes re-encodes to the same bytes.
/// - `meta-decoders`: the hand-written CallMeta and Status-code decoders against
///   swift-protobuf's: the same fields, or both refuse.
/// - `server-state`: a conversation (frames, calls ending, timers, writability,
///   shutdown) driven through `ServerConnectionStateMachine`; its invariants hold.
///
/// `DMS_FUZZ_SEEDS=DIR dms-fuzz` writes a seed corpus of valid conversations (a folder
/// per target). scripts/fuzz builds this with -sanitize=fuzzer and -DFUZZING (the
/// `main` then hands over to libFuzzer's driver); a plain build says how to build it.
enum FuzzTargets {
  static let all: [String: @Sendable (UnsafeRawBufferPointer) -> Void] = [
    "frame-decoder": FrameDecoderTarget.run,
    "meta-decoders": MetaDecodersTarget.run,
    "server-state": ServerStateTarget.run,
  ]

  /// The target named by DMS_FUZZ_TARGET; set once, before libFuzzer's driver starts.
  nonisolated(unsafe) static var selected: (@Sendable (UnsafeRawBufferPointer) -> Void)?

  static func select() {
    let environment = ProcessInfo.processInfo.environment
    if let folder = environment["DMS_FUZZ_SEEDS"] {
      Seeds.write(to: folder)
      exit(0)
    }
    guard let name = environment["DMS_FUZZ_TARGET"], let target = all[name] else {
      FileHandle.standardError.write(
        Data("set DMS_FUZZ_TARGET to one of: \(all.keys.sorted().joined(separator: ", "))\n".utf8))
      exit(2)
    }
    selected = target
  }
}

@main
enum Fuzz {
  static func main() {
    FuzzTargets.select()
    #if FUZZING
      var argc = CommandLine.argc
      var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
      exit(
        LLVMFuzzerRunDriver(&argc, &argv) { data, size in
          FuzzTargets.selected?(UnsafeRawBufferPointer(start: data, count: size))
          return 0
        })
    #else
      FileHandle.standardError.write(
        Data("dms-fuzz was built without libFuzzer: run scripts/fuzz, which builds it with -sanitize=fuzzer\n".utf8))
      exit(2)
    #endif
  }
}

/// Frames cut off the front of the input, as the server's read loop does.
enum FrameDecoderTarget {
  static func run(_ input: UnsafeRawBufferPointer) {
    var buffer = ByteBuffer(bytes: input)
    let decoder = FrameDecoder(maxFrameSize: 1 << 16, maxMetaSize: 1 << 12)
    while true {
      let before = buffer
      let frame: Frame?
      do {
        frame = try decoder.next(from: &buffer)
      } catch {
        return
      }
      guard let frame else {
        precondition(buffer == before, "a partial frame consumed bytes")
        return
      }
      // What decoded re-encodes to exactly the bytes it was read from.
      var encoded = ByteBuffer()
      frame.write(into: &encoded)
      let consumed = before.readableBytes - buffer.readableBytes
      precondition(encoded.readableBytes == consumed, "re-encoded size differs")
      precondition(
        encoded.readableBytesView.elementsEqual(before.readableBytesView.prefix(consumed)),
        "re-encoded bytes differ")
      precondition(frame.meta.readableBytes <= decoder.maxMetaSize)
      precondition(frame.meta.readableBytes + frame.payload.readableBytes <= decoder.maxFrameSize)
    }
  }
}

/// The hand-written decoders against swift-protobuf: they read every message a
/// protobuf encoder writes with the same values. The CallMeta decoder is never looser
/// than swift-protobuf (what it refuses, ours refuses); on input no encoder writes
/// (an unterminated group inside a map entry, say) it may refuse what swift-protobuf
/// lets through.
enum MetaDecodersTarget {
  static func run(_ input: UnsafeRawBufferPointer) {
    let bytes = Array(input)
    let ours = try? MetaDecoder.callMeta(ByteBuffer(bytes: bytes))
    let reference = try? Dms_Rpc_V1_CallMeta(serializedBytes: bytes)
    if let ours {
      guard let reference else { preconditionFailure("CallMeta: ours accepted what swift-protobuf refuses") }
      check(ours, reference)
    }
    if let reference {
      // What swift-protobuf read, written back by its encoder (without the unknown
      // fields it keeps): ours reads it the same.
      var known = reference
      known.unknownFields = UnknownStorage()
      let canonical: [UInt8] = try! known.serializedBytes()
      guard let again = try? MetaDecoder.callMeta(ByteBuffer(bytes: canonical)) else {
        preconditionFailure("CallMeta: ours refused what swift-protobuf's encoder wrote")
      }
      check(again, reference)
    }
    let code = try? MetaDecoder.statusCode(ByteBuffer(bytes: bytes))
    let status = try? Dms_Rpc_V1_Status(serializedBytes: bytes)
    // The Status reader decodes the code alone and checks the other fields' framing,
    // not their contents (a client decodes a Status whole when its code is not OK): it
    // may take what swift-protobuf refuses, but never reads another code.
    if let code, let status {
      precondition(code == status.code, "status code differs")
    }
    if var status {
      status.unknownFields = UnknownStorage()
      let canonical: [UInt8] = try! status.serializedBytes()
      precondition((try? MetaDecoder.statusCode(ByteBuffer(bytes: canonical))) == status.code, "status code differs")
    }
  }

  private static func check(_ ours: CallMetaFields, _ reference: Dms_Rpc_V1_CallMeta) {
    precondition(ours.method == reference.method, "method differs")
    precondition(ours.timeoutMs == reference.timeoutMs, "timeout differs")
    precondition(ours.metadata == reference.metadata, "metadata differs")
  }
}

/// A conversation through the state machine: every action is one the handler could
/// perform, and the invariants hold after every event.
enum ServerStateTarget {
  typealias Machine = ServerConnectionStateMachine

  static func run(_ input: UnsafeRawBufferPointer) {
    var bytes = input[...]
    func take() -> UInt8? { bytes.popFirst() }
    let limit = Int(take() ?? 4) % 8 + 1
    var machine = Machine(
      limits: .init(maxConcurrentCalls: limit, maxBufferedBytes: 4096, parkWindow: 512),
      now: .uptimeNanoseconds(0))
    var clock: UInt64 = 0
    var open: [(callID: UInt32, serial: UInt64)] = []
    var highest: UInt32 = 0
    var decoder = ByteBuffer()
    let frameDecoder = FrameDecoder(maxFrameSize: 1 << 12, maxMetaSize: 1 << 10)

    func perform(_ action: Machine.FrameAction) {
      switch action {
      case .startCall(let frame):
        let serial = machine.callStarted(callID: frame.callID, requestID: "r")
        precondition(machine.setHandle(RunningCall(), callID: frame.callID, serial: serial))
        open.append((frame.callID, serial))
      case .cancelCall(let callID, _, let handle, _):
        precondition(handle != nil, "an open call without its handle")
        open.removeAll { $0.callID == callID }
        after()
      case .refuseCall, .cancelParkedCall, .pingAck, .settingsAck, .none:
        break
      case .goAwayAndClose, .close:
        precondition(machine.phase == .closed, "closing, but the phase is \(machine.phase)")
      }
    }
    func after() {
      switch machine.afterCallsEnded(now: .uptimeNanoseconds(clock)) {
      case .close: precondition(machine.phase == .closed && machine.openCalls == 0)
      case .none: break
      case .startParkedCalls:
        while let action = machine.nextParkedCall() { perform(action) }
        _ = machine.readsMayResume()
      }
    }

    while let event = take() {
      clock += UInt64(event) * 1_000_000
      switch event % 10 {
      case 0, 1, 2, 3:
        // Bytes for the frame decoder: a length, then that many input bytes.
        let count = Int(take() ?? 0)
        for _ in 0..<count { if let byte = take() { decoder.writeInteger(byte) } }
        if machine.phase == .awaitingPreface {
          let action = machine.prefaceReceived(Preface.detect(decoder), now: .uptimeNanoseconds(clock))
          if action == .accept { decoder.moveReaderIndex(forwardBy: Preface.size) }
          continue
        }
        while machine.phase != .closed {
          do {
            guard let frame = try frameDecoder.next(from: &decoder) else { break }
            perform(machine.frameReceived(frame))
          } catch {
            perform(machine.decodingFailed(error))
          }
        }
      case 4:
        // A call's handler finishes (or one already ended finishes late).
        if let pick = take(), !open.isEmpty {
          let call = open.remove(at: Int(pick) % open.count)
          precondition(machine.endCall(callID: call.callID, serial: call.serial) != nil || machine.phase == .closed)
          precondition(machine.endCall(callID: call.callID, serial: call.serial) == nil, "ended twice")
          after()
        }
      case 5:
        _ = machine.writabilityChanged((take() ?? 0) & 1 == 0)
      case 6:
        perform(machine.bytesHanded(Int(take() ?? 0) * 16, batched: 0))
      case 7:
        switch machine.shutdown() {
        case .drain(_, let closeNow): precondition(closeNow == (machine.phase == .closed))
        case .close, .none: break
        }
      case 8:
        _ = machine.idleCheck(now: .uptimeNanoseconds(clock), timeout: .seconds(1))
        _ = machine.graceExpired()
      default:
        _ = machine.readRequested()
        _ = machine.prefaceTimedOut()
      }
      // Invariants.
      precondition(machine.openCalls <= limit, "more calls open than the limit")
      precondition(machine.parkedCount >= 0 && machine.parkedBytes >= 0)
      precondition(machine.highestCallID >= highest, "highest call id went down")
      highest = machine.highestCallID
      if machine.phase == .closed { precondition(machine.nextParkedCall() == nil) }
      if machine.phase != .closed { precondition(machine.openCalls == open.count, "call table out of step") }
    }
  }
}

/// Seed inputs: valid conversations each target starts from.
enum Seeds {
  static func write(to directory: String) {
    let fileManager = FileManager.default
    var meta = Dms_Rpc_V1_CallMeta()
    meta.method = "/dms.rpc.v1.Health/Check"
    meta.timeoutMs = 500
    meta.metadata = [MetadataKey.requestID: "seed-1", MetadataKey.userAgent: "dms-fuzz"]
    let metaBytes: [UInt8] = (try? meta.serializedBytes()) ?? []
    var status = Dms_Rpc_V1_Status()
    status.code = 5
    status.message = "not found"
    status.trailers = [MetadataKey.requestID: "seed-1"]
    let statusBytes: [UInt8] = (try? status.serializedBytes()) ?? []

    func frame(_ type: FrameType, _ flags: FrameFlags = [], _ id: UInt32, meta: [UInt8] = [], payload: [UInt8] = [])
      -> [UInt8]
    {
      var buffer = ByteBuffer()
      Frame(type: type, flags: flags, callID: id, meta: ByteBuffer(bytes: meta), payload: ByteBuffer(bytes: payload))
        .write(into: &buffer)
      return Array(buffer.readableBytesView)
    }
    let conversation: [[UInt8]] = [
      frame(.call, .endStream, 1, meta: metaBytes),
      frame(.call, .endStream, 2, meta: metaBytes, payload: [0x0A, 0x01, 0x78]),
      frame(.ping, [], 0, payload: [1, 2, 3, 4, 5, 6, 7, 8]),
      frame(.cancel, [], 2),
      frame(.settings, [], 0),
      frame(.goAway, [], 0, meta: [0x08, 0x02]),
    ]
    let seeds: [String: [[UInt8]]] = [
      "frame-decoder": [conversation.flatMap { $0 }, conversation[0], conversation[2]],
      "meta-decoders": [metaBytes, statusBytes, []],
      "server-state": [
        // Preface, then each frame as a decoder event (0, length, bytes), calls ending
        // (4), writability (5), shutdown (7).
        [3, 0, UInt8(Preface.size)] + Preface.bytes()
          + conversation.prefix(3).flatMap { [0, UInt8(min($0.count, 255))] + $0.prefix(255) }
          + [4, 0, 5, 1, 6, 200, 5, 0, 4, 1, 7, 8, 4, 0],
        [1, 0, UInt8(Preface.size)] + Preface.bytes()
          + conversation.flatMap { [0, UInt8(min($0.count, 255))] + $0.prefix(255) } + [4, 0, 4, 0, 9],
      ],
    ]
    for (target, inputs) in seeds {
      let folder = (directory as NSString).appendingPathComponent(target)
      try? fileManager.createDirectory(atPath: folder, withIntermediateDirectories: true)
      for (index, input) in inputs.enumerated() {
        _ = fileManager.createFile(
          atPath: (folder as NSString).appendingPathComponent("seed-\(index)"), contents: Data(input))
      }
    }
  }
}
