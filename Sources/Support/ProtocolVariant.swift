// A protocol variant: how a run's protocol is pinned down or departs from the reference (MMSelfSup v0.8.0), as
import Foundation
// named facets. One value, serialised one canonical way, is the source of the stored `protocol_variant`, the
// journal keys of resumable stages and the identity of cached work — so the three can never disagree.

/// Named facets (`costs=reference-19`, `pooling=adaptive`, `cached-features`), serialised canonically as
/// `key=value` pairs sorted by key and joined by `"; "`; a facet whose value is `true` is written as its bare key.
/// That is the text `ProtocolFacets(parsing:)` in Results reads back.
public struct ProtocolVariant: Hashable, Sendable, Codable, CustomStringConvertible {
  public private(set) var facets: [String: String]

  public init(_ facets: [String: String] = [:]) {
    self.facets = [:]
    for (key, value) in facets { self[key] = value }
  }

  /// A facet's value; setting nil removes it. Keys and values are single tokens: no whitespace or `;`, and keys
  /// no `=` (a broken contract of the code that builds the variant, not of user input).
  public subscript(key: String) -> String? {
    get { facets[key] }
    set {
      precondition(Self.isToken(key) && !key.contains("=") && !key.isEmpty,
                   "Protocol variant key '\(key)' must be a non-empty token without whitespace, ';' or '='.")
      if let newValue {
        precondition(Self.isToken(newValue) && !newValue.isEmpty,
                     "Protocol variant value '\(newValue)' of '\(key)' must be a non-empty token without whitespace or ';'.")
      }
      facets[key] = newValue
    }
  }

  /// Sets a bare flag (`cached-features`).
  public mutating func flag(_ key: String) { self[key] = "true" }

  /// No facets: the reference protocol itself.
  public var isEmpty: Bool { facets.isEmpty }

  /// `key=value; key; …` sorted by key.
  public var canonical: String {
    facets.keys.sorted().map { key in facets[key] == "true" ? key : "\(key)=\(facets[key]!)" }
      .joined(separator: "; ")
  }

  /// The stored `protocol_variant`: the canonical text, nil for the reference protocol.
  public var stored: String? { isEmpty ? nil : canonical }

  public var description: String { canonical }

  /// Parses the canonical text (the inverse of `canonical`); nil when it is not of that form.
  public init?(canonical text: String) {
    var facets: [String: String] = [:]
    if !text.isEmpty {
      for part in text.components(separatedBy: "; ") {
        if let equals = part.firstIndex(of: "=") {
          facets[String(part[..<equals])] = String(part[part.index(after: equals)...])
        } else {
          facets[part] = "true"
        }
      }
    }
    guard facets.allSatisfy({ Self.isToken($0.key) && !$0.key.isEmpty && Self.isToken($0.value) && !$0.value.isEmpty })
    else { return nil }
    self.facets = facets
    guard canonical == text else { return nil }
  }

  public init(from decoder: Decoder) throws {
    let text = try decoder.singleValueContainer().decode(String.self)
    guard let variant = ProtocolVariant(canonical: text) else {
      throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath,
                                              debugDescription: "'\(text)' is not a canonical protocol variant"))
    }
    self = variant
  }

  public func encode(to encoder: Encoder) throws {
    var container = encoder.singleValueContainer()
    try container.encode(canonical)
  }

  private static func isToken(_ text: String) -> Bool {
    !text.contains { $0.isWhitespace || $0 == ";" }
  }
}
