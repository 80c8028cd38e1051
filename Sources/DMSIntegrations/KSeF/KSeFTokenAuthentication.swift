import CryptoExtras
import DMSHTTP
import Foundation
import NIOSSL

/// Where KSeF is and how long to wait for it (INT-4, INT-4b).
public struct KSeFEndpoint: Sendable, Hashable {
  /// The API's base URL, ending in `/v2` (INT-4b's for the environment of CFG-2).
  public var baseURL: String
  /// PEM certificates to trust instead of the system's (a test environment's CA).
  public var trustedCertificates: String
  /// Seconds each request may take.
  public var requestTimeout: Double
  /// Seconds the whole sign-in may take, polling included.
  public var maxWait: Double
  /// Seconds between two looks at a sign-in in progress.
  public var pollInterval: Double

  public init(
    baseURL: String, trustedCertificates: String = "", requestTimeout: Double = 15, maxWait: Double = 30,
    pollInterval: Double = 0.5
  ) {
    self.baseURL = baseURL
    self.trustedCertificates = trustedCertificates
    self.requestTimeout = requestTimeout
    self.maxWait = maxWait
    self.pollInterval = pollInterval
  }
}

/// The steps of INT-4b's token sign-in, in order.
public enum KSeFStep: String, Sendable, Hashable, CaseIterable {
  /// `POST /auth/challenge`.
  case challenge
  /// `GET /security/public-key-certificates`, and the choice of a KsefTokenEncryption one.
  case publicKey = "public_key"
  /// `POST /auth/ksef-token` with the encrypted token.
  case ksefToken = "ksef_token"
  /// `GET /auth/{referenceNumber}` until done.
  case status
  /// `POST /auth/token/redeem`.
  case redeem
}

/// A sign-in that worked: when the token pair it obtained ends. The tokens themselves
/// are dropped (a test keeps none).
public struct KSeFSignIn: Sendable, Hashable {
  public var referenceNumber: String
  public var accessTokenValidUntil: String
  public var refreshTokenValidUntil: String
}

/// Why the sign-in stopped: at which step, with what KSeF said (its status or exception
/// code, description and details, as the administrator must see them), or what failed
/// below HTTP. Never a token.
public struct KSeFFailure: Error, Sendable, Hashable, CustomStringConvertible {
  public var step: KSeFStep
  /// The HTTP status (0: no answer).
  public var httpStatus: Int
  /// KSeF's code: a sign-in status (`450`), an exception code (`21301`), the problem's
  /// status; or the transport failure's kind (`timeout`, `tls`, `resolve`, `connect`).
  public var code: String
  public var description: String
  public var details: [String]

  public init(step: KSeFStep, httpStatus: Int, code: String, description: String, details: [String] = []) {
    self.step = step
    self.httpStatus = httpStatus
    self.code = code
    self.description = description
    self.details = details
  }
}

/// INT-4b: the KSeF 2.0 sign-in with a KSeF token, endpoint by endpoint. Blocking (HTTP
/// through libcurl, and sleeps between polls): run it on threads of its own.
public struct KSeFTokenAuthentication: Sendable {
  public let endpoint: KSeFEndpoint

  public init(endpoint: KSeFEndpoint) {
    self.endpoint = endpoint
  }

  /// Signs in as the holder of `token` for the company `nip` and redeems the tokens once;
  /// `now` is the clock that picks a currently valid encryption certificate.
  public func signIn(nip: String, token: String, now: Date = Date()) throws(KSeFFailure) -> KSeFSignIn {
    var session = self
    session.deadline = ContinuousClock.now + .milliseconds(Int64(endpoint.maxWait * 1000))
    return try session.run(nip: nip, token: token, now: now)
  }

  /// When the whole sign-in must end: no request outlives it.
  private var deadline = ContinuousClock.now

  private func run(nip: String, token: String, now: Date) throws(KSeFFailure) -> KSeFSignIn {

    // 1. The challenge, with its time in milliseconds.
    let challengeAnswer = try send(.challenge, "POST", "/auth/challenge", body: Data(), expect: [200])
    guard let challenge = challengeAnswer["challenge"] as? String, !challenge.isEmpty,
      let timestampMs = Self.integer(challengeAnswer["timestampMs"])
    else { throw malformed(.challenge, "no challenge and timestampMs") }

    // 2. A KsefTokenEncryption certificate valid now; its public key.
    let (publicKey, publicKeyID) = try encryptionKey(now: now)

    // 3. "token|timestampMs", RSA-OAEP with SHA-256 (MGF1 SHA-256, no label), base64.
    let encrypted: Data
    do {
      encrypted = try publicKey.encrypt(Data("\(token)|\(timestampMs)".utf8), padding: .PKCS1_OAEP_SHA256)
    } catch {
      throw KSeFFailure(
        step: .publicKey, httpStatus: 0, code: "encryption",
        description: "the token could not be encrypted with KSeF's public key: \(error)")
    }
    var request: [String: Any] = [
      "challenge": challenge, "contextIdentifier": ["type": "Nip", "value": nip],
      "encryptedToken": encrypted.base64EncodedString(),
    ]
    if let publicKeyID { request["publicKeyId"] = publicKeyID }
    let started202 = try send(
      .ksefToken, "POST", "/auth/ksef-token", body: try? JSONSerialization.data(withJSONObject: request),
      expect: [202, 200])
    guard let reference = started202["referenceNumber"] as? String, !reference.isEmpty,
      let authentication = (started202["authenticationToken"] as? [String: Any])?["token"] as? String,
      !authentication.isEmpty,
      reference.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" })
    else { throw malformed(.ksefToken, "no referenceNumber and authenticationToken") }
    let bearer = [("Authorization", "Bearer \(authentication)")]

    // 4. Poll the sign-in: 100 in progress, 200 done, anything else refused.
    while true {
      let answer = try send(.status, "GET", "/auth/\(reference)", headers: bearer, expect: [200])
      guard let status = answer["status"] as? [String: Any], let code = Self.integer(status["code"]) else {
        throw malformed(.status, "no status code")
      }
      if code == 200 { break }
      guard code == 100 else {
        throw KSeFFailure(
          step: .status, httpStatus: 200, code: String(code), description: status["description"] as? String ?? "",
          details: Self.strings(status["details"]))
      }
      guard ContinuousClock.now + .milliseconds(Int64(endpoint.pollInterval * 1000)) < deadline else {
        throw KSeFFailure(
          step: .status, httpStatus: 200, code: "100",
          description:
            "the sign-in was still in progress after \(Int(endpoint.maxWait)) s: \(status["description"] as? String ?? "")"
        )
      }
      Thread.sleep(forTimeInterval: endpoint.pollInterval)
    }

    // 5. Redeem once: the access and refresh tokens (not kept).
    let tokens = try send(.redeem, "POST", "/auth/token/redeem", headers: bearer, body: Data(), expect: [200])
    guard let access = tokens["accessToken"] as? [String: Any], access["token"] is String,
      let refresh = tokens["refreshToken"] as? [String: Any]
    else { throw malformed(.redeem, "no accessToken and refreshToken") }
    return KSeFSignIn(
      referenceNumber: reference, accessTokenValidUntil: access["validUntil"] as? String ?? "",
      refreshTokenValidUntil: refresh["validUntil"] as? String ?? "")
  }

  /// The public key of the KsefTokenEncryption certificate valid at `now` (the newest,
  /// during a rotation), and its id.
  func encryptionKey(now: Date) throws(KSeFFailure) -> (_RSA.Encryption.PublicKey, String?) {
    let answer = try sendForArray(.publicKey, "/security/public-key-certificates")
    let usable = answer.compactMap { entry -> (Date, [UInt8], String?)? in
      guard Self.strings(entry["usage"]).contains("KsefTokenEncryption"),
        let from = Self.date(entry["validFrom"]), let to = Self.date(entry["validTo"]), from <= now, now < to,
        let der = (entry["certificate"] as? String).flatMap({ Data(base64Encoded: $0) })
      else { return nil }
      return (from, [UInt8](der), entry["publicKeyId"] as? String)
    }
    guard let chosen = usable.max(by: { $0.0 < $1.0 }) else {
      throw KSeFFailure(
        step: .publicKey, httpStatus: 200, code: "no_certificate",
        description: "KSeF lists no KsefTokenEncryption certificate valid now")
    }
    do {
      let certificate = try NIOSSLCertificate(bytes: chosen.1, format: .der)
      let spki = try certificate.extractPublicKey().toSPKIBytes()
      return (try _RSA.Encryption.PublicKey(derRepresentation: spki), chosen.2)
    } catch {
      throw KSeFFailure(
        step: .publicKey, httpStatus: 200, code: "bad_certificate",
        description: "KSeF's KsefTokenEncryption certificate holds no usable RSA public key (\(error))")
    }
  }

  // MARK: HTTP

  private func exchange(
    _ step: KSeFStep, _ method: String, _ path: String, headers: [(String, String)], body: Data?
  ) throws(KSeFFailure) -> HTTPResponse {
    var all = [("Accept", "application/json")] + headers
    if body != nil { all.append(("Content-Type", "application/json")) }
    let base = endpoint.baseURL.hasSuffix("/") ? String(endpoint.baseURL.dropLast()) : endpoint.baseURL
    let left = ContinuousClock.now.duration(to: deadline)
    let timeout = min(
      endpoint.requestTimeout,
      max(Double(left.components.seconds) + Double(left.components.attoseconds) / 1e18, 0.5))
    do {
      return try HTTPClient.perform(
        HTTPRequest(
          method: method, url: base + path, headers: all, body: body,
          trustedCertificates: endpoint.trustedCertificates, timeout: timeout))
    } catch {
      throw KSeFFailure(step: step, httpStatus: 0, code: error.kind.rawValue, description: error.message)
    }
  }

  private func send(
    _ step: KSeFStep, _ method: String, _ path: String, headers: [(String, String)] = [], body: Data? = nil,
    expect: Set<Int>
  ) throws(KSeFFailure) -> [String: Any] {
    let response = try exchange(step, method, path, headers: headers, body: body)
    guard expect.contains(response.status) else { throw Self.refusal(step, response) }
    guard let object = response.jsonObject else { throw malformed(step, "not a JSON object") }
    return object
  }

  private func sendForArray(_ step: KSeFStep, _ path: String) throws(KSeFFailure) -> [[String: Any]] {
    let response = try exchange(step, "GET", path, headers: [], body: nil)
    guard response.status == 200 else { throw Self.refusal(step, response) }
    guard let array = (try? JSONSerialization.jsonObject(with: response.body)) as? [[String: Any]] else {
      throw malformed(step, "not a JSON array")
    }
    return array
  }

  private func malformed(_ step: KSeFStep, _ what: String) -> KSeFFailure {
    KSeFFailure(
      step: step, httpStatus: 200, code: "malformed",
      description: "KSeF's answer to \(step.rawValue) is not as INT-4b describes it: \(what)")
  }

  /// A refusal in the shapes INT-4b lists: the exception list, problem+json, 429 with
  /// Retry-After, or a bare status.
  static func refusal(_ step: KSeFStep, _ response: HTTPResponse) -> KSeFFailure {
    let status = response.status
    let json = response.jsonObject ?? [:]
    if let exception = json["exception"] as? [String: Any],
      let list = exception["exceptionDetailList"] as? [[String: Any]], let first = list.first
    {
      return KSeFFailure(
        step: step, httpStatus: status, code: integer(first["exceptionCode"]).map(String.init) ?? "",
        description: first["exceptionDescription"] as? String ?? "",
        details: list.flatMap { strings($0["details"]) }
          + list.dropFirst().map {
            "\(integer($0["exceptionCode"]).map(String.init) ?? ""): \($0["exceptionDescription"] as? String ?? "")"
          })
    }
    if status == 429 {
      let after = response.header("Retry-After").map { " (Retry-After: \($0))" } ?? ""
      return KSeFFailure(
        step: step, httpStatus: 429, code: "429",
        description: "KSeF limits the requests of this client: try again later\(after)",
        details: strings(json["detail"]))
    }
    if let title = json["title"] as? String {
      // application/problem+json (RFC 9457): 401, 403, 410.
      return KSeFFailure(
        step: step, httpStatus: status, code: integer(json["status"]).map(String.init) ?? String(status),
        description: title, details: strings(json["detail"]))
    }
    return KSeFFailure(
      step: step, httpStatus: status, code: String(status),
      description: "KSeF answered \(step.rawValue) with HTTP \(status)")
  }

  // MARK: JSON values

  static func integer(_ value: Any?) -> Int64? {
    if let number = value as? NSNumber { return number.int64Value }
    if let text = value as? String { return Int64(text) }
    return nil
  }

  /// A string or an array of strings, as a list (details come both ways).
  static func strings(_ value: Any?) -> [String] {
    if let text = value as? String { return [text] }
    return (value as? [Any])?.compactMap { $0 as? String } ?? []
  }

  /// An ISO 8601 time, with or without fractional seconds.
  static func date(_ value: Any?) -> Date? {
    guard let text = value as? String else { return nil }
    let formatter = ISO8601DateFormatter()
    formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    if let date = formatter.date(from: text) { return date }
    formatter.formatOptions = [.withInternetDateTime]
    return formatter.date(from: text)
  }
}
