/// Single- or multi-company mode, CFG-1.
public enum ServerMode: String, Sendable {
  /// MultiCompany=false: APIAUTH (and later DOM, INT) exist, for one implicit company.
  case singleCompany = "single"
  /// MultiCompany=true: ERP connections define the companies.
  case multiCompany = "multi"
}
