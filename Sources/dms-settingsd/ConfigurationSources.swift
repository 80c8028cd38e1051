import Configuration
import DMSRPC
import Foundation

/// Reads the three sources of configuration (a JSON file, the environment, the command
/// line) into one `ConfigReader`, command line over environment over file.
///
/// Every key written anywhere must be one of `ConfigurationKeys.all`; an unknown key,
/// a broken file or a stray argument is collected and reported together, so that an
/// operator fixes them in one go (CFG-10).
struct ConfigurationSources {
  /// The values of the short options (`--port` is `server.port`), over everything else.
  var options: [String: String] = [:]
  /// The arguments the command line did not recognise as options: `--key value` pairs.
  var arguments: [String] = []
  var environment: [String: String] = ProcessInfo.processInfo.environment
  /// The JSON file, if any.
  var filePath: String?

  private static let byOption = Dictionary(
    uniqueKeysWithValues: ConfigurationKeys.all.map { (ConfigurationKeys.option($0), $0) })
  private static let byEnvironmentName = Dictionary(
    uniqueKeysWithValues: ConfigurationKeys.all.map { (ConfigurationKeys.environmentName($0), $0) })

  /// The reader over every source; throws `ConfigurationError` naming every problem.
  func reader() throws -> ConfigReader {
    var problems: [String] = []
    let file = filePath.map { fileValues($0, problems: &problems) } ?? [:]
    let environment = environmentValues(problems: &problems)
    let commandLine = commandLineValues(problems: &problems)
    guard problems.isEmpty else {
      throw ConfigurationError(description: problems.joined(separator: "\n"))
    }
    func provider(_ name: String, _ values: [String: String]) -> InMemoryProvider {
      InMemoryProvider(
        name: name,
        values: Dictionary(
          uniqueKeysWithValues: values.map { key, value in
            (
              AbsoluteConfigKey(key.split(separator: ".").map(String.init)),
              ConfigValue(.string(value), isSecret: ConfigurationKeys.secret.contains(key))
            )
          }))
    }
    return ConfigReader(providers: [
      provider("options", options),
      provider("command line", commandLine),
      provider("environment", environment),
      provider("file", file),
    ])
  }

  /// `--key value` and `--key=value`; a key with no value is `true` (`--settings-multi-company`).
  private func commandLineValues(problems: inout [String]) -> [String: String] {
    var values: [String: String] = [:]
    var index = 0
    while index < arguments.count {
      let argument = arguments[index]
      index += 1
      guard argument.hasPrefix("--"), argument.count > 2 else {
        problems.append(
          "unexpected argument \"\(argument)\": a configuration key is written --key value, such as --server-port 7411")
        continue
      }
      let parts = argument.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
      let name = String(parts[0])
      var value = parts.count == 2 ? String(parts[1]) : nil
      if value == nil, index < arguments.count, !arguments[index].hasPrefix("--") {
        value = arguments[index]
        index += 1
      }
      guard let key = Self.byOption[name] else {
        let nearest = ConfigurationKeys.nearest(to: name, among: Array(Self.byOption.keys).sorted())
        problems.append(
          "unknown configuration key \(name) on the command line; the nearest known key is \(nearest) (CFG-10, see docs/CONFIGURATION.md)"
        )
        continue
      }
      values[key] = value ?? "true"
    }
    return values
  }

  /// The server's own variables (`SERVER_PORT`); under its prefixes, nothing else.
  private func environmentValues(problems: inout [String]) -> [String: String] {
    var values: [String: String] = [:]
    for (name, value) in environment.sorted(by: { $0.key < $1.key })
    where ConfigurationKeys.environmentPrefixes.contains(where: { name.hasPrefix($0) }) {
      guard let key = Self.byEnvironmentName[name] else {
        let nearest = ConfigurationKeys.nearest(to: name, among: Array(Self.byEnvironmentName.keys).sorted())
        problems.append(
          "unknown environment variable \(name) (the prefix \(name.prefix { $0 != "_" })_ belongs to dms-settingsd); "
            + "the nearest known key is \(nearest) (CFG-10, see docs/CONFIGURATION.md)")
        continue
      }
      values[key] = value
    }
    return values
  }

  /// The file's keys, nested objects or dotted names; every fault with its line and column.
  private func fileValues(_ path: String, problems: inout [String]) -> [String: String] {
    // Through a file handle: `--config <(generate-config)` is a pipe, which
    // FileManager.contents(atPath:) does not read.
    guard let handle = FileHandle(forReadingAtPath: path), let data = try? handle.readToEnd() ?? Data() else {
      var isFolder: ObjCBool = false
      let exists = FileManager.default.fileExists(atPath: path, isDirectory: &isFolder)
      let reason =
        !exists ? "does not exist" : isFolder.boolValue ? "is a folder, not a file" : "cannot be read (permissions?)"
      problems.append("the configuration file \(path) \(reason)")
      return [:]
    }
    let document: JSONDocument
    do {
      document = try JSONDocument(parsing: [UInt8](data))
    } catch let error as JSONDocument.SyntaxError {
      problems.append("the configuration file \(path) is not valid JSON: \(error.position): \(error.message)")
      return [:]
    } catch {
      problems.append("the configuration file \(path) is not valid JSON: \(error)")
      return [:]
    }
    guard case .object(let members) = document.root.value else {
      problems.append(
        "the configuration file \(path), \(document.root.position): expected an object such as "
          + "{\"server\": {\"port\": 7411}}, found \(document.root.value.kindName)")
      return [:]
    }
    var values: [String: String] = [:]
    func walk(_ members: [JSONDocument.Member], prefix: String) {
      for member in members {
        let key = prefix.isEmpty ? member.key : "\(prefix).\(member.key)"
        let at = "the configuration file \(path), \(member.keyPosition)"
        if ConfigurationKeys.all.contains(key) {
          do {
            if let text = try Self.text(member.node.value) { values[key] = text }
          } catch {
            problems.append("\(at): \(key) \(error.description)")
          }
        } else if let section = ConfigurationKeys.all.first(where: { $0.hasPrefix(key + ".") }) {
          guard case .object(let inner) = member.node.value else {
            problems.append(
              "\(at): \(key) must be an object of keys such as {\"\(section.dropFirst(key.count + 1))\": …}, "
                + "not \(member.node.value.kindName)")
            continue
          }
          walk(inner, prefix: key)
        } else {
          let nearest = ConfigurationKeys.nearest(to: key, among: ConfigurationKeys.all)
          problems.append(
            "\(at): unknown key \(key); the nearest known key is \(nearest) (CFG-10, see docs/CONFIGURATION.md)")
        }
      }
    }
    walk(members, prefix: "")
    return values
  }

  /// A value as the text the typed readers parse (nil for null: the default); a list
  /// joined with commas. Throws why it cannot be a configuration value.
  private static func text(_ value: JSONDocument.Value) throws(ConfigurationError) -> String? {
    if let scalar = scalar(value) { return scalar }
    switch value {
    case .null:
      return nil
    case .array(let nodes):
      var items: [String] = []
      for node in nodes {
        guard let item = scalar(node.value) else {
          throw ConfigurationError(
            description: "must be a list of plain values (\(node.position) holds \(node.value.kindName))")
        }
        items.append(item)
      }
      return items.joined(separator: ",")
    default:
      throw ConfigurationError(description: "must be a value, not an object")
    }
  }

  /// A string, number or boolean as text; nil for anything else.
  private static func scalar(_ value: JSONDocument.Value) -> String? {
    switch value {
    case .string(let text), .number(let text): text
    case .bool(let flag): flag ? "true" : "false"
    default: nil
    }
  }
}
