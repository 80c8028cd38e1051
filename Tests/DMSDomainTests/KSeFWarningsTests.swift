import DMSDomain
import Foundation
import Testing

@Suite("KSeF warnings (INT-4a, CFG-2)")
struct KSeFWarningsTests {
  static func day(_ text: String) -> Date {
    let formatter = ISO8601DateFormatter()
    return formatter.date(from: text + "T12:00:00Z")!
  }

  @Test(
    "a token-only configuration warns from half a year before 31.12.2026 and says it ended after; a certificate, or no KSeF use, silences it; Production always warns",
    arguments: [
      (true, true, false, "Test", "2026-06-01", [String]()),
      (true, true, false, "Test", "2026-12-02", ["ends on 31.12.2026"]),
      (true, true, false, "Test", "2026-12-31", ["ends on 31.12.2026"]),
      (true, true, false, "Test", "2027-01-01", ["ended on 31.12.2026"]),
      (true, true, true, "Test", "2026-12-02", []),
      (false, false, false, "Production", "2026-12-02", []),
      (true, false, false, "Production", "2026-12-02", ["Production"]),
      (true, true, false, "Production", "2026-12-02", ["ends on 31.12.2026", "Production"]),
    ])
  func warnings(inUse: Bool, token: Bool, certificate: Bool, mode: String, day: String, expected: [String]) {
    let warnings = KSeFWarnings.warnings(
      inUse: inUse, tokenSet: token, certificateSet: certificate,
      mode: DeploymentConfiguration.KSeFWorkMode(rawValue: mode)!, now: Self.day(day))
    #expect(warnings.count == expected.count, "\(warnings)")
    for (warning, part) in zip(warnings, expected) { #expect(warning.contains(part), "\(warning)") }
  }

  @Test("the end is midnight in Poland between 31.12.2026 and 1.1.2027")
  func end() {
    #expect(KSeFWarnings.tokenLoginEnd == ISO8601DateFormatter().date(from: "2027-01-01T00:00:00+01:00"))
  }
}
