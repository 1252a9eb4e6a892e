// The region proposal network's configuration: mmdet 2.x `RPNHead` with the seed's `faster_rcnn_r50_c4` model config
// (MMSelfSup configs/benchmarks/mmdetection/_base_/models/faster_rcnn_r50_c4.py: `rpn_head`, `train_cfg.rpn`,
// `train_cfg.rpn_proposal`, `test_cfg.rpn`) as defaults; PROTOCOLS §5.1.
import Layers

/// Anchors, the 3×3 conv's width, the anchor assigner and sampler, and the proposal settings of training and testing.
public struct RPNConfig: Codable, Sendable, Equatable {
  /// Anchor sizes in input pixels: mmdet's `scales` × `strides` (2, 4, 8, 16, 32 × 16 = 32…512).
  public var anchorSizes: [Float]
  /// Anchor aspect ratios h/w (0.5, 1, 2).
  public var aspectRatios: [Float]
  /// The feature map's stride in input pixels (16 for C4); also mmdet's anchor base size.
  public var stride: Int
  /// mmdet `feat_channels`: the width of `rpn_conv` (1024 = the C4 input's width).
  public var featureChannels: Int
  /// MaxIoUAssigner `pos_iou_thr`: an anchor whose best IoU is ≥ this is positive (0.7).
  public var positiveIoU: Float
  /// MaxIoUAssigner `neg_iou_thr`: an anchor whose best IoU is in [0, this) is negative (0.3).
  public var negativeIoU: Float
  /// MaxIoUAssigner `min_pos_iou`: a ground truth claims its best anchors (low-quality matches) only when their IoU
  /// is ≥ this (0.3).
  public var minPositiveIoU: Float
  /// `allowed_border` in pixels: anchors reaching further outside the image are ignored (0; negative keeps all).
  public var allowedBorder: Float
  /// RandomSampler `num`: anchors sampled per image (256).
  public var batchSizePerImage: Int
  /// RandomSampler `pos_fraction` (0.5).
  public var positiveFraction: Double
  /// `rpn_proposal.nms_pre` (12000) and `max_per_img` (2000) while training.
  public var preNMSTopKTrain: Int
  public var postNMSTopKTrain: Int
  /// `test_cfg.rpn.nms_pre` (6000) and `max_per_img` (1000).
  public var preNMSTopKTest: Int
  public var postNMSTopKTest: Int
  /// NMS IoU threshold (0.7): a proposal whose IoU with a kept one is greater is suppressed.
  public var nmsThreshold: Double
  /// `min_bbox_size`: proposals whose width or height is ≤ this are dropped (0 drops empty boxes; negative keeps all).
  public var minBoxSize: Float

  public init(anchorSizes: [Float] = [32, 64, 128, 256, 512], aspectRatios: [Float] = [0.5, 1, 2], stride: Int = 16,
              featureChannels: Int, positiveIoU: Float = 0.7, negativeIoU: Float = 0.3, minPositiveIoU: Float = 0.3,
              allowedBorder: Float = 0, batchSizePerImage: Int = 256, positiveFraction: Double = 0.5,
              preNMSTopKTrain: Int = 12000, postNMSTopKTrain: Int = 2000, preNMSTopKTest: Int = 6000,
              postNMSTopKTest: Int = 1000, nmsThreshold: Double = 0.7, minBoxSize: Float = 0) {
    self.anchorSizes = anchorSizes
    self.aspectRatios = aspectRatios
    self.stride = stride
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
  }

  /// The seed's `faster_rcnn_r50_c4`: `RPNHead(in_channels=1024, feat_channels=1024)` — the conv as wide as its input.
  public static func mmdetC4(inChannels: Int) -> RPNConfig { RPNConfig(featureChannels: inChannels) }

  /// mmdet `AnchorGenerator(scales=sizes/stride, ratios, strides=[stride])`: base size = stride, centre offset 0,
  /// ratio-major order at each location.
  public var anchorGenerator: AnchorGenerator {
    AnchorGenerator(sizes: anchorSizes, aspectRatios: aspectRatios, stride: stride,
                    convention: .mmdet(centerOffset: 0))
  }

  public var anchorsPerLocation: Int { anchorSizes.count * aspectRatios.count }

  /// The proposal settings of `mode`: training (`rpn_proposal`) or testing (`test_cfg.rpn`).
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
