// Configs refuse YAML anchors. An alias shares its anchor's node, so nine lines of anchors each listing the
// previous one nine times ("billion laughs") describe 9^9 values; Yams hashes such a node when it is a mapping key
// and the decoder walks it as a list, so a few hundred bytes of config would run for minutes. No config needs
// anchors, and without anchors every alias is undefined, which Yams refuses at once.
import Foundation

extension ConfigYAML {
  /// The first YAML anchor (`&name`) in `yaml` and its line (1-based), or nil.
  ///
  /// Deliberately broad: any `&` followed by a name character and not preceded by a letter or digit counts, also
  /// inside quoted text and comments, since telling those apart needs a full YAML scanner. Text such as `R&D`
  /// or `a & b` is not an anchor.
  static func firstAnchor(in yaml: String) -> (name: String, line: Int)? {
    let bytes = Array(yaml.utf8)
    var line = 1
    for index in bytes.indices {
      let byte = bytes[index]
      if byte == UInt8(ascii: "\n") { line += 1 }
      guard byte == UInt8(ascii: "&"), index + 1 < bytes.count, isAnchorNameByte(bytes[index + 1]) else { continue }
      if index > 0 && isASCIIAlphanumeric(bytes[index - 1]) { continue }
      let name = bytes[(index + 1)...].prefix { isAnchorNameByte($0) }.prefix(40)
      return ("&" + String(decoding: name, as: UTF8.self), line)
    }
    return nil
  }

  /// Throws `ConfigError.unreadable` naming `source`, the line and the anchor when `yaml` holds one.
  static func refuseAnchors(in yaml: String, source: String) throws {
    guard let anchor = firstAnchor(in: yaml) else { return }
    throw ConfigError.unreadable(
      source: source,
      reason: "line \(anchor.line) sets the YAML anchor '\(anchor.name)'; configs do not accept anchors and aliases "
        + "(repeated aliases can expand exponentially); write the values out in full")
  }

  /// YAML's ns-anchor-char: anything but white space, line breaks and the flow indicators `,[]{}`.
  private static func isAnchorNameByte(_ byte: UInt8) -> Bool {
    !Array(" \t\r\n,[]{}".utf8).contains(byte)
  }

  private static func isASCIIAlphanumeric(_ byte: UInt8) -> Bool {
    (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
      || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
  }
}
