// The multi-level RPN's configuration: mmdet 2.x `RPNHead` on an FPN with MMSelfSup's
// configs/benchmarks/mmdetection/_base_/models/mask_rcnn_r50_fpn.py (`rpn_head`, `train_cfg.rpn`,
// `train_cfg.rpn_proposal`, `test_cfg.rpn`) as defaults; PROTOCOLS §5.2.
import Layers

/// Anchors per level, the head's width, the anchor assigner and sampler, and the proposal settings.
public struct MultiLevelRPNConfig: Codable, Sendable, Equatable {
  /// mmdet `AnchorGenerator.scales`: anchor size = scale × the level's stride ([8]: 32, 64, 128, 256, 512 px).
  public var anchorScales: [Float]
  /// `ratios` h/w ([0.5, 1, 2]).
  public var aspectRatios: [Float]
  /// `strides` of P2…P6 in input pixels ([4, 8, 16, 32, 64]); also each level's anchor base size.
  public var strides: [Int]
  /// `feat_channels`: the width of `rpn_conv` (256).
  public var featureChannels: Int
  /// MaxIoUAssigner `pos_iou_thr` (0.7), `neg_iou_thr` (0.3), `min_pos_iou` (0.3); match_low_quality True.
  public var positiveIoU: Float
  public var negativeIoU: Float
  public var minPositiveIoU: Float
  /// `allowed_border` (−1: every valid anchor takes part; ≥ 0 also drops anchors crossing the image by more).
  public var allowedBorder: Float
  /// RandomSampler `num` (256) and `pos_fraction` (0.5).
  public var batchSizePerImage: Int
  public var positiveFraction: Double
  /// `rpn_proposal.nms_pre` (2000 per level) and `max_per_img` (1000) while training.
  public var preNMSTopKTrain: Int
  public var postNMSTopKTrain: Int
  /// `test_cfg.rpn.nms_pre` (1000 per level) and `max_per_img` (1000).
  public var preNMSTopKTest: Int
  public var postNMSTopKTest: Int
  /// NMS IoU threshold (0.7), per level (batched_nms with the level as the class).
  public var nmsThreshold: Double
  /// `min_bbox_size` (0): proposals with width or height ≤ this are dropped.
  public var minBoxSize: Float
  /// The `Pad(size_divisor=32)` of the data pipeline: an image's `pad_shape` is its size rounded up to this, and
  /// anchors of feature locations beyond ⌈pad / stride⌉ are not valid for it (mmdet `valid_flags`).
  public var sizeDivisor: Int

  public init(anchorScales: [Float] = [8], aspectRatios: [Float] = [0.5, 1, 2], strides: [Int] = [4, 8, 16, 32, 64],
              featureChannels: Int = 256, positiveIoU: Float = 0.7, negativeIoU: Float = 0.3,
              minPositiveIoU: Float = 0.3, allowedBorder: Float = -1, batchSizePerImage: Int = 256,
              positiveFraction: Double = 0.5, preNMSTopKTrain: Int = 2000, postNMSTopKTrain: Int = 1000,
              preNMSTopKTest: Int = 1000, postNMSTopKTest: Int = 1000, nmsThreshold: Double = 0.7,
              minBoxSize: Float = 0, sizeDivisor: Int = 32) {
    self.anchorScales = anchorScales
    self.aspectRatios = aspectRatios
    self.strides = strides
    self.featureChannels = featureChannels
    self.positiveIoU = positiveIoU
    self.negativeIoU = negativeIoU
    self.minPositiveIoU = minPositiveIoU
    self.allowedBorder = allowedBorder
    self.batchSizePerImage = batchSizePerImage
    self.positiveFraction = positiveFraction
    self.preNMSTopKTrain = preNMSTopKTrain
    self.postNMSTopKTrain = postNMSTopKTrain
    self.preNMSTopKTest = preNMSTopKTest
    self.postNMSTopKTest = postNMSTopKTest
    self.nmsThreshold = nmsThreshold
    self.minBoxSize = minBoxSize
    self.sizeDivisor = sizeDivisor
  }

  /// `mask_rcnn_r50_fpn.py`: `RPNHead(in_channels=256, feat_channels=256)` on P2…P6; `featureChannels` follows the
  /// FPN's width (narrower for a scaled-down model).
  public static func mmdetFPN(featureChannels: Int = 256) -> MultiLevelRPNConfig {
    MultiLevelRPNConfig(featureChannels: featureChannels)
  }

  public var levelCount: Int { strides.count }

  public var anchorsPerLocation: Int { anchorScales.count * aspectRatios.count }

  /// Level `level`'s `AnchorGenerator`: base size = stride, sizes = scales × stride, centre offset 0, ratio-major.
  public func anchorGenerator(level: Int) -> AnchorGenerator {
    AnchorGenerator(sizes: anchorScales.map { $0 * Float(strides[level]) }, aspectRatios: aspectRatios,
                    stride: strides[level], convention: .mmdet(centerOffset: 0))
  }

  /// The proposal settings of `mode`: training (`rpn_proposal`) or testing (`test_cfg.rpn`); `preNMSTopK` is per level.
  public func proposalSettings(_ mode: Mode) -> RPNProposalSettings {
    switch mode {
    case .training:
      RPNProposalSettings(preNMSTopK: preNMSTopKTrain, postNMSTopK: postNMSTopKTrain, nmsThreshold: nmsThreshold,
                          minBoxSize: minBoxSize)
    case .inference:
      RPNProposalSettings(preNMSTopK: preNMSTopKTest, postNMSTopK: postNMSTopKTest, nmsThreshold: nmsThreshold,
                          minBoxSize: minBoxSize)
    }
  }
}
