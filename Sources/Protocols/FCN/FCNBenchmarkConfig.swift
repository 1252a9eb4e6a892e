// The config of `run fcn`: MMSegmentation's FCN-D8 benchmark (PROTOCOLS §5.3, §5.4) as YAML over Codable defaults
// through ConfigYAML (unknown key → the closest key; `--set key=value` overrides). The Codable defaults are the
// voc12aug protocol, configs/benchmarks/mmsegmentation/voc12aug/fcn_r50-d8_512x512_20k_voc12aug.yaml; FCNPresets
// holds the Cityscapes protocol and the quickstart's scene miniature. Every numeric key is range-checked at load.
import Foundation
import Support

/// The FCN fine-tuning config (`run fcn`).
public struct FCNBenchmarkConfig: Codable, Sendable, Equatable {
  public var model = ModelSection()
  public var data = DataSection()
  /// `optimizer.*` (SGDSection): the reference's SGD, lr 0.01, momentum 0.9, weight decay 5e-4.
  public var optimizer = SGDSection(lr: 0.01, weightDecay: 5e-4)
  public var schedule = ScheduleSection()
  /// Seeds the heads' initialisation, the data order, the augmentations and dropout.
  public var seed: UInt64 = 0

  public init() {}

  /// `model.*`: the dilated backbone and the two FCN heads (mmseg `configs/_base_/models/fcn_r50-d8.py`).
  public struct ModelSection: Codable, Sendable, Equatable {
    /// Per-stage strides and dilations of the backbone (D8: (1,2,1,1) and (1,1,2,4), output stride 8).
    public var strides = [1, 2, 1, 1]
    public var dilations = [1, 1, 2, 4]
    /// The first block of a dilated stage uses half the dilation (mmseg `contract_dilation=True`).
    public var contractDilation = true
    /// The decode head on layer4: channels, 3×3 ConvModules, and the concat-input conv.
    public var decodeChannels = 512
    public var decodeConvs = 2
    public var concatInput = true
    /// The auxiliary head on layer3 (channels 0: no auxiliary head) and its loss weight.
    public var auxiliaryChannels = 256
    public var auxiliaryWeight = 0.4
    /// Dropout2d before each head's 1×1 classifier.
    public var dropout = 0.1
    /// Bilinear resizing of the logits: false for VOC, true for Cityscapes (§5.4).
    public var alignCorners = false

    public init() {}

    enum CodingKeys: String, CodingKey {
      case strides, dilations, dropout
      case contractDilation = "contract_dilation", decodeChannels = "decode_channels", decodeConvs = "decode_convs"
      case concatInput = "concat_input", auxiliaryChannels = "auxiliary_channels"
      case auxiliaryWeight = "auxiliary_weight", alignCorners = "align_corners"
    }
  }

  /// `data.*`: the dataset folder, its splits and mmseg's pipeline (`_base_/datasets/pascal_voc12_aug.py`).
  public struct DataSection: Codable, Sendable, Equatable {
    /// A VOC2012 folder (JPEGImages, SegmentationClass[Aug], ImageSets/Segmentation), a Cityscapes folder or the
    /// scene devkit of `data make-scenes`.
    public var path = "data/VOCdevkit/VOC2012"
    /// Training and test splits; `train+aug` is train.txt from SegmentationClass plus aug.txt from
    /// SegmentationClassAug (the voc12aug protocol).
    public var trainSplit = "train+aug"
    public var testSplit = "val"
    /// Resize(img_scale, ratio_range): (long, short) bounds of the keep-ratio rescale, times a random ratio.
    public var imageScale = [2048, 512]
    public var ratioRange = [0.5, 2.0]
    /// RandomCrop (height, width) with cat_max_ratio; the crop is padded to this size (image 0, label 255).
    public var cropSize = [512, 512]
    public var catMaxRatio = 0.75
    public var flipProbability = 0.5
    /// PhotoMetricDistortion on (brightness, contrast, saturation, hue in its random order).
    public var photometricDistortion = true
    /// Normalize: RGB mean and std on the 0–255 scale. A 1-channel backbone gets the mean of the normalised
    /// channels (the three must then share one mean and std).
    public var mean: [Double] = [123.675, 116.28, 103.53]
    public var std: [Double] = [58.395, 57.12, 57.375]
    /// Test-time keep-ratio rescale bounds (long, short).
    public var testScale = [2048, 512]
    /// whole: the rescaled image at once; slide: crops of slide_crop every slide_stride (Cityscapes, §5.4).
    public var testMode = "whole"
    public var slideCrop = [769, 769]
    public var slideStride = [513, 513]
    /// Images per iteration in this process (mmseg: samples_per_gpu 4 × 4 GPUs with SyncBN = 16 statistics).
    public var batchSize = 16
    /// Evaluate on the first N test images only (0: all); recorded as a protocol departure.
    public var testLimit = 0
    /// Train on the first N training images only (0: all); recorded as a protocol departure.
    public var trainLimit = 0

    public init() {}

    enum CodingKeys: String, CodingKey {
      case path, mean, std
      case trainSplit = "train_split", testSplit = "test_split", imageScale = "img_scale", ratioRange = "ratio_range"
      case cropSize = "crop_size", catMaxRatio = "cat_max_ratio", flipProbability = "flip_prob"
      case photometricDistortion = "photometric_distortion", testScale = "test_scale", testMode = "test_mode"
      case slideCrop = "slide_crop", slideStride = "slide_stride", batchSize = "batch_size"
      case testLimit = "test_limit", trainLimit = "train_limit"
    }
  }

  /// `schedule.*`: mmcv's iteration-based poly schedule, checkpoints and evaluations.
  public struct ScheduleSection: Codable, Sendable, Equatable {
    public var iterations = 20_000
    /// Poly(power, min_lr), updated every iteration.
    public var power = 0.9
    public var minLr = 1e-4
    /// Iterations between head + backbone checkpoints and between evaluations (0: only at the end).
    public var checkpointInterval = 2000
    public var evaluationInterval = 2000

    public init() {}

    enum CodingKeys: String, CodingKey {
      case iterations, power
      case minLr = "min_lr", checkpointInterval = "checkpoint_interval", evaluationInterval = "evaluation_interval"
    }
  }

  public enum TestMode: String, CaseIterable, Sendable {
    case whole, slide
  }

  public var testMode: TestMode { TestMode(rawValue: data.testMode) ?? .whole }

  // MARK: - Validation and loading

  /// Every key's declared range; the first violation throws `ConfigError.invalidValue` naming key, value and range.
  public func validate() throws {
    let model = ConfigRanges(prefix: "model")
    try model.check("strides", self.model.strides, eachIn: 1...4)
    try model.check("dilations", self.model.dilations, eachIn: 1...16)
    if self.model.strides.count != 4 { try model.fail("strides", "must list 4 stages, got \(self.model.strides)") }
    if self.model.dilations.count != 4 {
      try model.fail("dilations", "must list 4 stages, got \(self.model.dilations)")
    }
    try model.check("decode_channels", self.model.decodeChannels, in: 1...4096)
    try model.check("decode_convs", self.model.decodeConvs, in: 0...8)
    try model.check("auxiliary_channels", self.model.auxiliaryChannels, in: 0...4096)
    try model.check("auxiliary_weight", self.model.auxiliaryWeight, positive: true)
    try model.check("dropout", self.model.dropout, from: 0, to: 1, upperOpen: true)
    if self.model.decodeConvs == 0 && self.model.concatInput {
      try model.fail("concat_input", "needs decode_convs ≥ 1 (mmseg asserts num_convs > 0 with concat_input)")
    }

    let data = ConfigRanges(prefix: "data")
    try data.check("img_scale", self.data.imageScale, eachIn: 1...16384)
    if self.data.imageScale.count != 2 { try data.fail("img_scale", "must be [long, short], got \(self.data.imageScale)") }
    if self.data.ratioRange.count != 2 || !self.data.ratioRange.allSatisfy({ $0.isFinite && $0 > 0 && $0 <= 16 })
        || self.data.ratioRange[0] > self.data.ratioRange[1] {
      try data.fail("ratio_range", "must be [low, high] with 0 < low ≤ high ≤ 16, got \(self.data.ratioRange)")
    }
    try data.check("crop_size", self.data.cropSize, eachIn: 8...8192)
    if self.data.cropSize.count != 2 { try data.fail("crop_size", "must be [height, width], got \(self.data.cropSize)") }
    try data.check("cat_max_ratio", self.data.catMaxRatio, from: 0, to: 1, lowerOpen: true)
    try data.check("flip_prob", self.data.flipProbability, from: 0, to: 1)
    try data.checkNormalization(mean: self.data.mean.map(Float.init), std: self.data.std.map(Float.init))
    try data.check("test_scale", self.data.testScale, eachIn: 1...16384)
    if self.data.testScale.count != 2 { try data.fail("test_scale", "must be [long, short], got \(self.data.testScale)") }
    if TestMode(rawValue: self.data.testMode) == nil {
      try data.fail("test_mode", "must be one of \(TestMode.allCases.map(\.rawValue).joined(separator: ", ")), "
                      + "got '\(self.data.testMode)'")
    }
    try data.check("slide_crop", self.data.slideCrop, eachIn: 8...8192)
    try data.check("slide_stride", self.data.slideStride, eachIn: 1...8192)
    if self.data.slideCrop.count != 2 || self.data.slideStride.count != 2 {
      try data.fail("slide_crop", "and slide_stride must be [height, width] each")
    }
    try data.check("batch_size", self.data.batchSize, in: 1...1024)
    try data.check("test_limit", self.data.testLimit, in: 0...10_000_000)
    try data.check("train_limit", self.data.trainLimit, in: 0...10_000_000)
    for (key, split) in [("train_split", self.data.trainSplit), ("test_split", self.data.testSplit)] where split.isEmpty {
      try data.fail(key, "must name a split (e.g. train, train+aug, val), got ''")
    }

    try optimizer.checkRanges()

    let schedule = ConfigRanges(prefix: "schedule")
    try schedule.check("iterations", self.schedule.iterations, in: 1...10_000_000)
    try schedule.check("power", self.schedule.power, from: 0, to: 10, lowerOpen: true)
    try schedule.check("min_lr", self.schedule.minLr, from: 0, to: self.optimizer.lr)
    try schedule.check("checkpoint_interval", self.schedule.checkpointInterval, in: 0...10_000_000)
    try schedule.check("evaluation_interval", self.schedule.evaluationInterval, in: 0...10_000_000)
  }

  /// `defaults`, then `yaml`, then `overrides`; validated.
  public static func load(yaml: String?, source: String, overrides: [String] = [],
                          defaults: FCNBenchmarkConfig = FCNBenchmarkConfig()) throws -> FCNBenchmarkConfig {
    let config = try ConfigYAML.load(FCNBenchmarkConfig.self, defaults: defaults, yaml: yaml, source: source,
                                     overrides: overrides)
    try config.validate()
    return config
  }

  /// The config as one-line JSON, keys sorted (stored with every run).
  public var json: String { configJSON(self) }
}
