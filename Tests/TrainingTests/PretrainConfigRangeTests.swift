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

  // The cases named in the issue, one per key class, with the message checked for the value and the range.
  @Test func prefetchZero() throws {
    let text = try message("data.prefetch=0", key: "data.prefetch")
    #expect(text.contains("got 0") && text.contains("1…256"), "\(text)")
  }

  @Test func modelWidthsZero() throws {
    for key in ["model.features", "model.projector_hidden", "model.predictor_hidden"] {
      let text = try message("\(key)=0", key: key)
      #expect(text.contains("got 0") && text.contains("1…16384"), "\(text)")
    }
  }

  @Test func projectorLayersZero() throws {
    let text = try message("model.projector_layers=0", key: "model.projector_layers")
    #expect(text.contains("got 0") && text.contains("1…16"), "\(text)")
  }

  @Test func momentumNegative() throws {
    let text = try message("optimizer.momentum=-1", key: "optimizer.momentum")
    #expect(text.contains("got -1") && text.contains("[0.0, 1.0)"), "\(text)")
  }

  @Test func weightDecayNegative() throws {
    let text = try message("optimizer.weight_decay=-1", key: "optimizer.weight_decay")
    #expect(text.contains("got -1") && text.contains("≥ 0"), "\(text)")
  }

  @Test func knnKZero() throws {
    let text = try message("monitor.knn_k=0", key: "monitor.knn_k")
    #expect(text.contains("got 0") && text.contains("≥ 1"), "\(text)")
  }

  @Test func knnSamplesZero() throws {
    for key in ["monitor.knn_train_samples", "monitor.knn_test_samples"] {
      let text = try message("\(key)=0", key: key)
      #expect(text.contains("got 0") && text.contains("≥ 1"), "\(text)")
    }
  }

  @Test func imageSizeHuge() throws {
    let text = try message("data.image_size=100000", key: "data.image_size")
    #expect(text.contains("got 100000") && text.contains("8…1024"), "\(text)")
  }

  @Test func learningRateNegative() throws {
    let text = try message("optimizer.lr=-0.1", key: "optimizer.lr")
    #expect(text.contains("got -0.1") && text.contains("> 0"), "\(text)")
    _ = try message("optimizer.lr=.nan", key: "optimizer.lr")
  }

  @Test func limitNegative() throws {
    let text = try message("data.limit=-1", key: "data.limit")
    #expect(text.contains("got -1") && text.contains("≥ 0"), "\(text)")
  }

  @Test func flipProbabilityFive() throws {
    let text = try message("data.flip_p=5", key: "data.flip_p")
    #expect(text.contains("got 5") && text.contains("[0.0, 1.0]"), "\(text)")
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
