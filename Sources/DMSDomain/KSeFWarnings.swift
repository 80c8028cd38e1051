import Foundation

/// INT-4a, CFG-2: what the administrator is told about KSeF settings as they stand.
public enum KSeFWarnings {
  /// The first moment KSeF no longer takes token sign-ins: token login is usable until
  /// 31.12.2026 (INT-4a), midnight in Poland (UTC+1 in winter).
  public static let tokenLoginEnd = Date(timeIntervalSince1970: 1_798_758_000)  // 2027-01-01T00:00:00+01:00
  /// How long before that end the warning shows.
  public static let lead: TimeInterval = 183 * 86_400

  /// How long before a certificate's end the warning shows.
  public static let certificateLead: TimeInterval = 30 * 86_400

  /// The warnings for a company whose KSeF token is set or not (`tokenSet`), with or
  /// without the certificate fallback (`certificateSet`; `certificateValidUntil` when
  /// its PEM is saved), using KSeF (a NIP, a token or a certificate saved: `inUse`), in
  /// the environment `mode`, at `now`.
  public static func warnings(
    inUse: Bool, tokenSet: Bool, certificateSet: Bool, certificateValidUntil: Date? = nil,
    mode: DeploymentConfiguration.KSeFWorkMode, now: Date
  ) -> [String] {
    guard inUse else { return [] }
    var warnings: [String] = []
    if let end = certificateValidUntil {
      let day = end.formatted(.iso8601.year().month().day())
      if now > end {
        warnings.append("the KSeF certificate expired on \(day) (INT-4a): KSeF refuses it; save a new one")
      } else if now >= end.addingTimeInterval(-certificateLead) {
        warnings.append("the KSeF certificate expires on \(day) (INT-4a): save its successor before then")
      }
    }
    if tokenSet && !certificateSet {
      if now >= tokenLoginEnd {
        warnings.append(
          "KSeF token login ended on 31.12.2026 (INT-4a): the token alone no longer signs in; add the KSeF certificate")
      } else if now >= tokenLoginEnd.addingTimeInterval(-lead) {
        warnings.append(
          "only a KSeF token is configured, and KSeF token login ends on 31.12.2026 (INT-4a): add the KSeF certificate as the fallback before then"
        )
      }
    }
    if mode == .production {
      warnings.append(
        "KSeF works in the Production environment (CFG-2, settings.ksef-work-mode): invoices sent there are legally binding"
      )
    }
    return warnings
  }
}
