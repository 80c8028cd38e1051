/// A Polish tax identification number (NIP), rule INT-1 (and ERP-13).
public enum NIP {
  private static let weights = [6, 5, 7, 2, 3, 4, 5, 6, 7]

  /// The 10 digits of `text` once a `PL` prefix, spaces and dashes are removed, if
  /// that leaves exactly 10 digits.
  public static func digits(of text: String) -> String? {
    var rest = Substring(text.trimmingWhitespace())
    if rest.uppercased().hasPrefix("PL") { rest = rest.dropFirst(2) }
    let kept = rest.filter { $0 != " " && $0 != "-" }
    guard kept.count == 10, kept.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
    return String(kept)
  }

  /// Whether `text` is a valid NIP: 10 digits whose first nine, weighted
  /// 6,5,7,2,3,4,5,6,7 and summed, are congruent mod 11 to the tenth (a remainder of
  /// 10 never matches).
  public static func isValid(_ text: String) -> Bool {
    guard let digits = digits(of: text) else { return false }
    let values = digits.compactMap(\.wholeNumberValue)
    let sum = zip(values.prefix(9), weights).reduce(0) { $0 + $1.0 * $1.1 }
    return sum % 11 == values[9]
  }
}

extension String {
  /// The string without leading and trailing white space.
  func trimmingWhitespace() -> Substring {
    let start = firstIndex { !$0.isWhitespace } ?? endIndex
    let end = lastIndex { !$0.isWhitespace }.map(index(after:)) ?? start
    return self[start..<end]
  }
}
