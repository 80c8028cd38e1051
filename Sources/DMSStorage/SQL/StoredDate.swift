import Foundation

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// Dates as both backends store them: text, "yyyy-MM-dd HH:mm:ss.SSS" in UTC (GRDB's
/// format, which sorts as it reads), formatted without `DateFormatter`: a write stores
/// several, on the single writer.
enum StoredDate {
  static func text(_ date: Date) -> String {
    let interval = date.timeIntervalSince1970
    var seconds = time_t(interval.rounded(.down))
    var milliseconds = Int(((interval - Double(seconds)) * 1000).rounded(.down))
    if milliseconds >= 1000 {
      seconds += 1
      milliseconds -= 1000
    }
    var parts = tm()
    gmtime_r(&seconds, &parts)
    func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
    let millis = milliseconds < 10 ? "00\(milliseconds)" : milliseconds < 100 ? "0\(milliseconds)" : "\(milliseconds)"
    return
      "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday)) \(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)).\(millis)"
  }

  /// The date of a stored text: "yyyy-MM-dd HH:mm[:ss[.fff]]" (or with a "T"), UTC.
  static func parse(_ text: String) -> Date? {
    let bytes = Array(text.utf8)
    var index = 0
    func number(_ digits: Int) -> Int? {
      guard index + digits <= bytes.count else { return nil }
      var value = 0
      for byte in bytes[index..<index + digits] {
        guard byte >= 48, byte <= 57 else { return nil }
        value = value * 10 + Int(byte - 48)
      }
      index += digits
      return value
    }
    func skip(_ allowed: Set<UInt8>) -> Bool {
      guard index < bytes.count, allowed.contains(bytes[index]) else { return false }
      index += 1
      return true
    }
    guard let year = number(4), skip([45]), let month = number(2), skip([45]), let day = number(2),
      skip([32, 84]), let hour = number(2), skip([58]), let minute = number(2)
    else { return nil }
    var second = 0
    // The fraction as digits over a power of ten: milliseconds read back as the same
    // `Double` a transaction's `now` was (its milliseconds over 1000).
    var fraction: Int64 = 0
    var scale: Int64 = 1
    if skip([58]) {
      guard let value = number(2) else { return nil }
      second = value
      if skip([46]) {
        while index < bytes.count, bytes[index] >= 48, bytes[index] <= 57 {
          if scale < 1_000_000_000 {
            fraction = fraction * 10 + Int64(bytes[index] - 48)
            scale *= 10
          }
          index += 1
        }
      }
    }
    guard index == bytes.count else { return nil }
    var parts = tm()
    parts.tm_year = Int32(year - 1900)
    parts.tm_mon = Int32(month - 1)
    parts.tm_mday = Int32(day)
    parts.tm_hour = Int32(hour)
    parts.tm_min = Int32(minute)
    parts.tm_sec = Int32(second)
    return Date(timeIntervalSince1970: Double(Int64(timegm(&parts)) * scale + fraction) / Double(scale))
  }
}
