import DMSClient
import DMSMessages
import DMSRPC
import DMSStubs
import DMSTestSupport
import Foundation
import Testing

/// A valid company message.
func companyMessage(_ shortName: String, name: String = "Company") -> Dms_Settings_V1_Company {
  var company = Dms_Settings_V1_Company()
  company.shortName = shortName
  company.mode = .erpXl
  company.name = name
  company.connection.server = "sql01"
  company.connection.database = "ERPXL_\(shortName)"
  company.connection.authentication = .sql
  company.connection.user = "dms"
  return company
}

func secret(_ value: String) -> Dms_Settings_V1_SecretInput {
  var input = Dms_Settings_V1_SecretInput()
  input.set = value
  return input
}

/// The error a call threw, as RPCError.
func rpcError(_ body: () async throws -> Void) async -> RPCError? {
  do {
    try await body()
    return nil
  } catch {
    return error as? RPCError
  }
}

/// "field:rule" of each violation.
func rules(_ error: RPCError?) -> [String] {
  (error?.violations ?? []).map { "\($0.field):\($0.rule)" }
}

/// A private key made with openssl: `ec` (P-256) or `rsa` (`bits`, 2048 by default).
func makePrivateKeyPEM(_ kind: String, bits: Int = 2048) throws -> String {
  let process = ChildProcess()
  process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
  process.arguments =
    kind == "rsa"
    ? ["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:\(bits)"]
    : ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]
  let pipe = Pipe()
  process.standardOutput = pipe
  process.standardError = FileHandle.nullDevice
  try process.run()
  let data = pipe.fileHandleForReading.readDataToEndOfFile()
  process.waitUntilExit()
  return String(decoding: data, as: UTF8.self)
}
