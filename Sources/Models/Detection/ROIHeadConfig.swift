// The C4 ROI head's settings: mmdet 2.x `StandardRoIHead` with MMSelfSup's `ResLayerExtraNorm` shared head and a
// `BBoxHead(with_avg_pool=True)`, as MMSelfSup's `faster_rcnn_r50_c4.py` + `faster_rcnn_r50_c4_mstrain_24k_voc0712.py`
// configure them (PROTOCOLS §5.1: `roi_head`, `train_cfg.rcnn`, `test_cfg.rcnn`).

/// What the ROI head pools, how it assigns and samples training ROIs, and how it turns scores into detections.
public struct ROIHeadConfig: Codable, Sendable, Equatable {
  /// Foreground classes (20 for VOC). The classifier has `classCount + 1` outputs, background LAST (mmdet 2.x).
  public var classCount: Int
  /// `RoIAlign(output_size=14)`: the pooled grid fed to res5 (stride 2 → 7×7).
  public var pooledSize: Int
  /// Input pixels per C4 feature pixel (`featmap_strides=[16]`); ROIAlign's spatial scale is 1 / stride.
  public var featureStride: Int
  /// `sampling_ratio=0`: an adaptive ceil(roi / bin) grid per bin.
  public var samplingRatio: Int
  /// `MaxIoUAssigner(pos_iou_thr=0.5, neg_iou_thr=0.5, min_pos_iou=0.5, match_low_quality=False)`: a ROI whose
  /// best IoU is ≥ `positiveIoU` is foreground, < `negativeIoU` background, in between ignored (none when equal).
  public var positiveIoU: Float
  public var negativeIoU: Float
  /// `match_low_quality`: each ground truth whose best IoU is ≥ `minPositiveIoU` claims every proposal attaining it
  /// (ties included; a later ground truth overwrites), which then becomes positive and is matched to THAT ground truth
  /// (mmdet's `MaxIoUAssigner`, `maxIoUAssign`). False for the C4 config, True for the FPN config.
  public var matchesLowQuality: Bool
  /// `min_pos_iou` (read only with `matchesLowQuality`).
  public var minPositiveIoU: Float
  /// `RandomSampler(num=512, pos_fraction=0.25, neg_pos_ub=-1, add_gt_as_proposals=True)`, per image.
  public var batchSizePerImage: Int
  public var positiveFraction: Double
  public var addsGroundTruthAsProposals: Bool
  /// `test_cfg.rcnn`: class scores ≤ this are dropped (`scores > score_thr` is kept).
  public var scoreThreshold: Float
  /// Per-class NMS: a box whose IoU with a kept box of its class is > this is suppressed.
  public var nmsThreshold: Double
  /// `max_per_img`: the highest-scoring detections kept per image.
  public var detectionsPerImage: Int

  public init(classCount: Int, pooledSize: Int = 14, featureStride: Int = 16, samplingRatio: Int = 0,
              positiveIoU: Float = 0.5, negativeIoU: Float = 0.5, matchesLowQuality: Bool = false,
              minPositiveIoU: Float = 0.5, batchSizePerImage: Int = 512,
              positiveFraction: Double = 0.25, addsGroundTruthAsProposals: Bool = true, scoreThreshold: Float = 0.05,
              nmsThreshold: Double = 0.5, detectionsPerImage: Int = 100) {
    self.classCount = classCount
    self.pooledSize = pooledSize
    self.featureStride = featureStride
    self.samplingRatio = samplingRatio
    self.positiveIoU = positiveIoU
    self.negativeIoU = negativeIoU
    self.matchesLowQuality = matchesLowQuality
    self.minPositiveIoU = minPositiveIoU
    self.batchSizePerImage = batchSizePerImage
    self.positiveFraction = positiveFraction
    self.addsGroundTruthAsProposals = addsGroundTruthAsProposals
    self.scoreThreshold = scoreThreshold
    self.nmsThreshold = nmsThreshold
    self.detectionsPerImage = detectionsPerImage
  }

  /// MMSelfSup's `faster_rcnn_r50_c4_mstrain_24k_voc0712` ROI head for `classCount` classes (20 for VOC).
  public static func mmdetC4(classCount: Int) -> ROIHeadConfig { ROIHeadConfig(classCount: classCount) }

  /// mmdet 2.x `mask_rcnn_r50_fpn.py`'s `train_cfg.rcnn` / `test_cfg.rcnn` (MMSelfSup v0.8.0's copy):
  /// `MaxIoUAssigner(0.5, 0.5, min_pos_iou=0.5, match_low_quality=True)`, `RandomSampler(512, 0.25,
  /// add_gt_as_proposals=True)`, score_thr 0.05, NMS 0.5, max_per_img 100. Pooling is the FPN extractor's
  /// (`MultiLevelROIExtractor.mmdetBox`: 7×7 over strides 4…32), so `pooledSize` is 7 and `featureStride` (the C4
  /// head's single level) is not read by the FPN heads.
  public static func mmdetFPN(classCount: Int) -> ROIHeadConfig {
    ROIHeadConfig(classCount: classCount, pooledSize: 7, featureStride: 4, matchesLowQuality: true)
  }

  /// The background label: mmdet 2.x puts it after the foreground classes.
  public var backgroundLabel: Int { classCount }
}
