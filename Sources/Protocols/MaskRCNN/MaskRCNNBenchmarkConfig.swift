// The config of `run mask-rcnn`: MMSelfSup's Mask R-CNN R50-FPN 1x benchmark on COCO2017 (PROTOCOLS §5.2, §5.5) as
// YAML over Codable defaults through ConfigYAML (unknown key → the closest key; `--set key=value` overrides). The
// Codable defaults are the reference protocol, configs/benchmarks/mmdetection/coco/mask_rcnn_r50_fpn_mstrain_1x_coco.yaml;
// MaskRCNNPresets also holds the quickstart's scene miniature. Every numeric key is range-checked at load.
import Foundation
import Layers
import Support

/// The Mask R-CNN FPN fine-tuning config (`run mask-rcnn`).
public struct MaskRCNNBenchmarkConfig: Codable, Sendable, Equatable {
  public var model = ModelSection()
  public var data = DataSection()
  /// `optimizer.*` (SGDSection): the reference's SGD, lr 0.02, momentum 0.9, weight decay 1e-4.
  public var optimizer = SGDSection(lr: 0.02, weightDecay: 1e-4)
  public var schedule = ScheduleSection()
  /// Seeds the neck's and heads' initialisation, the data order, the scale/flip draws and the RPN/ROI samplers.
  public var seed: UInt64 = 0

  public init() {}

  /// `model.*`: mmdet 2.x `_base_/models/mask_rcnn_r50_fpn.py` with MMSelfSup's SyncBN in the neck and both heads.
  public struct ModelSection: Codable, Sendable, Equatable {
    /// FPN output channels (P2–P6) and whether its convs carry a BN (norm_cfg; the benchmark: SyncBN).
    public var fpnChannels = 256
    public var norm = true
    /// RPN anchors: one scale (× the level's stride, P2–P6: the backbone's C2–C5 strides and twice C5's, 4…64 for
    /// an ImageNet stem) and aspect ratios (h/w).
    public var anchorScale = 8.0
    public var anchorRatios: [Double] = [0.5, 1.0, 2.0]
    /// RPN training: anchors sampled per image and their positive fraction; proposals kept per level before NMS
    /// and per image after it (train / test).
    public var rpnBatchSize = 256
    public var rpnPositiveFraction = 0.5
    public var rpnPreNMSTrain = 2000
    public var rpnPostNMSTrain = 1000
    public var rpnPreNMSTest = 1000
    public var rpnPostNMSTest = 1000
    public var rpnNMSThreshold = 0.7
    /// ROI heads training: ROIs sampled per image (GT boxes added) and their positive fraction.
    public var roiBatchSize = 512
    public var roiPositiveFraction = 0.25
    /// ROI level mapping (mmdet SingleRoIExtractor `finest_scale`): an ROI of side √(wh) goes to level
    /// ⌊log2(side / finest_scale)⌋ of P2–P5; 56 = 14 × P2's stride 4.
    public var roiFinestScale = 56.0
    /// Shared4Conv1FC box head: RoIAlign size, conv channels, fc width.
    public var boxROISize = 7
    public var boxConvChannels = 256
    public var boxFCChannels = 1024
    /// FCN mask head: RoIAlign size (its output is twice this: the 28×28 mask targets), conv channels.
    public var maskROISize = 14
    public var maskConvChannels = 256
    /// Test: score threshold, per-class NMS IoU, detections kept per image, mask binarisation threshold.
    public var scoreThreshold = 0.05
    public var nmsThreshold = 0.5
    public var detectionsPerImage = 100
    public var maskThreshold = 0.5

    public init() {}

    enum CodingKeys: String, CodingKey {
      case norm
      case fpnChannels = "fpn_channels", anchorScale = "anchor_scale", anchorRatios = "anchor_ratios"
      case roiFinestScale = "roi_finest_scale", rpnBatchSize = "rpn_batch_size"
      case rpnPositiveFraction = "rpn_positive_fraction", rpnPreNMSTrain = "rpn_pre_nms_train"
      case rpnPostNMSTrain = "rpn_post_nms_train", rpnPreNMSTest = "rpn_pre_nms_test"
      case rpnPostNMSTest = "rpn_post_nms_test", rpnNMSThreshold = "rpn_nms_threshold"
      case roiBatchSize = "roi_batch_size", roiPositiveFraction = "roi_positive_fraction"
      case boxROISize = "box_roi_size", boxConvChannels = "box_conv_channels", boxFCChannels = "box_fc_channels"
      case maskROISize = "mask_roi_size", maskConvChannels = "mask_conv_channels"
      case scoreThreshold = "score_threshold", nmsThreshold = "nms_threshold"
      case detectionsPerImage = "detections_per_image", maskThreshold = "mask_threshold"
    }
  }

  /// `data.*`: a COCO-layout folder and mmdet's `coco_instance` pipeline (multi-scale as the benchmark overrides it).
  public struct DataSection: Codable, Sendable, Equatable {
    /// The COCO folder; the json files and image folders below are relative to it (images: to `*_images`).
    public var root = "data/coco"
    public var trainJSON = "annotations/instances_train2017.json"
    public var trainImages = "train2017"
    public var testJSON = "annotations/instances_val2017.json"
    public var testImages = "val2017"
    /// Resize: the long-side bound and the short sides drawn from ('value' mode), keep ratio.
    public var maxSize = 1333
    public var trainShortSides = [640, 672, 704, 736, 768, 800]
    public var testShortSide = 800
    public var flipProbability = 0.5
    /// Normalize: RGB mean and std on the 0–255 scale (a 1-channel backbone sees the channels' mean).
    public var mean: [Double] = [123.675, 116.28, 103.53]
    public var std: [Double] = [58.395, 57.12, 57.375]
    public var padDivisor = 32
    /// Images per iteration in this process (the reference: 8 GPUs × 2 with SyncBN = 16).
    public var batchSize = 16
    /// Train / evaluate on the first N images only (0: all); recorded as protocol departures.
    public var trainLimit = 0
    public var testLimit = 0

    public init() {}

    enum CodingKeys: String, CodingKey {
      case root, mean, std
      case trainJSON = "train_json", trainImages = "train_images", testJSON = "test_json", testImages = "test_images"
      case maxSize = "max_size", trainShortSides = "train_short_sides", testShortSide = "test_short_side"
      case flipProbability = "flip_prob", padDivisor = "pad_divisor", batchSize = "batch_size"
      case trainLimit = "train_limit", testLimit = "test_limit"
    }
  }

  /// `schedule.*`: mmdet's `schedule_1x.py` by epoch — linear warm-up by iteration, ×gamma at the step epochs.
  /// An epoch is ⌈train images / batch_size⌉ iterations (mmdet's GroupSampler pads the last batch).
  public struct ScheduleSection: Codable, Sendable, Equatable {
    public var epochs = 12
    public var stepEpochs = [8, 11]
    public var gamma = 0.1
    public var warmupIterations = 1000
    public var warmupRatio = 0.001
    /// Iterations between checkpoints and between evaluations (0: only at the end).
    public var checkpointInterval = 5000
    public var evaluationInterval = 0

    public init() {}

    enum CodingKeys: String, CodingKey {
      case epochs, gamma
      case stepEpochs = "step_epochs", warmupIterations = "warmup_iterations", warmupRatio = "warmup_ratio"
      case checkpointInterval = "checkpoint_interval", evaluationInterval = "evaluation_interval"
    }
  }

  // MARK: - Validation and loading

  /// Every key's declared range; the first violation throws `ConfigError.invalidValue` naming key, value and range.
  public func validate() throws {
    let model = ConfigRanges(prefix: "model")
    try model.check("fpn_channels", self.model.fpnChannels, in: 1...4096)
    try model.check("anchor_scale", self.model.anchorScale, from: 0.01, to: 1024)
    if self.model.anchorRatios.isEmpty
        || !self.model.anchorRatios.allSatisfy({ $0.isFinite && $0 >= 0.01 && $0 <= 100 }) {
      try model.fail("anchor_ratios", "must list ratios in 0.01…100, got \(self.model.anchorRatios)")
    }
    try model.check("roi_finest_scale", self.model.roiFinestScale, from: 1, to: 4096)
    try model.check("rpn_batch_size", self.model.rpnBatchSize, in: 1...100_000)
    try model.check("rpn_positive_fraction", self.model.rpnPositiveFraction, from: 0, to: 1, lowerOpen: true)
    try model.check("rpn_pre_nms_train", self.model.rpnPreNMSTrain, in: 1...1_000_000)
    try model.check("rpn_post_nms_train", self.model.rpnPostNMSTrain, in: 1...1_000_000)
    try model.check("rpn_pre_nms_test", self.model.rpnPreNMSTest, in: 1...1_000_000)
    try model.check("rpn_post_nms_test", self.model.rpnPostNMSTest, in: 1...1_000_000)
    try model.check("rpn_nms_threshold", self.model.rpnNMSThreshold, from: 0, to: 1, lowerOpen: true)
    try model.check("roi_batch_size", self.model.roiBatchSize, in: 1...100_000)
    try model.check("roi_positive_fraction", self.model.roiPositiveFraction, from: 0, to: 1, lowerOpen: true)
    try model.check("box_roi_size", self.model.boxROISize, in: 1...64)
    try model.check("box_conv_channels", self.model.boxConvChannels, in: 1...4096)
    try model.check("box_fc_channels", self.model.boxFCChannels, in: 1...65_536)
    try model.check("mask_roi_size", self.model.maskROISize, in: 1...64)
    try model.check("mask_conv_channels", self.model.maskConvChannels, in: 1...4096)
    try model.check("score_threshold", self.model.scoreThreshold, from: 0, to: 1, upperOpen: true)
    try model.check("nms_threshold", self.model.nmsThreshold, from: 0, to: 1, lowerOpen: true)
    try model.check("detections_per_image", self.model.detectionsPerImage, in: 1...100_000)
    try model.check("mask_threshold", self.model.maskThreshold, from: 0, to: 1, upperOpen: true, lowerOpen: true)

    let data = ConfigRanges(prefix: "data")
    for (key, value) in [("root", self.data.root), ("train_json", self.data.trainJSON),
                         ("test_json", self.data.testJSON)] where value.isEmpty {
      try data.fail(key, "must name a folder or file, got ''")
    }
    try data.check("max_size", self.data.maxSize, in: 16...16384)
    try data.check("train_short_sides", self.data.trainShortSides, eachIn: 8...self.data.maxSize)
    try data.check("test_short_side", self.data.testShortSide, in: 8...self.data.maxSize)
    try data.check("flip_prob", self.data.flipProbability, from: 0, to: 1)
    try data.checkNormalization(mean: self.data.mean.map(Float.init), std: self.data.std.map(Float.init))
    try data.check("pad_divisor", self.data.padDivisor, in: 1...1024)
    try data.check("batch_size", self.data.batchSize, in: 1...1024)
    try data.check("train_limit", self.data.trainLimit, in: 0...10_000_000)
    try data.check("test_limit", self.data.testLimit, in: 0...10_000_000)

    try optimizer.checkRanges()

    let schedule = ConfigRanges(prefix: "schedule")
    try schedule.check("epochs", self.schedule.epochs, in: 1...10_000)
    try schedule.check("step_epochs", self.schedule.stepEpochs, eachIn: 1...10_000, allowEmpty: true)
    if self.schedule.stepEpochs != self.schedule.stepEpochs.sorted() {
      try schedule.fail("step_epochs", "must be increasing, got \(self.schedule.stepEpochs)")
    }
    try schedule.check("gamma", self.schedule.gamma, from: 0, to: 1, lowerOpen: true)
    try schedule.check("warmup_iterations", self.schedule.warmupIterations, in: 0...10_000_000)
    try schedule.check("warmup_ratio", self.schedule.warmupRatio, from: 0, to: 1, lowerOpen: true)
    try schedule.check("checkpoint_interval", self.schedule.checkpointInterval, in: 0...10_000_000)
    try schedule.check("evaluation_interval", self.schedule.evaluationInterval, in: 0...10_000_000)
  }

  /// Iterations per epoch for `trainCount` training images: ⌈trainCount / batch_size⌉.
  public func iterationsPerEpoch(trainCount: Int) -> Int { max(1, (trainCount + data.batchSize - 1) / data.batchSize) }

  /// mmcv StepLrUpdater by epoch with linear warm-up by iteration: the rate before iteration `iteration` runs.
  func learningRate(iteration: Int, iterationsPerEpoch: Int) -> Float {
    let regular = stepLearningRate(base: Float(optimizer.lr), gamma: Float(schedule.gamma),
                                   milestones: schedule.stepEpochs, progress: iteration / iterationsPerEpoch)
    return linearWarmupLearningRate(regular, ratio: Float(schedule.warmupRatio), iteration: iteration,
                                    warmupIterations: schedule.warmupIterations)
  }

  /// `defaults`, then `yaml`, then `overrides`; validated.
  public static func load(yaml: String?, source: String, overrides: [String] = [],
                          defaults: MaskRCNNBenchmarkConfig = MaskRCNNBenchmarkConfig()) throws
    -> MaskRCNNBenchmarkConfig {
    let config = try ConfigYAML.load(MaskRCNNBenchmarkConfig.self, defaults: defaults, yaml: yaml, source: source,
                                     overrides: overrides)
    try config.validate()
    return config
  }

  /// The config as one-line JSON, keys sorted (stored with every run).
  public var json: String { configJSON(self) }
}
