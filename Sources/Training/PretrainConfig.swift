// The pretraining configuration: every setting of a SimSiam run, read from YAML on top of defaults, each key
// overridable as `--set section.key=value`. Key names follow MMSelfSup's config vocabulary where one exists.
import Foundation
import Models
import Support

/// Everything a SimSiam pretraining run needs. Unset keys keep the defaults below (the ImageNet recipe of
/// PROTOCOLS §1 for the optimiser, a small model and the quick Fashion-MNIST data for the rest).
public struct PretrainConfig: Codable, Sendable, Equatable {
  public var model = ModelSection()
  public var data = DataSection()
  public var optimizer = OptimizerSection()
  public var schedule = ScheduleSection()
  public var checkpoint = CheckpointSection()
  public var monitor = MonitorSection()
  /// Seed of initialisation, data order and augmentation; the CLI's `--seed` overrides it when given.
  public var seed: UInt64 = 0

  public init() {}

  /// Model sizes (MMSelfSup `model.backbone`, `model.neck`, `model.head.predictor`).
  public struct ModelSection: Codable, Sendable, Equatable {
    public var depth = 18
    public var widthMultiplier = 1.0
    public var cifarStem = false
    public var inChannels = 3
    public var zeroInitResidual = true
    public var projectorHiddenFeatures = 2048
    public var features = 2048
    public var projectorLayers = 3
    public var predictorHiddenFeatures = 512

    public init() {}

    enum CodingKeys: String, CodingKey {
      case depth, features
      case widthMultiplier = "width_multiplier", cifarStem = "cifar_stem", inChannels = "in_channels"
      case zeroInitResidual = "zero_init_residual", projectorHiddenFeatures = "projector_hidden"
      case projectorLayers = "projector_layers", predictorHiddenFeatures = "predictor_hidden"
    }
  }

  /// Which images and how each view is made (PROTOCOLS §1.1 pipeline, with every strength a key).
  public struct DataSection: Codable, Sendable, Equatable {
    /// `fashion-mnist` (IDX files), `cifar10` (python pickles folder), `image-folder` (root/class/img),
    /// or `synthetic` (generated patterns, for tests and smoke runs).
    public var kind = "fashion-mnist"
    public var path = "/usr/share/datasets/fashion-mnist"
    /// Use only the first `limit` samples (0: all), for short runs.
    public var limit = 0
    public var imageSize = 32
    public var cropScaleMin = 0.2
    public var cropScaleMax = 1.0
    public var brightness: Float = 0.4
    public var contrast: Float = 0.4
    public var saturation: Float = 0.4
    public var hue: Float = 0.1
    public var colorJitterProbability = 0.8
    public var grayscaleProbability = 0.2
    public var blurProbability = 0.5
    public var flipProbability = 0.5
    /// Per-channel mean and std of `(x/255 − mean)/std`; as many entries as `model.in_channels`.
    public var mean: [Float] = [0.485, 0.456, 0.406]
    public var std: [Float] = [0.229, 0.224, 0.225]
    /// Loader threads preparing batches ahead of the step.
    public var workers = 2
    public var prefetch = 2
    /// Replace an unreadable or corrupt image by the next readable one (deterministically) and count it, instead of
    /// stopping the run with an error naming the file.
    public var skipCorrupt = false

    public init() {}

    enum CodingKeys: String, CodingKey {
      case kind, path, limit, brightness, contrast, saturation, hue, mean, std, workers, prefetch
      case skipCorrupt = "skip_corrupt"
      case imageSize = "image_size", cropScaleMin = "crop_scale_min", cropScaleMax = "crop_scale_max"
      case colorJitterProbability = "color_jitter_p", grayscaleProbability = "grayscale_p"
      case blurProbability = "blur_p", flipProbability = "flip_p"
    }
  }

  /// SGD as PROTOCOLS §1.2: the LR actually used is `lr × batch_size / 256`.
  public struct OptimizerSection: Codable, Sendable, Equatable {
    public var lr: Float = 0.05
    public var momentum: Float = 0.9
    public var weightDecay: Float = 1e-4
    /// The predictor keeps the (scaled) base LR all run (MMSelfSup `SimSiamHook(fix_pred_lr=True)`).
    public var fixPredictorLR = true

    public init() {}

    enum CodingKeys: String, CodingKey {
      case lr, momentum
      case weightDecay = "weight_decay", fixPredictorLR = "fix_pred_lr"
    }
  }

  public struct ScheduleSection: Codable, Sendable, Equatable {
    public var epochs = 100
    /// Images per iteration (both views of each count once, as in MMSelfSup's `samples_per_gpu × gpus`).
    public var batchSize = 256
    /// mmcv `CosineAnnealing(min_lr)` per epoch.
    public var minLR: Float = 0
    /// Stop after this many minutes of training (0: no limit), at the end of an iteration, with a checkpoint;
    /// counted from the first iteration (the random-init kNN baseline before it is not included). The cap only
    /// stops: the LR schedule still follows `epochs`, so a stopped run is the prefix of the full one, and the log
    /// and the stored run's message say that the cosine was cut (`ScheduleCut`).
    public var maxMinutes = 0.0

    public init() {}

    enum CodingKeys: String, CodingKey {
      case epochs
      case batchSize = "batch_size", minLR = "min_lr", maxMinutes = "max_minutes"
    }
  }

  public struct CheckpointSection: Codable, Sendable, Equatable {
    /// Save every `interval` epochs, and always after the last one.
    public var interval = 1
    /// Keep the newest `keep` epoch checkpoints (0: keep all).
    public var keep = 3

    public init() {}
  }

  /// The cheap kNN monitor: cosine kNN on global-pooled backbone features of a held-out split.
  public struct MonitorSection: Codable, Sendable, Equatable {
    /// Run it after every `knn_interval` epochs (0: not between epochs).
    public var knnInterval = 0
    /// Run it on the initial (random) weights before training and on the final ones after it.
    public var knnAtEnd = false
    public var knnK = 20
    public var knnTemperature: Float = 0.07
    /// Labelled bank and query sizes (first samples of the train and test splits).
    public var knnTrainSamples = 10000
    public var knnTestSamples = 2000
    /// Collapse warning when the normalised output std falls below `collapse_fraction / √d`.
    public var collapseFraction: Float = 0.5

    public init() {}

    enum CodingKeys: String, CodingKey {
      case knnInterval = "knn_interval", knnAtEnd = "knn_at_end", knnK = "knn_k", knnTemperature = "knn_temperature"
      case knnTrainSamples = "knn_train_samples", knnTestSamples = "knn_test_samples"
      case collapseFraction = "collapse_fraction"
    }
  }

  /// The model these settings build.
  public var simSiam: SimSiamConfig {
    SimSiamConfig(backbone: ResNetConfig(depth: model.depth, widthMultiplier: model.widthMultiplier,
                                         cifarStem: model.cifarStem, zeroInitResidual: model.zeroInitResidual,
                                         inChannels: model.inChannels),
                  projectorHiddenFeatures: model.projectorHiddenFeatures, features: model.features,
                  projectorLayers: model.projectorLayers, predictorHiddenFeatures: model.predictorHiddenFeatures)
  }

  /// `lr × batch_size / 256` (PROTOCOLS §1.2; Goyal et al. 2017's linear scaling as the SimSiam paper uses it).
  public var scaledLearningRate: Float { optimizer.lr * Float(schedule.batchSize) / 256 }

  /// Every numeric key's declared valid range (issue 14 item 4), checked by `load`: the first violation throws
  /// `ConfigError.invalidValue` naming the key, the value and the range. Upper bounds keep a typo from allocating
  /// gigabytes (an image side of 100,000 or a 10⁶-wide projector) before the first step.
  public func validate() throws {
    let model = ConfigRanges(prefix: "model")
    if !ResNetConfig.supportedDepths.contains(self.model.depth) {
      try model.fail("depth", "must be one of \(ResNetConfig.supportedDepths), got \(self.model.depth)")
    }
    try model.check("width_multiplier", self.model.widthMultiplier, from: 0, to: 16, lowerOpen: true)
    if self.model.inChannels != 1 && self.model.inChannels != 3 {
      try model.fail("in_channels", "must be 1 or 3, got \(self.model.inChannels)")
    }
    try model.check("projector_hidden", self.model.projectorHiddenFeatures, in: 1...16384)
    try model.check("features", self.model.features, in: 1...16384)
    // 1: a single fc (+BN) layer; 2: the paper's CIFAR projector; 3: the ImageNet one.
    try model.check("projector_layers", self.model.projectorLayers, in: 1...16)
    try model.check("predictor_hidden", self.model.predictorHiddenFeatures, in: 1...16384)

    let data = ConfigRanges(prefix: "data")
    if !["fashion-mnist", "cifar10", "image-folder", "synthetic"].contains(self.data.kind) {
      try data.fail("kind", "must be fashion-mnist, cifar10, image-folder or synthetic, got '\(self.data.kind)'")
    }
    try data.check("limit", self.data.limit, atLeast: 0)  // 0: all samples
    try data.check("image_size", self.data.imageSize, in: 8...1024)
    try data.check("crop_scale_min", self.data.cropScaleMin, from: 0, to: 1, lowerOpen: true)
    try data.check("crop_scale_max", self.data.cropScaleMax, from: 0, to: 1, lowerOpen: true)
    if self.data.cropScaleMin > self.data.cropScaleMax {
      try data.fail("crop_scale_min", "must be ≤ data.crop_scale_max (\(self.data.cropScaleMax)), "
                      + "got \(self.data.cropScaleMin)")
    }
    try data.check("brightness", self.data.brightness, positive: true)
    try data.check("contrast", self.data.contrast, positive: true)
    try data.check("saturation", self.data.saturation, positive: true)
    try data.check("hue", self.data.hue, from: 0, to: 0.5)
    try data.check("color_jitter_p", self.data.colorJitterProbability, from: 0, to: 1)
    try data.check("grayscale_p", self.data.grayscaleProbability, from: 0, to: 1)
    try data.check("blur_p", self.data.blurProbability, from: 0, to: 1)
    try data.check("flip_p", self.data.flipProbability, from: 0, to: 1)
    try data.checkNormalization(mean: self.data.mean, std: self.data.std)
    if self.data.mean.count != self.model.inChannels {
      try data.fail("mean", "data.mean and data.std need \(self.model.inChannels) entries (model.in_channels), "
                      + "got \(self.data.mean.count)")
    }
    try data.check("workers", self.data.workers, in: 1...256)
    try data.check("prefetch", self.data.prefetch, in: 1...256)

    let optimizer = ConfigRanges(prefix: "optimizer")
    try optimizer.check("lr", self.optimizer.lr)
    try optimizer.check("momentum", self.optimizer.momentum, from: 0, to: 1, upperOpen: true)
    try optimizer.check("weight_decay", self.optimizer.weightDecay, positive: true)

    let schedule = ConfigRanges(prefix: "schedule")
    try schedule.check("epochs", self.schedule.epochs, in: 1...1_000_000)
    // BatchNorm needs 2 samples per batch.
    try schedule.check("batch_size", self.schedule.batchSize, in: 2...65536)
    try schedule.check("min_lr", self.schedule.minLR, positive: true)
    try schedule.check("max_minutes", self.schedule.maxMinutes, positive: true)  // 0: no limit

    let checkpoint = ConfigRanges(prefix: "checkpoint")
    try checkpoint.check("interval", self.checkpoint.interval, atLeast: 1)
    try checkpoint.check("keep", self.checkpoint.keep, atLeast: 0)  // 0: keep all

    let monitor = ConfigRanges(prefix: "monitor")
    try monitor.check("knn_interval", self.monitor.knnInterval, atLeast: 0)  // 0: not between epochs
    try monitor.check("knn_k", self.monitor.knnK, atLeast: 1)
    try monitor.check("knn_temperature", self.monitor.knnTemperature)
    try monitor.check("knn_train_samples", self.monitor.knnTrainSamples, atLeast: 1)
    try monitor.check("knn_test_samples", self.monitor.knnTestSamples, atLeast: 1)
    try monitor.check("collapse_fraction", self.monitor.collapseFraction, from: 0, to: 1)
  }
}
