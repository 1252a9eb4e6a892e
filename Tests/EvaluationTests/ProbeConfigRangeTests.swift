import Foundation
import Testing
import Datasets
import Support
@testable import Evaluation

/// The declared ranges of the linear-probe and kNN configs' numeric keys. Every case here was accepted before the
/// ranges were declared, or rejected under another key's name or without naming the value and range.
@Suite struct ProbeConfigRangeTests {
  static let linear: [(String, String, String)] = [
    ("optimizer.lr=.nan", "optimizer.lr", "finite"),
    ("optimizer.lr=.inf", "optimizer.lr", "finite"),
    ("optimizer.momentum=1.5", "optimizer.momentum", "[0.0, 1.0)"),
    ("optimizer.momentum=1", "optimizer.momentum", "[0.0, 1.0)"),
    ("optimizer.momentum=-1", "optimizer.momentum", "[0.0, 1.0)"),
    ("optimizer.weight_decay=-1", "optimizer.weight_decay", "≥ 0"),
    ("optimizer.base_batch_size=2000000", "optimizer.base_batch_size", "1…1048576"),
    ("head.bn_momentum=-0.5", "head.bn_momentum", "[0.0, 1.0]"),
    ("head.init_std=-0.01", "head.init_std", "≥ 0"),
    ("head.init_std=.inf", "head.init_std", "finite"),
    ("schedule.epochs=1000000", "schedule.epochs", "1…100000"),
    ("schedule.batch_size=1000000", "schedule.batch_size", "2…65536"),
    ("schedule.milestones=[0, 10]", "schedule.milestones", "1…100000"),
    ("schedule.gamma=0", "schedule.gamma", "(0.0, 1.0]"),
    ("schedule.gamma=2", "schedule.gamma", "(0.0, 1.0]"),
    ("schedule.min_lr=-1", "schedule.min_lr", "≥ 0"),
    ("data.crop=2000", "data.crop", "8…1024"),
    ("data.extract_batch_size=100000", "data.extract_batch_size", "1…4096"),
    ("data.test_limit=-1", "data.test_limit", "≥ 0"),
    ("data.std=[-0.3, 0.2, 0.2]", "data.std", "> 0"),
    ("data.mean=[.nan, 0.4, 0.4]", "data.mean", "finite"),
    ("data.std=[0.2]", "data.std", "as many entries"),
  ]

  @Test(arguments: linear)
  func linearProbeKeys(_ override: String, _ key: String, _ range: String) {
    // data.crop=2000 needs a resize that would have accepted it.
    let overrides = override.hasPrefix("data.crop") ? ["data.resize=4000", override] : [override]
    expectRangeError(key: key, range: range) {
      try LinearProbeConfig.load(yaml: nil, source: "default", overrides: overrides)
    }
  }

  static let knn: [(String, String, String)] = [
    ("knn.temperature=.nan", "knn.temperature", "finite"),
    ("knn.temperature=.inf", "knn.temperature", "finite"),
    ("knn.bank_block=0", "knn.bank_block", "1…1048576"),
    ("knn.query_block=100000", "knn.query_block", "1…65536"),
    ("knn.bank_block=2000000", "knn.bank_block", "1…1048576"),
    ("knn.k=[10, 200000]", "knn.k", "1…100000"),
    ("data.limit=-1", "data.limit", "≥ 0"),
    ("data.resize=100000", "data.resize", "224…4096"),
  ]

  @Test(arguments: knn)
  func knnKeys(_ override: String, _ key: String, _ range: String) {
    expectRangeError(key: key, range: range) { try KNNConfig.load(yaml: nil, source: "default", overrides: [override]) }
  }

  @Test func knnBlocksMayNotTogetherExceedAGibibyte() {
    expectRangeError(key: "knn.bank_block", range: "1 GiB") {
      try KNNConfig.load(yaml: nil, source: "default", overrides: ["knn.query_block=65536", "knn.bank_block=65536"])
    }
    #expect(throws: Never.self) {
      try KNNConfig.load(yaml: nil, source: "default", overrides: ["knn.query_block=16384", "knn.bank_block=16384"])
    }
  }

  @Test func theDefaultsAndBoundaryValuesPass() throws {
    #expect(try LinearProbeConfig.load(yaml: nil, source: "default") == LinearProbeConfig())
    #expect(try KNNConfig.load(yaml: nil, source: "default") == KNNConfig())
    _ = try LinearProbeConfig.load(yaml: nil, source: "default", overrides: [
      "optimizer.momentum=0", "optimizer.nesterov=false", "optimizer.weight_decay=0", "schedule.gamma=1",
      "head.bn_momentum=1", "head.init_std=0", "data.crop=1024", "data.resize=4096", "schedule.batch_size=2"])
  }
}

/// Expects `body` to throw `ConfigError.invalidValue` for `key` whose message names `range` and the value given.
func expectRangeError(key: String, range: String, sourceLocation: SourceLocation = #_sourceLocation,
                      _ body: () throws -> Any) {
  do {
    _ = try body()
    Issue.record("expected an error for \(key)", sourceLocation: sourceLocation)
  } catch ConfigError.invalidValue(let found, let reason) {
    #expect(found == key, "\(reason)", sourceLocation: sourceLocation)
    #expect(reason.contains(range), "\(found): \(reason)", sourceLocation: sourceLocation)
    #expect(reason.contains("got") || reason.contains("makes"), "\(found): \(reason)", sourceLocation: sourceLocation)
  } catch {
    Issue.record("expected ConfigError.invalidValue for \(key), got \(error)", sourceLocation: sourceLocation)
  }
}
