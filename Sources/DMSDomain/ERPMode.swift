/// The ERP product a company works with, rule ERP-1.
public enum ERPMode: String, Sendable, CaseIterable {
  case erpXL = "ERP_XL"
  case optima = "OPTIMA"
  case altum = "ALTUM"
  case enterprise = "ENTERPRISE"
  case standalone = "STANDALONE"
}
