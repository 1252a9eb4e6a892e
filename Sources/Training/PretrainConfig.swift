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

  /// Settings that cannot train: the first problem found, as a sentence naming the key.
  public func validate() throws {
    func fail(_ key: String, _ reason: String) throws { throw ConfigError.invalidValue(key: key, reason: reason) }
    if !ResNetConfig.supportedDepths.contains(model.depth) {
      try fail("model.depth", "must be one of \(ResNetConfig.supportedDepths), got \(model.depth)")
    }
    if model.widthMultiplier <= 0 { try fail("model.width_multiplier", "must be positive") }
    if model.inChannels != 1 && model.inChannels != 3 { try fail("model.in_channels", "must be 1 or 3") }
    if data.mean.count != model.inChannels || data.std.count != model.inChannels {
      try fail("data.mean", "data.mean and data.std need \(model.inChannels) entries (model.in_channels)")
    }
    if data.std.contains(0) { try fail("data.std", "must not contain 0") }
    if !(0 < data.cropScaleMin && data.cropScaleMin <= data.cropScaleMax) {
      try fail("data.crop_scale_min", "needs 0 < crop_scale_min ≤ crop_scale_max")
    }
    if data.imageSize < 8 { try fail("data.image_size", "must be at least 8") }
    if data.hue < 0 || data.hue > 0.5 { try fail("data.hue", "must lie in 0…0.5") }
    if data.workers < 1 { try fail("data.workers", "must be at least 1") }
    if schedule.epochs < 1 { try fail("schedule.epochs", "must be at least 1") }
    if schedule.batchSize < 2 { try fail("schedule.batch_size", "must be at least 2 (BatchNorm needs 2 samples)") }
    if checkpoint.interval < 1 { try fail("checkpoint.interval", "must be at least 1") }
    if checkpoint.keep < 0 { try fail("checkpoint.keep", "must be 0 (keep all) or positive") }
    if monitor.knnInterval > 0 || monitor.knnAtEnd {
      if monitor.knnK < 1 { try fail("monitor.knn_k", "must be at least 1") }
      if monitor.knnTemperature <= 0 { try fail("monitor.knn_temperature", "must be positive") }
      if monitor.knnTrainSamples < 1 { try fail("monitor.knn_train_samples", "must be at least 1 (the kNN bank)") }
    }
    if !["fashion-mnist", "cifar10", "image-folder", "synthetic"].contains(data.kind) {
      try fail("data.kind", "must be fashion-mnist, cifar10, image-folder or synthetic, got '\(data.kind)'")
    }
  }
}
