// YAML configs over Codable defaults: a file and `--set key=value` overrides are merged into the defaults'
// node tree, every key checked against the known ones, then the result is decoded. Works for any config type.
import Foundation
import Yams

/// A config problem, named by its dotted key.
public enum ConfigError: Error, CustomStringConvertible, Equatable {
  /// A key no config section has; `suggestion` is the closest known key by edit distance.
  case unknownKey(key: String, suggestion: String?, source: String)
  /// `--set` text without `=`, or with an empty key.
  case malformedOverride(String)
  /// A value of the wrong type or an impossible setting.
  case invalidValue(key: String, reason: String)
  /// The YAML text could not be parsed.
  case unreadable(source: String, reason: String)
  /// The YAML text holds no keys at all (empty, or only comments and whitespace): refused rather than silently run
  /// on the code's built-in defaults (issue 14 item 10).
  case empty(source: String)

  public var description: String {
    switch self {
    case let .unknownKey(key, suggestion, source):
      "Unknown config key '\(key)' in \(source)."
        + (suggestion.map { " Did you mean '\($0)'?" } ?? "")
    case let .malformedOverride(text):
      "The override '\(text)' is not of the form key=value (dotted keys, e.g. optimizer.lr=0.1)."
    case let .invalidValue(key, reason):
      "Config key '\(key)' \(reason)."
    case let .unreadable(source, reason):
      "Cannot read the config \(source): \(reason)."
    case let .empty(source):
      "The config \(source) is empty (no keys, only comments or whitespace); give a config with at least one key, "
        + "or omit --config to use the default (embedded) config."
    }
  }
}

public enum ConfigYAML {
  /// Decodes `Config` from `defaults`, overlaid with `yaml` (if any) and then each `key=value` in `overrides`.
  /// A `yaml` that holds no keys (empty, whitespace, comments, or `{}`) throws `ConfigError.empty`; pass nil for
  /// the defaults.
  /// - Parameter source: names the YAML text in errors, e.g. its path.
  public static func load<Config: Codable>(_ type: Config.Type, defaults: Config, yaml: String?, source: String,
                                           overrides: [String] = []) throws -> Config {
    var tree = try node(of: defaults)
    let known = leafKeys(of: tree)
    if let yaml {
      // An empty file (or one of whitespace, comments and document markers only) is refused for every config type:
      // running on the code's defaults because a file was truncated or left blank is a silent surprise (issue 14
      // item 10). Checked on the text first, since YAML rejects a tab-indented blank line as a scanner error.
      if holdsNoContent(yaml) { throw ConfigError.empty(source: source) }
      try refuseAnchors(in: yaml, source: source)
      let parsed: Node?
      do { parsed = try Yams.compose(yaml: yaml) } catch {
        throw ConfigError.unreadable(source: source, reason: "\(error)")
      }
      guard let parsed else { throw ConfigError.empty(source: source) }
      guard let mapping = parsed.mapping else {
        throw ConfigError.unreadable(source: source, reason: "the top level must be a mapping of keys")
      }
      if mapping.isEmpty { throw ConfigError.empty(source: source) }
      tree = try merge(parsed, into: tree, path: [], known: known, source: source)
    }
    for text in overrides {
      guard let equals = text.firstIndex(of: "="), equals != text.startIndex else {
        throw ConfigError.malformedOverride(text)
      }
      let key = String(text[..<equals]).trimmingCharacters(in: .whitespaces)
      let valueText = String(text[text.index(after: equals)...])
      guard known.contains(key) else {
        throw ConfigError.unknownKey(key: key, suggestion: closest(to: key, in: known), source: "--set")
      }
      try refuseAnchors(in: valueText, source: "--set \(key)")
      let value = (try? Yams.compose(yaml: valueText)) ?? nil
      tree = replacing(tree, at: key.split(separator: ".").map(String.init),
                       with: value ?? Node(valueText, Tag(.str), .plain))
    }
    do {
      return try YAMLDecoder().decode(type, from: tree)
    } catch let error as DecodingError {
      let key = dottedKey(of: error)
      throw ConfigError.invalidValue(key: key, reason: wrongTypeReason(error, key: key))
    }
  }

  /// What to tell the user about a value that does not decode: a list key given a scalar (`--set steps=900,1100`
  /// reads as one string) gets the list syntax; anything else the decoder's own account.
  static func wrongTypeReason(_ error: DecodingError, key: String) -> String {
    if case let .typeMismatch(_, context) = error, context.debugDescription.contains("Sequence") {
      return "must be a list, written [a, b, …] (in YAML `\(key): [a, b]`; on the command line "
        + "--set '\(key)=[a,b]', quoted for the shell)"
    }
    return "has a value of the wrong type (\(error))"
  }

  /// True when every line of `yaml` is blank, a comment, or a document marker (`---`, `...`).
  static func holdsNoContent(_ yaml: String) -> Bool {
    yaml.split(omittingEmptySubsequences: true, whereSeparator: \.isNewline).allSatisfy { line in
      let trimmed = line.trimmingCharacters(in: .whitespaces)
      return trimmed.isEmpty || trimmed.hasPrefix("#") || trimmed == "---" || trimmed == "..."
    }
  }

  /// Every leaf key (scalars and lists) of `value` as dotted paths.
  public static func knownKeys<Config: Encodable>(of value: Config) throws -> [String] {
    Array(leafKeys(of: try node(of: value))).sorted()
  }

  /// Levenshtein distance between two keys, by Unicode scalar.
  public static func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a.unicodeScalars), b = Array(b.unicodeScalars)
    if a.isEmpty || b.isEmpty { return max(a.count, b.count) }
    var previous = Array(0...b.count)
    for i in 1...a.count {
      var current = [i] + [Int](repeating: 0, count: b.count)
      for j in 1...b.count {
        current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
      }
      previous = current
    }
    return previous[b.count]
  }

  /// The known key closest to `key`: by edit distance on the whole dotted key, or on the last component
  /// when that is closer (so `lr_rate` finds `optimizer.lr`). Nil when nothing is reasonably close.
  static func closest(to key: String, in known: Set<String>) -> String? {
    let last = key.split(separator: ".").last.map(String.init) ?? key
    var best: (key: String, distance: Int)?
    for candidate in known.sorted() {
      let candidateLast = candidate.split(separator: ".").last.map(String.init) ?? candidate
      let distance = min(editDistance(key, candidate), editDistance(last, candidateLast))
      if best == nil || distance < best!.distance { best = (candidate, distance) }
    }
    guard let best, best.distance <= max(3, last.count / 2) else { return nil }
    return best.key
  }

  // MARK: - Node trees

  static func node<Config: Encodable>(of value: Config) throws -> Node {
    let text = try YAMLEncoder().encode(value)
    guard let node = try Yams.compose(yaml: text) else {
      throw ConfigError.unreadable(source: "defaults", reason: "encoding produced no YAML")
    }
    return node
  }

  static func leafKeys(of node: Node, prefix: String = "") -> Set<String> {
    guard let mapping = node.mapping else { return prefix.isEmpty ? [] : [prefix] }
    var keys: Set<String> = []
    for (key, value) in mapping {
      let name = key.string ?? "\(key)"
      keys.formUnion(leafKeys(of: value, prefix: prefix.isEmpty ? name : prefix + "." + name))
    }
    return keys
  }

  private static func merge(_ overlay: Node, into base: Node, path: [String], known: Set<String>,
                            source: String) throws -> Node {
    guard let overlayMapping = overlay.mapping, var baseMapping = base.mapping else {
      return overlay  // a leaf replaces the default wholesale
    }
    for (key, value) in overlayMapping {
      let name = key.string ?? "\(key)"
      let dotted = (path + [name]).joined(separator: ".")
      guard let existing = baseMapping[name] else {
        throw ConfigError.unknownKey(key: dotted, suggestion: closest(to: dotted, in: known), source: source)
      }
      if existing.mapping != nil && value.mapping == nil {
        throw ConfigError.invalidValue(key: dotted, reason: "is a section; give its keys, not a value")
      }
      if existing.mapping == nil && value.mapping != nil {
        throw ConfigError.unknownKey(key: dotted + "." + (value.mapping!.keys.first?.string ?? ""),
                                     suggestion: dotted, source: source)
      }
      baseMapping[name] = try merge(value, into: existing, path: path + [name], known: known, source: source)
    }
    return .mapping(baseMapping)
  }

  private static func replacing(_ node: Node, at path: [String], with value: Node) -> Node {
    guard let first = path.first else { return value }
    guard var mapping = node.mapping, let child = mapping[first] else { return node }
    mapping[first] = replacing(child, at: Array(path.dropFirst()), with: value)
    return .mapping(mapping)
  }

  private static func dottedKey(of error: DecodingError) -> String {
    let context: DecodingError.Context? = switch error {
    case let .typeMismatch(_, context), let .valueNotFound(_, context), let .dataCorrupted(context): context
    case let .keyNotFound(key, context): DecodingError.Context(codingPath: context.codingPath + [key],
                                                               debugDescription: context.debugDescription)
    @unknown default: nil
    }
    return context?.codingPath.map(\.stringValue).filter { Int($0) == nil }.joined(separator: ".") ?? "?"
  }
}

/// A config as one-line JSON with sorted keys: what every run stores as its `config` (and resume compares).
public func configJSON<T: Encodable>(_ value: T) -> String {
  let encoder = JSONEncoder()
  encoder.outputFormatting = [.sortedKeys]
  return (try? encoder.encode(value)).flatMap { String(data: $0, encoding: .utf8) } ?? "{}"
}
