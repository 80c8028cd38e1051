import DMSDomain
import Foundation
import Testing

@testable import DMSStorage

/// `SortedJSONEncoder` writes the bytes Foundation's `JSONEncoder` (`.sortedKeys`) writes:
/// stored documents compare equal across the change, and earlier releases' documents
/// are rewritten only when they changed.
@Suite("Stored JSON")
struct SortedJSONEncoderTests {
  /// Every ASCII character, Polish letters, an emoji, a lone combining mark.
  static let awkward = String((0..<128).map { Character(UnicodeScalar(UInt8($0))) }) + "zażółć 🚀 e\u{301} \u{2028}"

  func same<Record: Encodable>(_ record: Record, sourceLocation: SourceLocation = #_sourceLocation) throws {
    let ours = try SortedJSONEncoder.encode(record)
    let foundation = try StoredJSON.foundationEncode(record)
    #expect(
      ours == foundation,
      "\n\(String(decoding: ours, as: UTF8.self))\n\(String(decoding: foundation, as: UTF8.self))",
      sourceLocation: sourceLocation)
  }

  @Test("every record type, each field set (awkward text in each string), is JSONEncoder's bytes")
  func records() throws {
    let text = Self.awkward
    let connection = ERPConnection(server: text, database: text, authentication: .integrated, user: text)
    var company = Company(
      code: "ACME", mode: .erpXL, name: text, connection: connection, altumConfiguration: connection,
      licenseKeyName: text, mappedDatabase: text, defaultCenter: text, operatorLogin: text, useDomain: true,
      domainName: text, domainGroup: text, nip: text, eDeliveryAddress: text, eDeliverySystemName: text,
      eDeliveryKeyFingerprint: text)
    company.ksefCertificate = KSeFCertificate(pem: text, thumbprint: text)
    try same(CompanyRecordV2(company))
    try same(CompanyRecordV1(company))
    company.altumConfiguration = nil
    try same(CompanyRecordV2(company))
    try same(CompanyRecordV2(Company(code: "", mode: .erpXL, name: "", connection: connection)))
    let account = MailAccount(
      transport: .component, enabled: true, accountName: text, senderAddress: text, displayName: text,
      replyTo: text, description: text, server: text, port: 65535, login: text, ssl: true, encryption: .tls,
      authentication: .oauth2, oauth: MailAccount.OAuth(authority: text, clientID: text, scopes: text),
      trustedCertificates: text)
    try same(MailAccountRecordV2(account))
    try same(MailAccountRecordV2(MailAccount()))
    for document in [
      try MailAccount.encodeStored(account), try Company.encodeStored(company),
      try CompanyCenters.encodeStored(CompanyCenters(centers: [text, "", "B", "A"])),
      try APIAuthorization.encodeStored(APIAuthorization(companyName: text, operatorLogin: text)),
      try SharedSettings.encodeStored(
        SharedSettings(apiVersion: Int.max, documentControlMode: text, analyticalDescription: true)),
    ] {
      // Each decodes as JSON (a smoke check; the byte comparisons above are the proof).
      _ = try JSONSerialization.jsonObject(with: document)
    }
    try same(CompanyCentersRecordV1(centers: [text, "", "B", "A"]))
    try same(CompanyCentersRecordV1(centers: []))
    try same(APIAuthorizationRecordV1(companyName: text, operatorLogin: text))
  }

  struct Shapes: Encodable {
    struct Inner: Encodable {
      var b: String = "b"
      var a: Int64 = .min
      var empty: [String] = []
    }

    struct Nothing: Encodable {}

    var zeta: [Inner] = [Inner(), Inner(b: "/\\\"", a: .max)]
    var Alpha: Int = -1
    var alpha: UInt8 = 255
    var maybe: String? = nil
    var present: Inner? = Inner()
    var map: [String: Int] = ["b": 2, "a": 1, "B": 0, "ą": 3, "": 4]
    var numbered: [Int: String] = [10: "ten", 2: "two"]
    var nothing = Nothing()
    var flags: [Bool] = [true, false]
    var nested: [[String]] = [[], ["x"]]

    func encode(to encoder: any Encoder) throws {
      enum Keys: String, CodingKey {
        case zeta, Alpha, alpha, maybe, present, map, numbered, nothing, flags, nested, twice, explicitNil
      }
      var container = encoder.container(keyedBy: Keys.self)
      try container.encode(zeta, forKey: .zeta)
      try container.encode(Alpha, forKey: .Alpha)
      try container.encode(alpha, forKey: .alpha)
      try container.encodeIfPresent(maybe, forKey: .maybe)
      try container.encodeIfPresent(present, forKey: .present)
      try container.encode(map, forKey: .map)
      try container.encode(numbered, forKey: .numbered)
      try container.encode(nothing, forKey: .nothing)
      try container.encode(flags, forKey: .flags)
      try container.encode(nested, forKey: .nested)
      try container.encode("first", forKey: .twice)
      try container.encode("second", forKey: .twice)
      try container.encodeNil(forKey: .explicitNil)
      // The same container asked for again (CompanyRecordV2 does so over V1's fields).
      var again = encoder.container(keyedBy: Keys.self)
      try again.encode(true, forKey: .nothing)
    }
  }

  @Test("shapes records may take: key order by bytes, integers at their limits, nesting, a key written twice, nil")
  func shapes() throws {
    try same(Shapes())
    try same(Shapes.Inner())
    try same(Shapes.Nothing())
    try same([Shapes.Inner()])
  }

  @Test("types JSONEncoder formats by its strategies are left to it, and the result is still its bytes")
  func fallback() throws {
    struct Timed: Encodable {
      var at = Date(timeIntervalSince1970: 1_700_000_000.25)
      var ratio = 0.1
      var data = Data([1, 2, 3])
    }
    #expect(throws: SortedJSONEncoder.Unsupported.self) { _ = try SortedJSONEncoder.encode(Timed()) }
    #expect(try StoredJSON.encode(Timed()) == StoredJSON.foundationEncode(Timed()))
  }
}
