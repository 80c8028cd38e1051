import Foundation
import Testing

@testable import DMSStorage

@Suite("Read cache")
struct ReadCacheTests {
  func entry(_ value: String, revision: Int64) -> ReadCache.Entry {
    ReadCache.Entry(value: value, revision: revision, secretsSet: [], updatedAt: Date())
  }

  @Test("a reader's fill is dropped when a write happened during its read")
  func staleFillDropped() {
    let cache = ReadCache()
    let generation = cache.generation
    cache.documentWritten(companyID: 1, area: "a", entry("new", revision: 2))
    cache.fillDocument(companyID: 1, area: "a", entry("old", revision: 1), generation: generation)
    #expect(cache.document(companyID: 1, area: "a")?.value as? String == "new")
  }

  @Test("a write that reaches the cache late does not replace a newer revision")
  func newerRevisionKept() {
    let cache = ReadCache()
    cache.documentWritten(companyID: 1, area: "a", entry("rev 3", revision: 3))
    cache.documentWritten(companyID: 1, area: "a", entry("rev 2", revision: 2))
    #expect(cache.document(companyID: 1, area: "a")?.revision == 3)
  }

  @Test("deleting a company forgets its code and documents; a stale registry fill is dropped")
  func deleteForgets() {
    let cache = ReadCache()
    let key = CompanyKey(id: 7, code: "ACME")
    cache.companyCreated(codeKey: "ACME", key)
    cache.documentWritten(companyID: 7, area: "a", entry("x", revision: 1))
    let generation = cache.generation
    cache.companyDeleted(key, codeKey: "ACME")
    cache.fillCompany(codeKey: "ACME", key, generation: generation)
    #expect(cache.company(codeKey: "ACME") == nil)
    #expect(cache.document(companyID: 7, area: "a") == nil)
  }
}
