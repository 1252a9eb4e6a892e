import Foundation
import Testing
import Datasets
import Support
@testable import Evaluation

/// The VOC07 SVM config: defaults = PROTOCOLS §2/§3, the files and presets, the SVMSettings it hands over, and the
/// declared range of every numeric key.
@Suite struct VOCSVMConfigTests {
  static var configFolder: URL {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
      .appendingPathComponent("configs/benchmarks/voc07")
  }

  @Test func defaultsAreTheProtocolForAResNet50At224() {
    let config = VOCSVMConfig()
    // §2.2: Resize(256) → Resize((224, 224)), ImageNet normalisation, samples_per_gpu 32, feat1 … feat5.
    #expect(config.data.imageSize == 224 && config.data.resize == 256 && config.data.resizeMode == "squash")
    #expect(config.data.mean == [0.485, 0.456, 0.406] && config.data.std == [0.229, 0.224, 0.225])
    #expect(config.data.batchSize == 32)
    #expect(config.featureLayers == [.feature1, .feature2, .feature3, .feature4, .feature5])
    // §2.3: parse_cost_list("1.0,10.0,100.0") = 1, 10, 100 and 0.5^4 … 0.5^19; 3 folds; LinearSVC(C, class_weight
    // {1: 2, -1: 1}, intercept_scaling 1, tol 1e-4).
    #expect(config.svm.costs.count == 19)
    #expect(Array(config.svm.costs.prefix(3)) == [1, 10, 100])
    #expect(Array(config.svm.costs.dropFirst(3)) == (4...19).map { pow(0.5, Double($0)) })
    #expect(config.svm.folds == 3 && config.svm.eps == 1e-4 && config.svm.bias == 1)
    #expect(config.svm.positiveWeight == 2 && config.svm.negativeWeight == 1)
    #expect(config.svm.workers == 0 && !config.svm.deterministic)
    // §3: k = 1 … 96, 5 samples; drawn with the seed unless a directory of samples is given.
    #expect(config.lowShot.k == [1, 2, 4, 8, 16, 32, 64, 96] && config.lowShot.samples == 5)
    #expect(config.lowShot.samplesDir.isEmpty && config.lowShotSamplesDirectory == nil)
    #expect(!config.lowShot.enabled)  // as `run voc-svm` without --low-shot
    #expect(config.seed == 0)
  }

  @Test func settingsAreWhatTheFlagsGiveTheSVMsToday() throws {
    // No flags: `var settings = SVMSettings(); settings.costs = referenceSVMCosts; settings.workers = 0`.
    #expect(VOCSVMConfig().settings == SVMSettings())
    let config = try VOCSVMConfig.load(yaml: nil, source: "default",
                                       overrides: ["svm.costs=[0.5, 2]", "svm.workers=3", "svm.deterministic=true"])
    var expected = SVMSettings()
    expected.costs = [0.5, 2]
    expected.workers = 3
    expected.deterministic = true
    #expect(config.settings == expected)
    #expect(config.settings.variant == expected.variant)
    let solver = try VOCSVMConfig.load(yaml: nil, source: "default", overrides: [
      "svm.eps=0.001", "svm.positive_weight=1", "svm.negative_weight=0.5", "svm.bias=-1", "svm.folds=5"])
    #expect(solver.settings.liblinear.epsilon == 0.001 && solver.settings.liblinear.positiveWeight == 1)
    #expect(solver.settings.liblinear.negativeWeight == 0.5 && solver.settings.liblinear.bias == -1)
    #expect(solver.settings.folds == 5)
  }

  @Test func loadingNothingGivesTheDefaultsAndTheJSONRoundTrips() throws {
    let config = try VOCSVMConfig.load(yaml: nil, source: "default")
    #expect(config == VOCSVMConfig())
    #expect(!config.json.contains("\n") && config.json.contains("\"low_shot\":{"))
    #expect(try JSONDecoder().decode(VOCSVMConfig.self, from: Data(config.json.utf8)) == config)
    #expect(config.json == VOCSVMConfig().json)
  }

  @Test func yamlThenOverrides() throws {
    let yaml = """
      data:
        path: /tmp/VOC2007
        image_size: 32
        resize: 40
        mean: [0.5]
        std: [0.25]
      layers: [feature4, feature5]
      low_shot:
        enabled: true
        k: [1, 8]
      """
    let config = try VOCSVMConfig.load(yaml: yaml, source: "x.yaml",
                                       overrides: ["low_shot.samples=2", "data.resize=32", "seed=7"])
    #expect(config.data.path == "/tmp/VOC2007" && config.data.imageSize == 32 && config.data.resize == 32)
    #expect(config.featureLayers == [.feature4, .feature5])
    #expect(config.lowShot.enabled && config.lowShot.k == [1, 8] && config.lowShot.samples == 2)
    #expect(config.seed == 7)
    #expect(config.svm == VOCSVMConfig.SVMSection())  // untouched sections keep their defaults
    #expect(config.transform(channels: 1) == EvaluationTransform(
      resize: 32, size: 32, mode: .squash, normalization: Normalization(mean: [0.5], std: [0.25])))
    #expect(config.transform(channels: 3).normalization == Normalization(mean: [0.5, 0.5, 0.5],
                                                                         std: [0.25, 0.25, 0.25]))
    #expect(VOCSVMConfig().transform(channels: 3) == EvaluationTransform.svm)
  }

  @Test func unknownKeysNameTheClosestKey() {
    #expect {
      try VOCSVMConfig.load(yaml: "svm:\n  cost: [1]\n", source: "x.yaml")
    } throws: { error in
      guard case let .unknownKey(key, suggestion, source) = error as? ConfigError else { return false }
      return key == "svm.cost" && suggestion == "svm.costs" && source == "x.yaml"
    }
    #expect {
      try VOCSVMConfig.load(yaml: nil, source: "default", overrides: ["low_shot.sample=3"])
    } throws: { "\($0)".contains("Did you mean 'low_shot.samples'?") }
    #expect {
      try VOCSVMConfig.load(yaml: "data:\n  imagesize: 64\n", source: "x.yaml")
    } throws: { "\($0)".contains("'data.image_size'") }
  }

  /// (override, key named, range named): each value outside its declared range.
  static let outOfRange: [(String, String, String)] = [
    ("data.image_size=4", "data.image_size", "8…1024"),
    ("data.image_size=100000", "data.image_size", "8…1024"),
    ("data.resize=100", "data.resize", "224…4096"),
    ("data.resize_mode=stretch", "data.resize_mode", "squash, center-crop"),
    ("data.resize_rule=pillow10", "data.resize_rule", "pillow9, pillow13"),
    ("data.mean=[0.1, 0.2]", "data.mean", "1 or 3"),
    ("data.std=[0.2, 0.2, 0]", "data.std", "> 0"),
    ("data.std=[1]", "data.std", "as many entries"),
    ("data.batch_size=0", "data.batch_size", "1…4096"),
    ("data.batch_size=5000", "data.batch_size", "1…4096"),
    ("layers=[]", "layers", "at least one"),
    ("layers=[feature6]", "layers", "among feature1 … feature5"),
    ("layers=[avgpool]", "layers", "among feature1 … feature5"),
    ("layers=[feature2, feature2]", "layers", "twice"),
    ("svm.costs=[]", "svm.costs", "at least one"),
    ("svm.costs=[1, 0]", "svm.costs", "> 0"),
    ("svm.costs=[1, -2]", "svm.costs", "> 0"),
    ("svm.costs=[.inf]", "svm.costs", "finite"),
    ("svm.costs=[.nan]", "svm.costs", "finite"),
    ("svm.folds=1", "svm.folds", "2…100"),
    ("svm.eps=0", "svm.eps", "> 0"),
    ("svm.eps=.nan", "svm.eps", "finite"),
    ("svm.positive_weight=-2", "svm.positive_weight", "> 0"),
    ("svm.negative_weight=0", "svm.negative_weight", "> 0"),
    ("svm.bias=.inf", "svm.bias", "finite"),
    ("svm.workers=-1", "svm.workers", "0…1024"),
    ("low_shot.k=[1, 0]", "low_shot.k", "1…100000"),
    ("low_shot.k=[]", "low_shot.k", "at least one"),
    ("low_shot.k=[4, 4]", "low_shot.k", "twice"),
    ("low_shot.samples=0", "low_shot.samples", "1…1000"),
  ]

  @Test(arguments: outOfRange)
  func valuesOutsideTheirRangeNameKeyValueAndRange(_ override: String, _ key: String, _ range: String) {
    expectRangeError(key: key, range: range) {
      try VOCSVMConfig.load(yaml: nil, source: "default", overrides: [override])
    }
  }

  @Test func boundaryValuesPass() throws {
    _ = try VOCSVMConfig.load(yaml: nil, source: "default", overrides: [
      "data.image_size=8", "data.resize=8", "data.batch_size=4096", "svm.workers=0", "svm.bias=0", "svm.folds=2",
      "low_shot.k=[1]", "low_shot.samples=1", "data.mean=[0]", "data.std=[1]"])
    _ = try VOCSVMConfig.load(yaml: nil, source: "default", overrides: [
      "data.image_size=1024", "data.resize=4096", "data.batch_size=1", "svm.workers=1024", "svm.folds=100",
      "low_shot.samples=1000", "data.resize_mode=center-crop", "layers=[feature5, feature1]",
      "data.resize_rule=pillow9"])
  }

  @Test func everyConfigFileLoadsAndMatchesTheDefaultsOrItsPreset() throws {
    let files = try FileManager.default.contentsOfDirectory(atPath: Self.configFolder.path)
      .filter { $0.hasSuffix(".yaml") }.sorted()
    #expect(files == ["svm_voc07.yaml", "svm_voc07_scenes_quick.yaml"])
    var loaded: [String: VOCSVMConfig] = [:]
    for file in files {
      let text = try String(contentsOf: Self.configFolder.appendingPathComponent(file), encoding: .utf8)
      loaded[file] = try VOCSVMConfig.load(yaml: text, source: file)
    }
    // The full protocol: the defaults, with the low-shot SVMs on (dist_test_svm_pretrain.sh runs both).
    var full = VOCSVMConfig()
    full.lowShot.enabled = true
    #expect(loaded["svm_voc07.yaml"] == full)
    #expect(loaded["svm_voc07.yaml"]?.svm.costs == referenceSVMCosts)
    // Every embedded preset is its file, byte for byte.
    for preset in VOCSVMPresets.all {
      let file = Self.configFolder.appendingPathComponent("\(preset.name).yaml")
      #expect(try String(contentsOf: file, encoding: .utf8) == preset.yaml + "\n", "\(preset.name)")
      #expect(try VOCSVMConfig.load(yaml: preset.yaml, source: preset.name) == loaded["\(preset.name).yaml"])
    }
  }

  @Test func perBackboneDefaultsAreWhatRunVOCSVMTakesWithoutOptions() throws {
    // ResNet-50 (ImageNet stem, 3 channels): 256 → 224, ImageNet statistics.
    #expect(VOCSVMConfig.defaults(inChannels: 3, cifarStem: false) == VOCSVMConfig())
    // The quick ResNet-18 (CIFAR stem, 1 channel): 32 → 32, Fashion-MNIST statistics.
    let quick = VOCSVMConfig.defaults(inChannels: 1, cifarStem: true)
    #expect(quick.transform(channels: 1) == EvaluationTransform(
      resize: 32, size: 32, mode: .squash, normalization: Normalization(mean: [0.2860], std: [0.3530])))
    #expect(quick.settings == SVMSettings() && quick.featureLayers == FeatureLayer.stages)
    let cifar3 = VOCSVMConfig.defaults(inChannels: 3, cifarStem: true)
    #expect(cifar3.data.imageSize == 32 && cifar3.data.mean == Normalization.imagenet.mean)
    // A file or override still wins over the per-backbone defaults.
    let loaded = try VOCSVMConfig.load(yaml: "data:\n  image_size: 64\n", source: "x", overrides: ["data.resize=64"],
                                       defaults: quick)
    #expect(loaded.data.imageSize == 64 && loaded.data.resize == 64 && loaded.data.mean == [0.2860])
  }

  @Test func theScenePresetIsWhatQuickstartRuns() throws {
    // quickstart: run voc-svm --low-shot --image-size 64 (so --resize 64), one-channel backbone → Fashion-MNIST's
    // mean and std, default costs, workers and layers, --seed 0.
    let config = try VOCSVMConfig.load(yaml: VOCSVMPresets.scenesQuick.yaml, source: "preset")
    #expect(config.transform(channels: 1) == EvaluationTransform(
      resize: 64, size: 64, mode: .squash, normalization: Normalization(mean: [0.2860], std: [0.3530])))
    #expect(config.settings == SVMSettings())
    #expect(config.lowShot.enabled && config.lowShot.k == referenceLowShotKs)
    #expect(config.lowShot.samples == referenceLowShotSamples && config.lowShotSamplesDirectory == nil)
    #expect(config.featureLayers == FeatureLayer.stages && config.data.batchSize == 32 && config.seed == 0)
    #expect(config.data.path == "work_dirs/quickstart/svm-scenes/VOCdevkit/VOC2007")  // the SVM scenes (issue 19)
    // = the quick backbone's defaults with quickstart's options (--image-size 64, --low-shot, --data).
    var expected = VOCSVMConfig.defaults(inChannels: 1, cifarStem: true)
    expected.data.imageSize = 64
    expected.data.resize = 64
    expected.lowShot.enabled = true
    expected.data.path = config.data.path
    #expect(config == expected)
  }
}
