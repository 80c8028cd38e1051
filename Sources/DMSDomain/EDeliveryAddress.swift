/// An e-Delivery (e-Doręczenia) mailbox address, rule INT-5 (and ERP-15):
/// `AE:PL-NNNNN-NNNNN-XXXXX-NN`, N a digit, X a capital letter.
public enum EDeliveryAddress {
  /// Whether `text` has the form `AE:PL-NNNNN-NNNNN-XXXXX-NN`.
  public static func isValid(_ text: String) -> Bool {
    let chars = Array(text.utf8)
    let pattern = Array("AE:PL-#####-#####-AAAAA-##".utf8)
    guard chars.count == pattern.count else { return false }
    for (c, p) in zip(chars, pattern) {
      switch p {
      case UInt8(ascii: "#"): guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(c) else { return false }
      case UInt8(ascii: "A"): guard (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(c) else { return false }
      default: guard c == p else { return false }
      }
    }
    return true
  }
}
