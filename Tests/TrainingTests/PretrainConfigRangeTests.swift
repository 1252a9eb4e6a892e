import Testing
@testable import Training
import Support

/// Issue 14 items 4 and 10: every numeric pretraining key is range-checked at load, with the key, the value and the
/// range in the message; an empty config file is refused instead of running on the code's defaults.
@Suite struct PretrainConfigRangeTests {
  /// Loads the embedded default with `override` and returns the error's message, which must name `key`.
  private func message(_ override: String, key: String) throws -> String {
    do {
      _ = try PretrainConfig.load(yaml: nil, source: "default", overrides: [override])
    } catch let error as ConfigError {
      guard case let .invalidValue(name, _) = error else {
        Issue.record("\(override): expected invalidValue, got \(error)")
        return ""
      }
      #expect(name == key, "\(override)")
      #expect(error.description.contains("'\(key)'"), "\(error.description)")
      return error.description
    }
    Issue.record("\(override) was accepted")
    return ""
  }

  /// The cases named in the issue, one per key class: the override, its key, and the value and range the message
  /// must show.
  static let issueCases: [(override: String, key: String, value: String, range: String)] = [
    ("data.prefetch=0", "data.prefetch", "got 0", "1…256"),
    ("model.features=0", "model.features", "got 0", "1…16384"),
    ("model.projector_hidden=0", "model.projector_hidden", "got 0", "1…16384"),
    ("model.predictor_hidden=0", "model.predictor_hidden", "got 0", "1…16384"),
    ("model.projector_layers=0", "model.projector_layers", "got 0", "1…16"),
    ("optimizer.momentum=-1", "optimizer.momentum", "got -1", "[0.0, 1.0)"),
    ("optimizer.weight_decay=-1", "optimizer.weight_decay", "got -1", "≥ 0"),
    ("monitor.knn_k=0", "monitor.knn_k", "got 0", "≥ 1"),
    ("monitor.knn_train_samples=0", "monitor.knn_train_samples", "got 0", "≥ 1"),
    ("monitor.knn_test_samples=0", "monitor.knn_test_samples", "got 0", "≥ 1"),
    ("data.image_size=100000", "data.image_size", "got 100000", "8…1024"),
    ("optimizer.lr=-0.1", "optimizer.lr", "got -0.1", "> 0"),
    ("data.limit=-1", "data.limit", "got -1", "≥ 0"),
    ("data.flip_p=5", "data.flip_p", "got 5", "[0.0, 1.0]"),
  ]

  @Test(arguments: issueCases.indices)
  func issueCaseNamesKeyValueAndRange(_ index: Int) throws {
    let (override, key, value, range) = Self.issueCases[index]
    let text = try message(override, key: key)
    #expect(text.contains(value) && text.contains(range), "\(text)")
  }

  @Test func nonFiniteLearningRateAndOtherProbabilities() throws {
    _ = try message("optimizer.lr=.nan", key: "optimizer.lr")
    for key in ["data.color_jitter_p", "data.grayscale_p", "data.blur_p"] { _ = try message("\(key)=-0.5", key: key) }
  }

  // The remaining keys, one bad value each.
  @Test func everyOtherNumericKeyIsChecked() throws {
    let cases: [(String, String)] = [
      ("model.width_multiplier=0", "model.width_multiplier"), ("model.depth=19", "model.depth"),
      ("model.in_channels=2", "model.in_channels"),
      ("data.workers=0", "data.workers"), ("data.workers=-1", "data.workers"),
      ("data.crop_scale_min=0", "data.crop_scale_min"), ("data.crop_scale_max=1.5", "data.crop_scale_max"),
      ("data.brightness=-0.1", "data.brightness"), ("data.contrast=-0.1", "data.contrast"),
      ("data.saturation=-0.1", "data.saturation"), ("data.hue=0.6", "data.hue"),
      ("data.mean=[.nan]", "data.mean"), ("data.std=[0]", "data.std"), ("data.std=[-1]", "data.std"),
      ("data.mean=[0.5, 0.5, 0.5]", "data.std"),
      ("schedule.epochs=0", "schedule.epochs"), ("schedule.batch_size=1", "schedule.batch_size"),
      ("schedule.min_lr=-1", "schedule.min_lr"), ("schedule.max_minutes=-1", "schedule.max_minutes"),
      ("checkpoint.interval=0", "checkpoint.interval"), ("checkpoint.keep=-1", "checkpoint.keep"),
      ("monitor.knn_interval=-1", "monitor.knn_interval"), ("monitor.knn_temperature=0", "monitor.knn_temperature"),
      ("monitor.collapse_fraction=1.5", "monitor.collapse_fraction"),
    ]
    for (override, key) in cases { _ = try message(override, key: key) }
    // min ≤ max.
    do {
      _ = try PretrainConfig.load(yaml: nil, source: "default",
                                  overrides: ["data.crop_scale_min=0.9", "data.crop_scale_max=0.5"])
      Issue.record("crop_scale_min > crop_scale_max was accepted")
    } catch let error as ConfigError {
      #expect(error.description.contains("'data.crop_scale_min'") && error.description.contains("0.5"))
    }
  }

  @Test func boundaryValuesLoad() throws {
    _ = try PretrainConfig.load(yaml: nil, source: "default", overrides: [
      "data.limit=0", "data.flip_p=1", "data.blur_p=0", "data.hue=0.5", "optimizer.momentum=0",
      "optimizer.weight_decay=0", "schedule.max_minutes=0", "checkpoint.keep=0", "monitor.knn_interval=0",
      "model.projector_layers=1", "data.image_size=8", "data.crop_scale_min=1", "schedule.batch_size=2",
    ])
  }

  @Test(arguments: ["", "\n  \n", "# only a comment\n# and another\n", "{}\n"])
  func emptyConfigFileIsRefused(text: String) {
    #expect(throws: ConfigError.empty(source: "configs/empty.yaml")) {
      try PretrainConfig.load(yaml: text, source: "configs/empty.yaml")
    }
    let message = ConfigError.empty(source: "configs/empty.yaml").description
    #expect(message.contains("configs/empty.yaml") && message.contains("is empty") && message.contains("--config"))
  }
}
