// Mask R-CNN R50-FPN as mmdet 2.x builds `mask_rcnn_r50_fpn` (detectors/two_stage.py `TwoStageDetector`,
// roi_heads/standard_roi_head.py `StandardRoIHead`): the ResNet's C2–C5 → FPN (P2–P6) → the five-level RPN; the
// sampled ROIs pooled from P2–P5 by the level rule → Shared4Conv1FC box head; the sampled positives pooled again
// (14×14) → FCN mask head, trained on 28×28 targets of each positive's GT mask. Everything trainable, BN with batch
// statistics (SyncBN on one process).
import Tensors
import Layers

/// The detector's configurable parts.
public struct MaskRCNNConfig: Sendable, Equatable {
  public var fpnChannels: Int
  /// BN after the FPN's and the heads' convs (MMSelfSup: SyncBN).
  public var usesNorm: Bool
  public var rpn: MultiLevelRPNConfig
  /// Assigner, sampler and test settings of the ROI heads (`ROIHeadConfig.mmdetFPN`).
  public var roiHead: ROIHeadConfig
  public var boxHead: ConvFCBoxHeadConfig
  public var maskHead: FCNMaskHeadConfig
  /// RoIAlign sizes of the two heads (7, 14) and the level rule's finest scale (56).
  public var boxROISize: Int
  public var maskROISize: Int
  public var finestScale: Float
  /// Test: a pasted mask pixel is in the instance when its probability is ≥ this (0.5).
  public var maskThreshold: Float

  public init(fpnChannels: Int, usesNorm: Bool, rpn: MultiLevelRPNConfig, roiHead: ROIHeadConfig,
              boxHead: ConvFCBoxHeadConfig, maskHead: FCNMaskHeadConfig, boxROISize: Int = 7, maskROISize: Int = 14,
              finestScale: Float = 56, maskThreshold: Float = 0.5) {
    self.fpnChannels = fpnChannels
    self.usesNorm = usesNorm
    self.rpn = rpn
    self.roiHead = roiHead
    self.boxHead = boxHead
    self.maskHead = maskHead
    self.boxROISize = boxROISize
    self.maskROISize = maskROISize
    self.finestScale = finestScale
    self.maskThreshold = maskThreshold
  }

  /// mmdet's `mask_rcnn_r50_fpn` for `classCount` classes with MMSelfSup's norm in neck and heads.
  public static func mmdetFPN(classCount: Int) -> MaskRCNNConfig {
    MaskRCNNConfig(fpnChannels: 256, usesNorm: true, rpn: .mmdetFPN(featureChannels: 256),
                   roiHead: .mmdetFPN(classCount: classCount),
                   boxHead: .shared4Conv1FC(classCount: classCount, inChannels: 256, usesNorm: true),
                   maskHead: FCNMaskHeadConfig(inChannels: 256, convChannels: 256, convCount: 4,
                                               classCount: classCount, usesNorm: true))
  }
}

/// The five losses of a Mask R-CNN training step (mmdet's loss_rpn_cls, loss_rpn_bbox, loss_cls, loss_bbox,
/// loss_mask).
public struct MaskRCNNLosses: Sendable, Equatable {
  public var rpnClass: Float
  public var rpnBox: Float
  public var roiClass: Float
  public var roiBox: Float
  public var mask: Float

  /// The loss whose gradient a step adds: the plain sum (every loss weight is 1 in the config).
  public var total: Float { rpnClass + rpnBox + roiClass + roiBox + mask }
}

/// One image's test output: detections in the input frame and each detection's 28×28 mask logits of its class.
public struct InstanceDetections: Sendable {
  public var detections: Detections
  /// `[k, S, S, classCount]` mask logits of the k detections (pooled from their input-frame boxes).
  public var maskLogits: Tensor
}

/// Mask R-CNN FPN around a ResNet. State-dict names are mmdet's: `backbone.…`, `neck.…`, `rpn_head.…`,
/// `roi_head.bbox_head.…`, `roi_head.mask_head.…`.
public final class MaskRCNNFPN {
  public let config: MaskRCNNConfig
  public let backbone: ResNet
  public let neck: FeaturePyramidNetwork
  public let rpn: MultiLevelRPN
  public let boxExtractor: MultiLevelROIExtractor
  public let maskExtractor: MultiLevelROIExtractor
  public let boxHead: ConvFCBoxHead
  public let maskHead: FCNMaskHead

  /// A detector around `backbone` (kept, not copied) with a fresh neck, RPN, box head and mask head drawn from
  /// `generator` in that order. The pyramid's strides follow the backbone: P2 is C2's stride (4 for an ImageNet stem,
  /// 1 for a CIFAR stem) and each next level doubles it; `config.rpn.strides` is replaced by them.
  public init<G: RandomNumberGenerator>(backbone: ResNet, config: MaskRCNNConfig, using generator: inout G) {
    precondition(backbone.stages.count == 4, "MaskRCNNFPN needs a four-stage ResNet (C2–C5).")
    precondition(backbone.config.dilations.allSatisfy { $0 == 1 },
                 "MaskRCNNFPN needs an undilated ResNet, got dilations \(backbone.config.dilations).")
    let strides = Self.pyramidStrides(of: backbone.config)
    var config = config
    config.rpn.strides = strides
    config.rpn.featureChannels = config.fpnChannels
    self.config = config
    self.backbone = backbone
    neck = FeaturePyramidNetwork(inChannels: Array(backbone.config.featureChannels[1...4]),
                                 outChannels: config.fpnChannels, outputCount: 5, hasNorm: config.usesNorm,
                                 using: &generator)
    rpn = MultiLevelRPN(inChannels: config.fpnChannels, config: config.rpn, using: &generator)
    let roiStrides = Array(strides.prefix(4))
    boxExtractor = MultiLevelROIExtractor(outputSize: config.boxROISize, featureStrides: roiStrides,
                                          finestScale: config.finestScale)
    maskExtractor = MultiLevelROIExtractor(outputSize: config.maskROISize, featureStrides: roiStrides,
                                           finestScale: config.finestScale)
    boxHead = ConvFCBoxHead(config: config.boxHead, using: &generator)
    maskHead = FCNMaskHead(config: config.maskHead, using: &generator)
  }

  /// P2–P6 strides in input pixels: C2's (the stem's 4, or 1 for a CIFAR stem, times layer1's), doubling per level.
  public static func pyramidStrides(of config: ResNetConfig) -> [Int] {
    var strides = [(config.cifarStem ? 1 : 4) * config.strides[0]]
    for stage in 1..<4 { strides.append(strides[stage - 1] * config.strides[stage]) }
    strides.append(strides[3] * 2)
    return strides
  }

  public var pyramidStrides: [Int] { config.rpn.strides }

  /// One training forward + backward on the padded batch `images` NHWC `[n, H, W, c]` (normalised): anchors and
  /// ROIs drawn from `sampler` (the RPN's first, then the ROIs image by image). `gtMasks[i]` holds image i's
  /// instance bitmaps (one per GT box, in the resized frame, padded to the image's own padded size). ADDS ∂L/∂θ of
  /// L = the sum of the five losses into every parameter's `grad`; returns the losses.
  public func trainingStep<G: RandomNumberGenerator>(images: Tensor, imageSizes: [(height: Int, width: Int)],
                                                     gtBoxes: [Tensor], gtLabels: [[Int]], gtMasks: [GroundTruthMasks],
                                                     sampler: inout G) -> MaskRCNNLosses {
    let config = self.config.roiHead
    return trainingStep(images: images, imageSizes: imageSizes, gtBoxes: gtBoxes, gtLabels: gtLabels,
                        gtMasks: gtMasks, proposing: { pyramid in
      rpn.forwardTraining(features: pyramid, imageSizes: imageSizes, gtBoxes: gtBoxes, sampler: &sampler)
    }, sampling: { proposals in
      imageSizes.indices.map { image in
        config.sampleROIs(proposals: proposals[image], gtBoxes: gtBoxes[image], gtLabels: gtLabels[image],
                          using: &sampler)
      }
    })
  }

  /// The training step with its draws supplied: `proposing(P2…P6)` runs the RPN (e.g. `rpn.forwardTraining` with
  /// fixed anchor samples) and `sampling(proposals)` picks each image's training ROIs (e.g.
  /// `ROIHeadConfig.sampleROIs` with fixed indices) — what a parity test against PyTorch needs.
  public func trainingStep(images: Tensor, imageSizes: [(height: Int, width: Int)], gtBoxes: [Tensor],
                           gtLabels: [[Int]], gtMasks: [GroundTruthMasks],
                           proposing: ([Tensor]) -> MultiLevelRPNTrainingOutput,
                           sampling: ([Tensor]) -> [ROISample]) -> MaskRCNNLosses {
    precondition(images.rank == 4 && imageSizes.count == images.shape[0] && gtBoxes.count == imageSizes.count
                   && gtLabels.count == imageSizes.count && gtMasks.count == imageSizes.count,
                 "MaskRCNNFPN.trainingStep expects NHWC images and per image a size, boxes, labels and masks, got "
                   + "\(images.shape), \(imageSizes.count), \(gtBoxes.count), \(gtLabels.count), \(gtMasks.count).")
    for (image, masks) in gtMasks.enumerated() {
      precondition(masks.count == gtBoxes[image].shape[0],
                   "MaskRCNNFPN: image \(image) has \(gtBoxes[image].shape[0]) boxes but \(masks.count) masks.")
    }
    // Backbone C2–C5 and the pyramid.
    let (features, backboneCache) = backbone.forwardFeatures(images, mode: .training, upTo: 5)
    let (pyramid, neckCache) = neck.forward(Array(features[1...4]), mode: .training)
    let roiLevels = Array(pyramid.prefix(4))

    // RPN (proposals are constants for the ROI heads, as mmdet detaches them).
    let rpnOutput = proposing(pyramid)
    let samples = sampling(rpnOutput.proposals)
    precondition(samples.count == imageSizes.count,
                 "MaskRCNNFPN: \(samples.count) ROI samples for \(imageSizes.count) images.")
    let config = self.config.roiHead

    // Box head on every sampled ROI.
    let rois = roisForBatch(samples.map(\.boxes))
    let (boxPooled, boxPoolCache) = boxExtractor.forward(features: roiLevels, rois: rois)
    let (classLogits, boxDeltas, boxCache) = boxHead.forward(boxPooled, mode: .training)
    let boxLosses = roiHeadLosses(classLogits: classLogits, boxDeltas: boxDeltas, samples: samples,
                                  classCount: config.classCount)

    // Mask head on the positives (mmdet `_mask_forward_train`, share_roi_extractor False).
    let positiveBoxes = samples.map { gatherRows($0.boxes, Array(0..<$0.positiveCount)) }
    let maskROIs = roisForBatch(positiveBoxes)
    var maskLoss: Float = 0
    var maskPoolGradient: [Tensor]? = nil
    if maskROIs.shape[0] > 0 {
      let (maskPooled, maskPoolCache) = maskExtractor.forward(features: roiLevels, rois: maskROIs)
      let (maskLogits, maskCache) = maskHead.forward(maskPooled, mode: .training)
      let maskSize = maskLogits.shape[1]
      var targets = [Float](), labels = [Int]()
      for (image, sample) in samples.enumerated() where sample.positiveCount > 0 {
        let padded = gtMasks[image]
        let imageTargets = maskTargets(positiveBoxes: positiveBoxes[image],
                                       assignedGroundTruth: sample.positiveGroundTruth,
                                       groundTruthMasks: padded, paddedHeight: padded.height,
                                       paddedWidth: padded.width, maskSize: maskSize)
        targets += imageTargets.scalars
        labels += sample.labels.prefix(sample.positiveCount)
      }
      let (loss, logitGradient) = maskCrossEntropyLoss(
        logits: maskLogits, targets: Tensor(shape: [labels.count, maskSize, maskSize], scalars: targets),
        labels: labels)
      maskLoss = loss
      let dPooled = maskHead.backward(logitGradient, maskCache)
      maskPoolGradient = maskExtractor.backward(outputGradient: dPooled, maskPoolCache)
    }

    // Backward: heads → P2–P5, RPN → P2–P6, neck → C2–C5, backbone.
    let dBoxPooled = boxHead.backward(classLogitGradient: boxLosses.classLogitGradient,
                                      boxDeltaGradient: boxLosses.boxDeltaGradient, boxCache)
    var pyramidGradients = rpn.backward(rpnOutput)
    for (level, gradient) in boxExtractor.backward(outputGradient: dBoxPooled, boxPoolCache).enumerated() {
      pyramidGradients[level] += gradient
    }
    if let maskPoolGradient {
      for (level, gradient) in maskPoolGradient.enumerated() { pyramidGradients[level] += gradient }
    }
    let backboneGradients = neck.backward(pyramidGradients, neckCache)
    _ = backbone.backward(featureGradients: [2: backboneGradients[0], 3: backboneGradients[1],
                                             4: backboneGradients[2], 5: backboneGradients[3]], backboneCache)
    return MaskRCNNLosses(rpnClass: rpnOutput.classificationLoss, rpnBox: rpnOutput.boxLoss,
                          roiClass: boxLosses.classLoss, roiBox: boxLosses.boxLoss, mask: maskLoss)
  }

  /// Detections and mask logits per image (boxes in the pixels of `images`, clipped to each image's unpadded
  /// size): everything with running statistics, the RPN's test-time proposals, the box head's multiclass NMS, then
  /// the mask head on the kept boxes.
  ///
  /// mmdet pools the mask ROIs from `det_bboxes / scale_factor * scale_factor`; we pool from the boxes before the
  /// round trip (they differ by float32 rounding only).
  public func detect(images: Tensor, imageSizes: [(height: Int, width: Int)]) -> [InstanceDetections] {
    precondition(images.rank == 4 && imageSizes.count == images.shape[0],
                 "MaskRCNNFPN.detect expects NHWC images and one size per image, got \(images.shape) and "
                   + "\(imageSizes.count) sizes.")
    let features = backbone.inferFeatures(images, upTo: 5)
    let pyramid = neck.forward(Array(features[1...4]), mode: .inference).outputs
    let roiLevels = Array(pyramid.prefix(4))
    let proposals = rpn.proposals(features: pyramid, imageSizes: imageSizes)
    let classCount = config.roiHead.classCount
    let emptyMasks = Tensor.zeros([0, config.maskROISize * 2, config.maskROISize * 2, classCount])
    return proposals.enumerated().map { image, boxes in
      guard boxes.shape[0] > 0 else { return InstanceDetections(detections: .empty, maskLogits: emptyMasks) }
      let rois = roisForBatch([boxes]).replacingImageIndex(with: image)
      let (classLogits, boxDeltas) = boxHead.infer(features: roiLevels, rois: rois, extractor: boxExtractor)
      let detections = config.roiHead.detections(classLogits: classLogits, boxDeltas: boxDeltas, proposals: boxes,
                                                 imageHeight: imageSizes[image].height,
                                                 imageWidth: imageSizes[image].width)
      guard detections.count > 0 else { return InstanceDetections(detections: detections, maskLogits: emptyMasks) }
      let maskROIs = roisForBatch([detections.boxes]).replacingImageIndex(with: image)
      let maskLogits = maskHead.infer(maskExtractor.forward(features: roiLevels, rois: maskROIs).0)
      return InstanceDetections(detections: detections, maskLogits: maskLogits)
    }
  }

  /// Every parameter and buffer under its mmdet name.
  public var namedParameters: [NamedParameter] {
    prefixed("backbone", backbone.namedParameters) + prefixed("neck", neck.namedParameters)
      + prefixed("rpn_head", rpn.namedParameters) + prefixed("roi_head.bbox_head", boxHead.namedParameters)
      + prefixed("roi_head.mask_head", maskHead.namedParameters)
  }

  public var parameters: [Parameter] { namedParameters.map(\.parameter) }

  public func zeroGrad() { for parameter in parameters { parameter.zeroGrad() } }
}

extension Tensor {
  /// ROI rows `[k, 5]` with column 0 (the batch index) set to `image`.
  fileprivate func replacingImageIndex(with image: Int) -> Tensor {
    var copy = self
    for row in 0..<shape[0] { copy.scalars[row * 5] = Float(image) }
    return copy
  }
}
