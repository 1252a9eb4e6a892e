import Testing
@testable import Support

/// ConfigYAML on a small config of its own; TrainingTests and EvaluationTests check the real configs through it.
@Suite struct ConfigYAMLTests {
  struct Config: Codable, Equatable {
    struct Section: Codable, Equatable {
      var lr: Float = 0.05
      var steps = [30, 60]
    }
    var optimizer = Section()
    var name = "default"
  }

  @Test func yamlThenOverridesReplaceDefaults() throws {
    let config = try ConfigYAML.load(Config.self, defaults: Config(), yaml: "optimizer:\n  lr: 0.1\n", source: "f.yaml",
                                     overrides: ["name=quick", "optimizer.steps=[5]"])
    #expect(config == Config(optimizer: .init(lr: 0.1, steps: [5]), name: "quick"))
    #expect(try ConfigYAML.load(Config.self, defaults: Config(), yaml: nil, source: "none") == Config())
    #expect(try ConfigYAML.knownKeys(of: Config()) == ["name", "optimizer.lr", "optimizer.steps"])
  }

  @Test func problemsNameTheKey() {
    #expect(throws: ConfigError.unknownKey(key: "optimizer.lrr", suggestion: "optimizer.lr", source: "--set")) {
      try ConfigYAML.load(Config.self, defaults: Config(), yaml: nil, source: "none", overrides: ["optimizer.lrr=1"])
    }
    #expect(throws: ConfigError.invalidValue(key: "optimizer", reason: "is a section; give its keys, not a value")) {
      try ConfigYAML.load(Config.self, defaults: Config(), yaml: "optimizer: 3\n", source: "f.yaml")
    }
    #expect(throws: ConfigError.malformedOverride("=1")) {
      try ConfigYAML.load(Config.self, defaults: Config(), yaml: nil, source: "none", overrides: ["=1"])
    }
    #expect(throws: ConfigError.self) {
      try ConfigYAML.load(Config.self, defaults: Config(), yaml: "[1, 2]\n", source: "f.yaml")
    }
  }

  /// A list key given `a,b` without brackets reads as one string: the error shows the list syntax.
  @Test func listKeyGivenAScalarShowsTheListSyntax() {
    #expect(throws: ConfigError.invalidValue(
      key: "optimizer.steps",
      reason: "must be a list, written [a, b, …] (in YAML `optimizer.steps: [a, b]`; on the command line "
        + "--set 'optimizer.steps=[a,b]', quoted for the shell)")) {
      try ConfigYAML.load(Config.self, defaults: Config(), yaml: nil, source: "none", overrides: ["optimizer.steps=5,9"])
    }
  }

  /// Issue 14 item 10: a config text with no keys is refused for every config type (nil still means defaults).
  @Test func emptyConfigTextIsRefused() {
    for text in ["", " \n\t\n", "# a comment only\n", "---\n", "{}"] {
      #expect(throws: ConfigError.empty(source: "f.yaml")) {
        try ConfigYAML.load(Config.self, defaults: Config(), yaml: text, source: "f.yaml")
      }
    }
  }

  @Test func editDistanceCountsInsertionsDeletionsAndSubstitutions() {
    #expect(ConfigYAML.editDistance("kitten", "sitting") == 3)
    #expect(ConfigYAML.editDistance("", "abc") == 3)
    #expect(ConfigYAML.editDistance("lr", "lr") == 0)
  }
}
