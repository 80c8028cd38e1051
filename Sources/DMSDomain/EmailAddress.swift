/// An e-mail address as RFC 5322 writes an `addr-spec` in its common form:
/// `local@domain`, both dot-atoms (letters, digits and ``!#$%&'*+/=?^_`{|}~-``, dots
/// between atoms), the domain's labels letters, digits and hyphens (or an address
/// literal in brackets). Quoted local parts and comments are refused: mail systems
/// rarely accept them, and an administrator never needs one. Non-ASCII letters are
/// accepted (RFC 6531).
public enum EmailAddress {
  /// The longest address accepted (RFC 5321's path limit less the brackets).
  public static let maxLength = 254

  /// Whether `text` is an address of that form.
  public static func isValid(_ text: String) -> Bool {
    guard text.count <= maxLength, let at = text.lastIndex(of: "@") else { return false }
    let local = text[..<at]
    let domain = text[text.index(after: at)...]
    guard local.utf8.count <= 64, isDotAtom(local) else { return false }
    if domain.hasPrefix("["), domain.hasSuffix("]") {
      let literal = domain.dropFirst().dropLast()
      return !literal.isEmpty && literal.allSatisfy { $0.isASCII && ($0.isHexDigit || $0 == "." || $0 == ":") }
    }
    return isDomainName(domain)
  }

  /// Whether `text` is a domain name: dot-separated labels of letters, digits and
  /// hyphens, none empty, longer than 63 or beginning or ending with a hyphen.
  static func isDomainName(_ text: some StringProtocol) -> Bool {
    !text.isEmpty
      && text.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
        !label.isEmpty && label.count <= 63 && label.first != "-" && label.last != "-"
          && label.allSatisfy { $0 == "-" || $0.isLetter || $0.isNumber }
      }
  }

  private static let atomSymbols = Set("!#$%&'*+/=?^_`{|}~-")

  private static func isDotAtom(_ text: Substring) -> Bool {
    let atoms = text.split(separator: ".", omittingEmptySubsequences: false)
    return !text.isEmpty
      && atoms.allSatisfy { atom in
        !atom.isEmpty && atom.allSatisfy { $0.isLetter || $0.isNumber || atomSymbols.contains($0) }
      }
  }
}
