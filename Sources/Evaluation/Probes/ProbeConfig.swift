// Configs of `run linear` and `run knn`: YAML over Codable defaults through ConfigYAML (unknown key → error naming
// the closest key; `--set key=value` overrides; every numeric key range-checked at load, see ConfigRanges.swift).
// The Codable defaults are MMSelfSup's ImageNet protocols: resnet50_mhead_8xb32-steplr-90e_in1k (linear) and
// knn_imagenet (kNN); configs/benchmarks/classification/ holds the other MMSelfSup configs and the quick
// Fashion-MNIST ones.
import Foundation
import Datasets
import Layers
import Support

/// `data.*`: which images, and the two transforms.
public struct ClassificationDataConfig: Codable, Sendable, Equatable {
  /// fashion-mnist, cifar10, image-folder, image-list, places205, inaturalist2018 or synthetic.
  public var kind = "image-folder"
  public var path = "data/imagenet"
  /// image-list / places205 / inaturalist2018: list files (relative to `path`) and image roots.
  public var trainList = ""
  public var valList = ""
  public var trainRoot = ""
  public var valRoot = ""
  /// Use the first `limit` training and `test_limit` test images (0: all).
  public var limit = 0
  public var testLimit = 0
  /// Test transform Resize(resize) → CenterCrop(crop); training crops are `crop` too.
  public var resize = 256
  public var crop = 224
  /// rrc-flip-jitter-lighting (§4.1), rrc-flip (§4.2, §4.4) or resize-randomcrop-flip (§4.3).
  public var trainTransform = ProbeTrainTransform.randomResizedCropJitterLighting.rawValue
  public var mean: [Float] = [0.485, 0.456, 0.406]
  public var std: [Float] = [0.229, 0.224, 0.225]
  /// Images per backbone forward when extracting features.
  public var extractBatchSize = 64

  public init() {}

  enum CodingKeys: String, CodingKey {
    case kind, path, limit, resize, crop, mean, std
    case trainList = "train_list", valList = "val_list", trainRoot = "train_root", valRoot = "val_root"
    case testLimit = "test_limit", trainTransform = "train_transform", extractBatchSize = "extract_batch_size"
  }

  public var location: ClassificationDataLocation {
    ClassificationDataLocation(kind: ClassificationDataKind(rawValue: kind) ?? .imageFolder, path: path,
                               trainList: trainList, valList: valList, trainRoot: trainRoot, valRoot: valRoot,
                               limit: limit, testLimit: testLimit)
  }

  /// The normalisation for a backbone with `channels` input channels: the configured one, replicated from one
  /// channel to three or averaged from three to one when the backbone differs from the config.
  public func normalization(channels: Int) -> Normalization {
    func fit(_ values: [Float]) -> [Float] {
      if values.count == channels { return values }
      if channels == 3 { return [Float](repeating: values[0], count: 3) }
      return [values.reduce(0, +) / Float(values.count)]
    }
    return Normalization(mean: fit(mean), std: fit(std))
  }

  /// The deterministic test transform.
  public var testTransform: EvaluationTransform {
    EvaluationTransform(resize: resize, size: crop, mode: .centerCrop)
  }

  func validate(prefix: String = "data") throws {
    func fail(_ key: String, _ reason: String) throws {
      throw ConfigError.invalidValue(key: "\(prefix).\(key)", reason: reason)
    }
    if ClassificationDataKind(rawValue: kind) == nil {
      try fail("kind", "must be one of \(ClassificationDataKind.allCases.map(\.rawValue).joined(separator: ", ")), "
                 + "got '\(kind)'")
    }
    if ProbeTrainTransform(rawValue: trainTransform) == nil {
      try fail("train_transform", "must be one of "
                 + "\(ProbeTrainTransform.allCases.map(\.rawValue).joined(separator: ", ")), got '\(trainTransform)'")
    }
    let ranges = ConfigRanges(prefix: prefix)
    try ranges.check("crop", crop, in: 8...1024)
    try ranges.check("resize", resize, in: crop...4096)
    try ranges.checkNormalization(mean: mean, std: std)
    try ranges.check("limit", limit, atLeast: 0)
    try ranges.check("test_limit", testLimit, atLeast: 0)
    try ranges.check("extract_batch_size", extractBatchSize, in: 1...4096)
  }
}

/// The linear-probe config (`run linear`).
public struct LinearProbeConfig: Codable, Sendable, Equatable {
  public var data = ClassificationDataConfig()
  public var head = HeadSection()
  public var optimizer = OptimizerSection()
  public var schedule = ScheduleSection()
  public var evaluation = EvaluationSection()
  /// Train the heads on features extracted once with the test transform (fast CPU mode; a protocol deviation
  /// recorded with the run). `--cache-features` sets it.
  public var cacheFeatures = false
  public var seed: UInt64 = 0

  public init() {}

  enum CodingKeys: String, CodingKey {
    case data, head, optimizer, schedule, evaluation, seed
    case cacheFeatures = "cache_features"
  }

  public struct HeadSection: Codable, Sendable, Equatable {
    /// mhead (MultiClsHead on `layers`) or avgpool (ClsHead on GAP).
    public var type = ProbeKind.mhead.rawValue
    public var layers = FeatureLayer.stages.map(\.rawValue)
    public var bnMomentum: Float = 0.1
    public var initStd: Float = 0.01
    public init() {}
    enum CodingKeys: String, CodingKey {
      case type, layers
      case bnMomentum = "bn_momentum", initStd = "init_std"
    }
  }

  public struct OptimizerSection: Codable, Sendable, Equatable {
    /// sgd or lars (MMSelfSup's).
    public var type = ProbeOptimization.Method.sgd.rawValue
    /// The learning rate at `base_batch_size`; the run uses lr × batch_size / base_batch_size.
    public var lr: Float = 0.01
    public var baseBatchSize = 256
    public var momentum: Float = 0.9
    public var weightDecay: Float = 1e-4
    public var nesterov = true
    public init() {}
    enum CodingKeys: String, CodingKey {
      case type, lr, momentum, nesterov
      case baseBatchSize = "base_batch_size", weightDecay = "weight_decay"
    }
  }

  public struct ScheduleSection: Codable, Sendable, Equatable {
    public var epochs = 90
    public var batchSize = 256
    /// step (× gamma at each milestone) or cosine (CosineAnnealing(min_lr)), per epoch as mmcv's hooks.
    public var policy = "step"
    public var milestones = [30, 60, 90]
    public var gamma: Float = 0.1
    public var minLR: Float = 0
    public init() {}
    enum CodingKeys: String, CodingKey {
      case epochs, policy, milestones, gamma
      case batchSize = "batch_size", minLR = "min_lr"
    }
  }

  public struct EvaluationSection: Codable, Sendable, Equatable {
    /// Test top-1/top-5 every `interval` epochs and after the last.
    public var interval = 10
    public init() {}
  }

  public var kind: ProbeKind { ProbeKind(rawValue: head.type) ?? .mhead }
  public var layers: [FeatureLayer] {
    kind == .avgpool ? [.avgpool] : head.layers.compactMap(FeatureLayer.init(rawValue:))
  }

  /// lr × batch_size / base_batch_size (linear scaling, Goyal et al. 2017; MMSelfSup's configs state the rate of
  /// their own total batch: 0.01 at 256 for the multi-head probe, 1.6 at 4096 for the AvgPool probe).
  public var scaledLearningRate: Float {
    optimizer.lr * Float(schedule.batchSize) / Float(optimizer.baseBatchSize)
  }

  public var optimization: ProbeOptimization {
    let policy: LearningRateSchedule.Policy = schedule.policy == "cosine"
      ? .cosine(minimum: schedule.minLR) : .step(milestones: schedule.milestones, gamma: schedule.gamma)
    return ProbeOptimization(method: ProbeOptimization.Method(rawValue: optimizer.type) ?? .sgd,
                             learningRate: scaledLearningRate, momentum: optimizer.momentum,
                             weightDecay: optimizer.weightDecay, nesterov: optimizer.nesterov,
                             schedule: LearningRateSchedule(policy), epochs: schedule.epochs)
  }

  public func validate() throws {
    func fail(_ key: String, _ reason: String) throws { throw ConfigError.invalidValue(key: key, reason: reason) }
    try data.validate()
    if ProbeKind(rawValue: head.type) == nil { try fail("head.type", "must be mhead or avgpool, got '\(head.type)'") }
    if kind == .mhead {
      if head.layers.isEmpty { try fail("head.layers", "must name at least one of feature1 … feature5") }
      for name in head.layers where FeatureLayer(rawValue: name) == nil || name == "avgpool" {
        try fail("head.layers", "has '\(name)'; use feature1 … feature5 (or head.type: avgpool)")
      }
      if Set(head.layers).count != head.layers.count { try fail("head.layers", "names a layer twice") }
    }
    if ProbeOptimization.Method(rawValue: optimizer.type) == nil {
      try fail("optimizer.type", "must be sgd or lars, got '\(optimizer.type)'")
    }
    let ranges = ConfigRanges()
    try ranges.check("head.bn_momentum", head.bnMomentum, from: 0, to: 1)
    try ranges.check("head.init_std", head.initStd, positive: true)
    try ranges.check("optimizer.lr", optimizer.lr)
    try ranges.check("optimizer.base_batch_size", optimizer.baseBatchSize, in: 1...1_048_576)
    try ranges.check("optimizer.momentum", optimizer.momentum, from: 0, to: 1, upperOpen: true)
    try ranges.check("optimizer.weight_decay", optimizer.weightDecay, positive: true)
    if optimizer.nesterov && optimizer.momentum <= 0 { try fail("optimizer.nesterov", "needs momentum > 0") }
    try ranges.check("schedule.epochs", schedule.epochs, in: 1...100_000)
    try ranges.check("schedule.batch_size", schedule.batchSize, in: 2...65_536)  // 2: BatchNorm needs 2 samples
    if !["step", "cosine"].contains(schedule.policy) {
      try fail("schedule.policy", "must be step or cosine, got '\(schedule.policy)'")
    }
    try ranges.check("schedule.milestones", schedule.milestones, eachIn: 1...100_000, allowEmpty: true)
    try ranges.check("schedule.gamma", schedule.gamma, from: 0, to: 1, lowerOpen: true)
    try ranges.check("schedule.min_lr", schedule.minLR, positive: true)
    try ranges.check("evaluation.interval", evaluation.interval, in: 1...100_000)
  }

  /// Defaults, then `yaml`, then `overrides`; validated.
  public static func load(yaml: String?, source: String, overrides: [String] = []) throws -> LinearProbeConfig {
    let config = try ConfigYAML.load(LinearProbeConfig.self, defaults: LinearProbeConfig(), yaml: yaml,
                                     source: source, overrides: overrides)
    try config.validate()
    return config
  }

  /// The config as one-line JSON (stored with every run).
  public var json: String { configJSON(self) }
}

/// The kNN config (`run knn`).
public struct KNNConfig: Codable, Sendable, Equatable {
  public var data = ClassificationDataConfig()
  public var knn = KNNSection()
  public var seed: UInt64 = 0

  public init() {
    // MMSelfSup knn_imagenet.py: Resize(256) → CenterCrop(224) for bank and queries; no training transform.
    data.trainTransform = ProbeTrainTransform.randomResizedCropFlip.rawValue
  }

  public struct KNNSection: Codable, Sendable, Equatable {
    public var k = [10, 20, 100, 200]
    public var temperature: Float = 0.07
    public var queryBlock = 1024
    public var bankBlock = 16_384
    public init() {}
    enum CodingKeys: String, CodingKey {
      case k, temperature
      case queryBlock = "query_block", bankBlock = "bank_block"
    }
  }

  public func validate() throws {
    func fail(_ key: String, _ reason: String) throws { throw ConfigError.invalidValue(key: key, reason: reason) }
    try data.validate()
    let ranges = ConfigRanges()
    try ranges.check("knn.k", knn.k, eachIn: 1...100_000)
    try ranges.check("knn.temperature", knn.temperature)
    try ranges.check("knn.query_block", knn.queryBlock, in: 1...65_536)
    try ranges.check("knn.bank_block", knn.bankBlock, in: 1...1_048_576)
    if knn.queryBlock * knn.bankBlock > Self.maximumBlockScalars {
      try fail("knn.bank_block", "makes query_block × bank_block = \(knn.queryBlock * knn.bankBlock) similarities "
                 + "per block; the limit is \(Self.maximumBlockScalars) (1 GiB of Float)")
    }
  }

  /// The most similarities one block may hold (query_block × bank_block Floats: 1 GiB).
  public static let maximumBlockScalars = 1 << 28

  public static func load(yaml: String?, source: String, overrides: [String] = []) throws -> KNNConfig {
    let config = try ConfigYAML.load(KNNConfig.self, defaults: KNNConfig(), yaml: yaml, source: source,
                                     overrides: overrides)
    try config.validate()
    return config
  }

  public var json: String { configJSON(self) }
}
