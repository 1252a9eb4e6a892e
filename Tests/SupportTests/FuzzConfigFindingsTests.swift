// Regression tests for what the config fuzz test (ProtocolsTests/FuzzConfigTests) found, reduced to small inputs.
import Foundation
import Testing
@testable import Support

@Suite struct FuzzConfigFindingsTests {
  struct Config: Codable, Equatable {
    struct Section: Codable, Equatable {
      var lr: Float = 0.05
      var mean: [Float] = [0.5, 0.5]
    }
    var optimizer = Section()
  }

  /// Lines defining anchors l0 … l(depth−1), each a list of nine aliases of the previous one: l(depth−1) stands
  /// for 9^depth values in a few hundred bytes ("billion laughs").
  static func laughs(depth: Int, indent: String) -> String {
    (0..<depth).map { level in
      let element = level == 0 ? "lol" : "*l\(level - 1)"
      return "\(indent)l\(level): &l\(level) [" + [String](repeating: element, count: 9).joined(separator: ", ") + "]\n"
    }.joined()
  }

  /// Found by mutatedConfigsLoadOrThrowConfigErrors (pretrain): an alias of a 9^8-value anchor used as a mapping
  /// key ran for minutes (Yams hashes every key to find duplicates, and the unknown-key message printed it). The
  /// reduced case here (9^5 values) is quick on the old code too, which answered with an unknown key instead.
  @Test func aConfigWithAnchorsIsRefusedBeforeParsing() {
    let yaml = "optimizer:\n" + Self.laughs(depth: 5, indent: "  ") + "  ? *l4\n  : 1\n  lr: 0.1\n"
    #expect {
      try ConfigYAML.load(Config.self, defaults: Config(), yaml: yaml, source: "laughs.yaml")
    } throws: { error in
      guard case let .unreadable(source, reason)? = error as? ConfigError else { return false }
      return source == "laughs.yaml" && reason.contains("line 2") && reason.contains("'&l0'")
    }
  }

  /// The fuzz input's size (9^8 values as a key) is refused at once, where it ran for minutes.
  @Test func aBillionLaughsKeyIsRefusedAtOnce() {
    let yaml = "optimizer:\n" + Self.laughs(depth: 8, indent: "  ") + "  ? *l7\n  : 1\n"
    let start = ContinuousClock.now
    #expect(throws: ConfigError.self) {
      try ConfigYAML.load(Config.self, defaults: Config(), yaml: yaml, source: "laughs.yaml")
    }
    #expect(ContinuousClock.now - start < .seconds(1))
  }

  /// The same expansion as a value (a list the decoder would walk), and as a `--set` value on one line.
  @Test func anchorsAreRefusedInValuesAndOverrides() {
    let yaml = "optimizer:\n  mean: *l2\n" + Self.laughs(depth: 3, indent: "  ")
    #expect {
      try ConfigYAML.load(Config.self, defaults: Config(), yaml: yaml, source: "laughs.yaml")
    } throws: { error in
      guard case let .unreadable(source, reason)? = error as? ConfigError else { return false }
      return source == "laughs.yaml" && reason.contains("line 3") && reason.contains("'&l0'")
    }
    #expect {
      try ConfigYAML.load(Config.self, defaults: Config(), yaml: nil, source: "none",
                          overrides: ["optimizer.mean=[&a [1, 1], *a]"])
    } throws: { error in
      guard case let .unreadable(source, reason)? = error as? ConfigError else { return false }
      return source == "--set optimizer.mean" && reason.contains("'&a'")
    }
  }

  /// Ampersands that are text, not anchors, are still accepted.
  @Test func ampersandsInTextAreNotAnchors() throws {
    let yaml = "# R&D settings, lr & mean\noptimizer:\n  lr: 0.1\n"
    #expect(try ConfigYAML.load(Config.self, defaults: Config(), yaml: yaml, source: "f.yaml").optimizer.lr == 0.1)
    #expect(ConfigYAML.firstAnchor(in: "a: 'x &y z'\n")?.name == "&y", "deliberately broad: quoted text counts")
  }
}
