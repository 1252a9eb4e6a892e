// The config of `run voc-svm`, as MMSelfSup's benchmark configs: YAML over Codable defaults through ConfigYAML
// (unknown key → error naming the closest key; `--set key=value` overrides). The Codable defaults are PROTOCOLS §2
// and §3 for a ResNet-50 at 224 (configs/benchmarks/voc07/svm_voc07.yaml); VOCSVMPresets holds the quickstart's
// scene config. `settings` hands the SVM maths exactly the SVMSettings the command-line flags give it.
import Support
import Foundation
import Datasets

/// The VOC07 SVM config (`run voc-svm`).
public struct VOCSVMConfig: Codable, Sendable, Equatable {
  public var data = DataSection()
  /// Backbone stages to extract and fit SVMs on, among feature1 … feature5 (§2.2).
  public var layers = FeatureLayer.stages.map(\.rawValue)
  public var svm = SVMSection()
  public var lowShot = LowShotSection()
  /// Seeds the low-shot draw (and the random init of a backbone without a checkpoint).
  public var seed: UInt64 = 0

  public init() {}

  enum CodingKeys: String, CodingKey {
    case data, layers, svm, seed
    case lowShot = "low_shot"
  }

  /// `data.*`: the devkit and the extraction transform, Resize(resize) → squash to image_size (§2.2).
  public struct DataSection: Codable, Sendable, Equatable {
    /// A VOC year directory (ImageSets/Main with `<class>_trainval.txt` and `<class>_test.txt`).
    public var path = "data/VOCdevkit/VOC2007"
    /// Square input side after the squash.
    public var imageSize = 224
    /// Short side before the squash (torchvision Resize(256)).
    public var resize = 256
    /// squash (§2.2: Resize((224, 224)), no crop) or center-crop (a departure, recorded with the run).
    public var resizeMode = ResizeMode.squash.rawValue
    /// The bilinear pass order of both resizes: pillow13 (default: the Pillow that made this repository's PyTorch
    /// fixtures and that pip installs today) or pillow9 (always horizontal first: the Pillow behind the published
    /// numbers). See `ResizeRule`. Recorded with the run (protocol variant) and in the feature cache key.
    public var resizeRule = ResizeRule.default.rawValue
    /// Per-channel mean and std of x / 255; one entry is replicated to three channels, three are averaged to one.
    public var mean: [Float] = Normalization.imagenet.mean
    public var std: [Float] = Normalization.imagenet.std
    /// Images per backbone forward during extraction (MMSelfSup: samples_per_gpu 32).
    public var batchSize = 32

    public init() {}

    enum CodingKeys: String, CodingKey {
      case path, resize, mean, std
      case imageSize = "image_size", resizeMode = "resize_mode", resizeRule = "resize_rule", batchSize = "batch_size"
    }
  }

  /// How the resized image becomes image_size × image_size.
  public enum ResizeMode: String, CaseIterable, Sendable {
    case squash
    case centerCrop = "center-crop"

    public var transformMode: EvaluationTransform.Mode { self == .squash ? .squash : .centerCrop }
  }

  /// `svm.*`: liblinear L2R_L2LOSS_SVC_DUAL per class and cost, the cost chosen by k-fold CV AP (§2.3).
  public struct SVMSection: Codable, Sendable, Equatable {
    /// The reference's 19: 1, 10, 100 and 0.5^4 … 0.5^19 (`referenceSVMCosts`).
    public var costs = referenceSVMCosts
    /// StratifiedKFold folds for choosing the cost.
    public var folds = 3
    /// liblinear's stopping tolerance (`-e`; scikit-learn's tol).
    public var eps = 1e-4
    /// Class weights: C₊ = positive_weight · C, C₋ = negative_weight · C (`-w1 2 -w-1 1`).
    public var positiveWeight = 2.0
    public var negativeWeight = 1.0
    /// The constant bias feature (`-B 1`, scikit-learn's intercept_scaling); negative: no bias column.
    public var bias = 1.0
    /// Concurrent liblinear fits (0: the thread count).
    public var workers = 0
    /// One fit at a time with liblinear's coordinate order reseeded: bit-reproducible SVMs.
    public var deterministic = false

    public init() {}

    enum CodingKeys: String, CodingKey {
      case costs, folds, eps, bias, workers, deterministic
      case positiveWeight = "positive_weight", negativeWeight = "negative_weight"
    }
  }

  /// `low_shot.*`: k positives and (classes − 1)·k negatives per class, `samples` draws per k (§3).
  public struct LowShotSection: Codable, Sendable, Equatable {
    public var enabled = false
    public var k = referenceLowShotKs
    public var samples = referenceLowShotSamples
    /// Read `train_targets_sample{s}_k{k}.npy` from here instead of drawing with `seed` ("": draw).
    public var samplesDir = ""

    public init() {}

    enum CodingKeys: String, CodingKey {
      case enabled, k, samples
      case samplesDir = "samples_dir"
    }
  }

  // MARK: - What the evaluator takes

  /// The SVM settings of this config: the values `run voc-svm` sets from its flags (costs, workers,
  /// deterministic), and the rest as `SVMSettings()` has them unless the config changes them.
  public var settings: SVMSettings {
    var settings = SVMSettings()
    settings.costs = svm.costs
    settings.folds = svm.folds
    settings.workers = svm.workers
    settings.deterministic = svm.deterministic
    settings.liblinear.epsilon = svm.eps
    settings.liblinear.positiveWeight = svm.positiveWeight
    settings.liblinear.negativeWeight = svm.negativeWeight
    settings.liblinear.bias = svm.bias
    return settings
  }

  /// The layers as `FeatureLayer`s (validated: feature1 … feature5, each once).
  public var featureLayers: [FeatureLayer] { layers.compactMap(FeatureLayer.init(rawValue:)) }

  public var resizeMode: ResizeMode { ResizeMode(rawValue: data.resizeMode) ?? .squash }

  public var resizeRule: ResizeRule { ResizeRule(rawValue: data.resizeRule) ?? .default }

  /// The normalization for a backbone with `channels` input channels: the configured one, replicated from one
  /// channel to three or averaged from three to one when the backbone differs from the config.
  public func normalization(channels: Int) -> Normalization {
    func fit(_ values: [Float]) -> [Float] {
      if values.count == channels { return values }
      if channels == 3 { return [Float](repeating: values[0], count: 3) }
      return [values.reduce(0, +) / Float(values.count)]
    }
    return Normalization(mean: fit(data.mean), std: fit(data.std))
  }

  /// The extraction transform for a backbone with `channels` input channels.
  public func transform(channels: Int) -> EvaluationTransform {
    EvaluationTransform(resize: data.resize, size: data.imageSize, mode: resizeMode.transformMode,
                        normalization: normalization(channels: channels), resizeRule: resizeRule)
  }

  /// The low-shot samples directory, when samples are read rather than drawn.
  public var lowShotSamplesDirectory: URL? {
    lowShot.samplesDir.isEmpty ? nil : URL(fileURLWithPath: lowShot.samplesDir)
  }

  // MARK: - Loading

  /// The defaults `run voc-svm` has always taken for a backbone when no option says otherwise: these Codable
  /// defaults for a 3-channel ImageNet-stem ResNet; image_size and resize 32 for a CIFAR stem (trained at 32);
  /// Fashion-MNIST's statistics (0.2860 / 0.3530) for a 1-channel backbone.
  public static func defaults(inChannels: Int, cifarStem: Bool) -> VOCSVMConfig {
    var config = VOCSVMConfig()
    if cifarStem {
      config.data.imageSize = 32
      config.data.resize = 32
    }
    if inChannels != 3 {
      config.data.mean = [Float](repeating: 0.2860, count: inChannels)
      config.data.std = [Float](repeating: 0.3530, count: inChannels)
    }
    return config
  }

  /// Every key's declared range; the first violation throws `ConfigError.invalidValue` naming key, value and range.
  public func validate() throws {
    let data = ConfigRanges(prefix: "data")
    try data.check("image_size", self.data.imageSize, in: 8...1024)
    try data.check("resize", self.data.resize, in: self.data.imageSize...4096)
    if ResizeMode(rawValue: self.data.resizeMode) == nil {
      try data.fail("resize_mode", "must be one of \(ResizeMode.allCases.map(\.rawValue).joined(separator: ", ")), "
                      + "got '\(self.data.resizeMode)'")
    }
    if ResizeRule(rawValue: self.data.resizeRule) == nil {
      try data.fail("resize_rule", "must be one of \(ResizeRule.allCases.map(\.rawValue).joined(separator: ", ")), "
                      + "got '\(self.data.resizeRule)'")
    }
    try data.checkNormalization(mean: self.data.mean, std: self.data.std)
    try data.check("batch_size", self.data.batchSize, in: 1...4096)

    let top = ConfigRanges()
    if layers.isEmpty { try top.fail("layers", "must name at least one of feature1 … feature5, got []") }
    for name in layers where !FeatureLayer.stages.contains(where: { $0.rawValue == name }) {
      try top.fail("layers", "must name layers among feature1 … feature5, got '\(name)'")
    }
    if Set(layers).count != layers.count {
      try top.fail("layers", "must name each layer once (no layer twice), got \(layers)")
    }

    let svm = ConfigRanges(prefix: "svm")
    if self.svm.costs.isEmpty { try svm.fail("costs", "must list at least one finite cost > 0, got []") }
    for cost in self.svm.costs where !(cost.isFinite && cost > 0) {
      try svm.fail("costs", "must list finite costs > 0, got \(cost)")
    }
    try svm.check("folds", self.svm.folds, in: 2...100)
    try svm.check("eps", self.svm.eps)
    try svm.check("positive_weight", self.svm.positiveWeight)
    try svm.check("negative_weight", self.svm.negativeWeight)
    if !self.svm.bias.isFinite {
      try svm.fail("bias", "must be finite (negative: no bias column), got \(self.svm.bias)")
    }
    try svm.check("workers", self.svm.workers, in: 0...1024)

    let lowShot = ConfigRanges(prefix: "low_shot")
    try lowShot.check("k", self.lowShot.k, eachIn: 1...100_000)
    if Set(self.lowShot.k).count != self.lowShot.k.count {
      try lowShot.fail("k", "must list each k once (no k twice), got \(self.lowShot.k)")
    }
    try lowShot.check("samples", self.lowShot.samples, in: 1...1000)
  }

  /// `defaults`, then `yaml`, then `overrides`; validated.
  public static func load(yaml: String?, source: String, overrides: [String] = [],
                          defaults: VOCSVMConfig = VOCSVMConfig()) throws -> VOCSVMConfig {
    let config = try ConfigYAML.load(VOCSVMConfig.self, defaults: defaults, yaml: yaml, source: source,
                                     overrides: overrides)
    try config.validate()
    return config
  }

  /// The config as one-line JSON, keys sorted (stored with every run).
  public var json: String { configJSON(self) }
}
