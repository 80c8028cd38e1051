import DMSStorage
import Testing

@Suite("storage.postgres.url")
struct PostgresOptionsTests {
  func endpoint(_ url: String) throws -> PostgresOptions.Endpoint {
    try PostgresOptions.Endpoint(url: url, key: "storage.postgres.url")
  }

  func refusal(_ url: String) -> String {
    do {
      _ = try endpoint(url)
      return "accepted"
    } catch {
      return "\(error)"
    }
  }

  @Test("an IPv6 host is written in brackets and used without them")
  func ipv6() throws {
    let v6 = try endpoint("postgres://app:pw@[::1]:5433/settings?sslmode=disable")
    #expect(v6.host == "::1")
    #expect(v6.port == 5433)
    #expect(v6.description == "postgres://app@[::1]:5433/settings")
    #expect(try endpoint("postgresql://app@[fd00::5]/x").host == "fd00::5")
    #expect(try endpoint("postgres://app@ignored/x?host=[::1]").host == "::1")
    let v4 = try endpoint("postgres://app@db.internal/x")
    #expect(v4.description == "postgres://app@db.internal:5432/x")
  }

  @Test("libpq's connect_timeout and application_name are taken, within limits")
  func libpqParameters() throws {
    let given = try endpoint("postgres://app@db/x?connect_timeout=3&application_name=dms-eu-1")
    #expect(given.connectTimeout == .seconds(3))
    #expect(given.applicationName == "dms-eu-1")
    let plain = try endpoint("postgres://app@db/x")
    #expect(plain.connectTimeout == nil && plain.applicationName == nil)
    #expect(refusal("postgres://app@db/x?connect_timeout=0").contains("connect_timeout 0 is not a whole number"))
    #expect(refusal("postgres://app@db/x?connect_timeout=2.5").contains("connect_timeout 2.5"))
    #expect(refusal("postgres://app@db/x?application_name=").contains("application_name must be 1–63 bytes"))
  }

  @Test("a password with reserved characters is percent-decoded and never in the description")
  func password() throws {
    let decoded = try endpoint("postgres://app:p%40ss%2Fw0rd@db/x")
    #expect(decoded.password == "p@ss/w0rd")
    #expect(!decoded.description.contains("p@ss") && !decoded.description.contains("%40"))
  }
}
