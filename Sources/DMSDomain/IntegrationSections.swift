/// Which rule names a section's checks cite: multi-company mode's per-company fields
/// (ERP-13 … ERP-17) or single-company mode's section (INT-1 … INT-7). The rules are
/// the same.
public enum IntegrationRules: Sendable {
  /// A company of multi-company mode (Companies, or a section naming the company).
  case company
  /// The single company's section.
  case singleCompany

  var nip: String { self == .company ? "ERP-13" : "INT-1" }
  var eDeliveryAddress: String { self == .company ? "ERP-15" : "INT-5" }
  /// The private key's rule (ERP-17, INT-7).
  public var eDeliveryPrivateKey: String { self == .company ? "ERP-17" : "INT-7" }
  /// The token's rule (ERP-14, INT-2).
  public var ksefToken: String { self == .company ? "ERP-14" : "INT-2" }
}

/// INT-4a: the KSeF certificate, the token's fallback: the certificate in PEM (its
/// private key is a secret, stored apart) or only the thumbprint of one installed where
/// the DMS runs.
public struct KSeFCertificate: Sendable, Hashable {
  /// The certificate in PEM, or empty.
  public var pem: String
  /// The SHA-1 thumbprint, 40 hex digits in upper case (the certificate's when `pem`
  /// is set), or empty.
  public var thumbprint: String

  /// A certificate, or none.
  public init(pem: String = "", thumbprint: String = "") {
    self.pem = pem
    self.thumbprint = thumbprint
  }

  /// Whether one is configured (a PEM or a thumbprint).
  public var isSet: Bool { !pem.isEmpty || !thumbprint.isEmpty }

  /// The rule.
  public static let rule = "INT-4a"

  /// `text` as a thumbprint: 40 hex digits once spaces and colons are removed, in
  /// upper case; nil otherwise.
  public static func thumbprint(of text: String) -> String? {
    let kept = text.filter { $0 != " " && $0 != ":" && $0 != "\u{200E}" }.uppercased()
    guard kept.count == 40, kept.allSatisfy({ $0.isHexDigit && $0.isASCII }) else { return nil }
    return kept
  }
}

/// The KSeF section of a company (ERP-13, ERP-14 and the certificate) or of the single
/// company (INT-1 … INT-4a). The token and the certificate's key are secrets, apart.
public struct KSeFSection: Sendable, Hashable {
  /// ERP-13, INT-1: 10 digits, normalized.
  public var nip: String
  /// INT-4a.
  public var certificate: KSeFCertificate

  /// The section.
  public init(nip: String = "", certificate: KSeFCertificate = KSeFCertificate()) {
    self.nip = nip
    self.certificate = certificate
  }

  /// Checks the NIP and the thumbprint's form (the PEM is checked where X.509 is read);
  /// the certificate's violations name `certificateField`'s fields. Returns the section
  /// as stored.
  public func validated(rules: IntegrationRules, certificateField: String, into v: inout Validator) -> KSeFSection {
    var normalized = self
    if !nip.isEmpty {
      if NIP.isValid(nip), let digits = NIP.digits(of: nip) {
        normalized.nip = digits
      } else {
        v.add("nip", rules.nip, "is not a valid NIP: 10 digits whose checksum matches (INT-1)")
      }
    }
    v.limit(certificate.pem, "\(certificateField).pem", maxLength: TextLimits.pem)
    if !certificate.thumbprint.isEmpty {
      if let thumbprint = KSeFCertificate.thumbprint(of: certificate.thumbprint) {
        normalized.certificate.thumbprint = thumbprint
      } else {
        v.add(
          "\(certificateField).thumbprint", KSeFCertificate.rule,
          "must be a SHA-1 thumbprint: 40 hex digits (spaces and colons are allowed), as Windows shows it")
      }
    }
    return normalized
  }
}

/// The e-Delivery section of a company (ERP-15 … ERP-17) or of the single company
/// (INT-5 … INT-7). The private key is a secret, apart.
public struct EDeliverySection: Sendable, Hashable {
  /// ERP-15, INT-5.
  public var address: String
  /// ERP-16, INT-6.
  public var systemName: String
  /// ERP-17, INT-7: the SHA-256 fingerprint of the private key's public key, when one
  /// is set.
  public var keyFingerprint: String

  /// The section.
  public init(address: String = "", systemName: String = "", keyFingerprint: String = "") {
    self.address = address
    self.systemName = systemName
    self.keyFingerprint = keyFingerprint
  }

  /// Checks the address and the system name; violations name `prefix`ed fields.
  public func validate(rules: IntegrationRules, prefix: String, into v: inout Validator) {
    if !address.isEmpty {
      v.require(
        EDeliveryAddress.isValid(address), "\(prefix)address", rules.eDeliveryAddress,
        "must have the form AE:PL-NNNNN-NNNNN-XXXXX-NN (N a digit, X a capital letter)")
    }
    v.limit(systemName, "\(prefix)system_name")
  }
}

extension Company {
  /// The KSeF section (ERP-13, the certificate).
  public var ksef: KSeFSection {
    get { KSeFSection(nip: nip, certificate: ksefCertificate) }
    set {
      nip = newValue.nip
      ksefCertificate = newValue.certificate
    }
  }

  /// The e-Delivery section (ERP-15 … ERP-17).
  public var eDelivery: EDeliverySection {
    get {
      EDeliverySection(
        address: eDeliveryAddress, systemName: eDeliverySystemName, keyFingerprint: eDeliveryKeyFingerprint)
    }
    set {
      eDeliveryAddress = newValue.address
      eDeliverySystemName = newValue.systemName
      eDeliveryKeyFingerprint = newValue.keyFingerprint
    }
  }
}
