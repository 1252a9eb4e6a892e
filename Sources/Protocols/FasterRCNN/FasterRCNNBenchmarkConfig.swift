// The config of `run faster-rcnn`: MMSelfSup's Faster R-CNN R50-C4 benchmark on VOC07+12 (PROTOCOLS §5.1, §5.5) as
// YAML over Codable defaults through ConfigYAML (unknown key → the closest key; `--set key=value` overrides). The
// Codable defaults are the reference protocol, configs/benchmarks/mmdetection/voc0712/
// faster_rcnn_r50_c4_mstrain_24k_voc0712.yaml; FasterRCNNPresets also holds the quickstart's scene miniature. Every
// numeric key is range-checked at load.
import Datasets
import Foundation
import Layers
import Support

/// The Faster R-CNN C4 fine-tuning config (`run faster-rcnn`).
public struct FasterRCNNBenchmarkConfig: Codable, Sendable, Equatable {
  public var model = ModelSection()
  public var data = DataSection()
  /// `optimizer.*` (SGDSection): the reference's SGD, lr 0.02, momentum 0.9, weight decay 1e-4.
  public var optimizer = SGDSection(lr: 0.02, weightDecay: 1e-4)
  public var schedule = ScheduleSection()
  /// Seeds the heads' initialisation, the data order, the scale/flip draws and the RPN/ROI samplers.
  public var seed: UInt64 = 0

  public init() {}

  /// `model.*`: mmselfsup `_base_/models/faster_rcnn_r50_c4.py` — RPN on res4 (C4), ROIAlign → res5 + extra BN.
  public struct ModelSection: Codable, Sendable, Equatable {
    /// Anchor sizes in input pixels (mmdet scales [2,4,8,16,32] × stride 16) and aspect ratios (h/w).
    public var anchorSizes: [Double] = [32, 64, 128, 256, 512]
    public var anchorRatios: [Double] = [0.5, 1.0, 2.0]
    /// RPN training: anchors sampled per image and their positive fraction; proposals kept before / after NMS.
    public var rpnBatchSize = 256
    public var rpnPositiveFraction = 0.5
    public var rpnPreNMSTrain = 12000
    public var rpnPostNMSTrain = 2000
    public var rpnPreNMSTest = 6000
    public var rpnPostNMSTest = 1000
    public var rpnNMSThreshold = 0.7
    /// ROI head training: ROIs sampled per image (GT boxes added to the proposals) and their positive fraction.
    public var roiBatchSize = 512
    public var roiPositiveFraction = 0.25
    /// RoIAlign output (14 → res5 with stride 2 → 7×7), sampling ratio 0 (adaptive), aligned.
    public var roiSize = 14
    /// Test: score threshold, per-class NMS IoU and detections kept per image.
    public var scoreThreshold = 0.05
    public var nmsThreshold = 0.5
    public var detectionsPerImage = 100

    public init() {}

    enum CodingKeys: String, CodingKey {
      case anchorSizes = "anchor_sizes", anchorRatios = "anchor_ratios", rpnBatchSize = "rpn_batch_size"
      case rpnPositiveFraction = "rpn_positive_fraction", rpnPreNMSTrain = "rpn_pre_nms_train"
      case rpnPostNMSTrain = "rpn_post_nms_train", rpnPreNMSTest = "rpn_pre_nms_test"
      case rpnPostNMSTest = "rpn_post_nms_test", rpnNMSThreshold = "rpn_nms_threshold"
      case roiBatchSize = "roi_batch_size", roiPositiveFraction = "roi_positive_fraction", roiSize = "roi_size"
      case scoreThreshold = "score_threshold", nmsThreshold = "nms_threshold"
      case detectionsPerImage = "detections_per_image"
    }
  }

  /// `data.*`: the VOC devkits and mmdet's pipeline (`voc0712` data config of the benchmark).
  public struct DataSection: Codable, Sendable, Equatable {
    /// VOC devkit year folders trained on together (each with JPEGImages, Annotations, ImageSets/Main); the FIRST
    /// one's `test_split` is the test set (VOC2007 test).
    public var paths = ["data/VOCdevkit/VOC2007", "data/VOCdevkit/VOC2012"]
    public var trainSplit = "trainval"
    public var testSplit = "test"
    /// Resize: the long-side bound and the short sides drawn from ('value' mode), keep ratio.
    public var maxSize = 1333
    public var trainShortSides = Array(stride(from: 480, through: 800, by: 32))
    public var testShortSide = 800
    public var flipProbability = 0.5
    /// Normalize: RGB mean and std on the 0–255 scale (a 1-channel backbone sees the channels' mean).
    public var mean: [Double] = [123.675, 116.28, 103.53]
    public var std: [Double] = [58.395, 57.12, 57.375]
    /// Pad every image to a multiple of this.
    public var padDivisor = 32
    /// Difficult boxes: `ignore` drops them from training (mmdet 2.x) — `keep` trains on them (detectron2).
    /// Evaluation always ignores them (neither TP nor FP).
    public var difficult = "ignore"
    /// VOC XML boxes as read: `mmdet` subtracts 1 from all four coordinates (mmdet 2.x XMLDataset), `detectron2`
    /// from xmin and ymin only; detections are scored in the same frame.
    public var boxConvention = "mmdet"
    /// Images per iteration in this process (the reference: 8 GPUs × 2 with SyncBN = 16).
    public var batchSize = 16
    /// Train / evaluate on the first N images only (0: all); recorded as protocol departures.
    public var trainLimit = 0
    public var testLimit = 0

    public init() {}

    enum CodingKeys: String, CodingKey {
      case paths, mean, std, difficult
      case trainSplit = "train_split", testSplit = "test_split", maxSize = "max_size"
      case trainShortSides = "train_short_sides", testShortSide = "test_short_side"
      case flipProbability = "flip_prob", padDivisor = "pad_divisor", batchSize = "batch_size"
      case boxConvention = "box_convention"
      case trainLimit = "train_limit", testLimit = "test_limit"
    }
  }

  /// `schedule.*`: mmdet `schedule_24k.py` — linear warm-up, then ×gamma at each step, by iteration.
  public struct ScheduleSection: Codable, Sendable, Equatable {
    public var iterations = 24_000
    public var warmupIterations = 100
    public var warmupRatio = 0.001
    public var steps = [18_000, 22_000]
    public var gamma = 0.1
    /// Iterations between checkpoints and between evaluations (0: only at the end).
    public var checkpointInterval = 2000
    public var evaluationInterval = 2000

    public init() {}

    enum CodingKeys: String, CodingKey {
      case iterations, steps, gamma
      case warmupIterations = "warmup_iterations", warmupRatio = "warmup_ratio"
      case checkpointInterval = "checkpoint_interval", evaluationInterval = "evaluation_interval"
    }
  }

  // MARK: - Validation and loading

  /// Every key's declared range; the first violation throws `ConfigError.invalidValue` naming key, value and range.
  public func validate() throws {
    let model = ConfigRanges(prefix: "model")
    if self.model.anchorSizes.isEmpty || !self.model.anchorSizes.allSatisfy({ $0.isFinite && $0 >= 1 && $0 <= 4096 }) {
      try model.fail("anchor_sizes", "must list sizes in 1…4096 pixels, got \(self.model.anchorSizes)")
    }
    if self.model.anchorRatios.isEmpty
        || !self.model.anchorRatios.allSatisfy({ $0.isFinite && $0 >= 0.01 && $0 <= 100 }) {
      try model.fail("anchor_ratios", "must list ratios in 0.01…100, got \(self.model.anchorRatios)")
    }
    try model.check("rpn_batch_size", self.model.rpnBatchSize, in: 1...100_000)
    try model.check("rpn_positive_fraction", self.model.rpnPositiveFraction, from: 0, to: 1, lowerOpen: true)
    try model.check("rpn_pre_nms_train", self.model.rpnPreNMSTrain, in: 1...1_000_000)
    try model.check("rpn_post_nms_train", self.model.rpnPostNMSTrain, in: 1...self.model.rpnPreNMSTrain)
    try model.check("rpn_pre_nms_test", self.model.rpnPreNMSTest, in: 1...1_000_000)
    try model.check("rpn_post_nms_test", self.model.rpnPostNMSTest, in: 1...self.model.rpnPreNMSTest)
    try model.check("rpn_nms_threshold", self.model.rpnNMSThreshold, from: 0, to: 1, lowerOpen: true)
    try model.check("roi_batch_size", self.model.roiBatchSize, in: 1...100_000)
    try model.check("roi_positive_fraction", self.model.roiPositiveFraction, from: 0, to: 1, lowerOpen: true)
    try model.check("roi_size", self.model.roiSize, in: 2...64)
    if self.model.roiSize % 2 != 0 { try model.fail("roi_size", "must be even (res5 halves it), got \(self.model.roiSize)") }
    try model.check("score_threshold", self.model.scoreThreshold, from: 0, to: 1, upperOpen: true)
    try model.check("nms_threshold", self.model.nmsThreshold, from: 0, to: 1, lowerOpen: true)
    try model.check("detections_per_image", self.model.detectionsPerImage, in: 1...100_000)

    let data = ConfigRanges(prefix: "data")
    if self.data.paths.isEmpty || self.data.paths.contains(where: \.isEmpty) {
      try data.fail("paths", "must list at least one VOC devkit year folder, got \(self.data.paths)")
    }
    try data.check("max_size", self.data.maxSize, in: 16...16384)
    try data.check("train_short_sides", self.data.trainShortSides, eachIn: 8...self.data.maxSize)
    try data.check("test_short_side", self.data.testShortSide, in: 8...self.data.maxSize)
    try data.check("flip_prob", self.data.flipProbability, from: 0, to: 1)
    try data.checkNormalization(mean: self.data.mean.map(Float.init), std: self.data.std.map(Float.init))
    try data.check("pad_divisor", self.data.padDivisor, in: 1...1024)
    if DifficultHandling(rawValue: self.data.difficult) == nil {
      try data.fail("difficult", "must be one of \(DifficultHandling.allCases.map(\.rawValue).joined(separator: ", ")), "
                      + "got '\(self.data.difficult)'")
    }
    if VOCBoxConvention(rawValue: self.data.boxConvention) == nil {
      try data.fail("box_convention", "must be one of \(VOCBoxConvention.allCases.map(\.rawValue).joined(separator: ", ")), "
                      + "got '\(self.data.boxConvention)'")
    }
    try data.check("batch_size", self.data.batchSize, in: 1...1024)
    try data.check("train_limit", self.data.trainLimit, in: 0...10_000_000)
    try data.check("test_limit", self.data.testLimit, in: 0...10_000_000)
    for (key, split) in [("train_split", self.data.trainSplit), ("test_split", self.data.testSplit)] where split.isEmpty {
      try data.fail(key, "must name a split of ImageSets/Main (e.g. trainval, test), got ''")
    }

    try optimizer.checkRanges()

    let schedule = ConfigRanges(prefix: "schedule")
    try schedule.check("iterations", self.schedule.iterations, in: 1...10_000_000)
    try schedule.check("warmup_iterations", self.schedule.warmupIterations, in: 0...10_000_000)
    try schedule.check("warmup_ratio", self.schedule.warmupRatio, from: 0, to: 1, lowerOpen: true)
    try schedule.check("steps", self.schedule.steps, eachIn: 1...10_000_000, allowEmpty: true)
    if self.schedule.steps != self.schedule.steps.sorted() {
      try schedule.fail("steps", "must be increasing, got \(self.schedule.steps)")
    }
    try schedule.check("gamma", self.schedule.gamma, from: 0, to: 1, lowerOpen: true)
    try schedule.check("checkpoint_interval", self.schedule.checkpointInterval, in: 0...10_000_000)
    try schedule.check("evaluation_interval", self.schedule.evaluationInterval, in: 0...10_000_000)
  }

  public var difficultHandling: DifficultHandling { DifficultHandling(rawValue: data.difficult) ?? .ignore }
  public var boxConventionValue: VOCBoxConvention { VOCBoxConvention(rawValue: data.boxConvention) ?? .mmdet }

  /// mmcv StepLrUpdater with linear warm-up, by iteration: the rate before iteration `iteration` runs.
  func learningRate(iteration: Int) -> Float {
    let regular = stepLearningRate(base: Float(optimizer.lr), gamma: Float(schedule.gamma),
                                   milestones: schedule.steps, progress: iteration)
    return linearWarmupLearningRate(regular, ratio: Float(schedule.warmupRatio), iteration: iteration,
                                    warmupIterations: schedule.warmupIterations)
  }

  /// `defaults`, then `yaml`, then `overrides`; validated.
  public static func load(yaml: String?, source: String, overrides: [String] = [],
                          defaults: FasterRCNNBenchmarkConfig = FasterRCNNBenchmarkConfig()) throws
    -> FasterRCNNBenchmarkConfig {
    let config = try ConfigYAML.load(FasterRCNNBenchmarkConfig.self, defaults: defaults, yaml: yaml, source: source,
                                     overrides: overrides)
    try config.validate()
    return config
  }

  /// The config as one-line JSON, keys sorted (stored with every run).
  public var json: String { configJSON(self) }
}
