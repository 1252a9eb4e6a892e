// Faster R-CNN R50-C4 as MMSelfSup's `faster_rcnn_r50_c4` builds it in mmdet 2.x (detectors/two_stage.py
// `TwoStageDetector.forward_train` / `simple_test`): ResNet stem..layer3 trunk (stride 16, everything trainable, BN
// with batch statistics), the RPN on C4, and the C4 ROI head whose res5 is the same ResNet's layer4.
import Tensors
import Layers

/// What the detector needs from its region proposal network (`RegionProposalNetwork` conforms).
public protocol RegionProposing: AnyObject {
  /// One training forward on C4 `features` `[n, h, w, c4]` of the padded batch: proposals per image (`[p, 4]`,
  /// input pixels, no gradient), the two RPN losses, and the backward pass. `imageSizes` are the unpadded sizes;
  /// `gtBoxes` `[g, 4]` per image; anchor samples are drawn from `sampler`.
  func trainingPass<G: RandomNumberGenerator>(features: Tensor, imageSizes: [(height: Int, width: Int)],
                                             gtBoxes: [Tensor], sampler: inout G) -> RegionProposalPass
  /// Test-time proposals per image.
  func proposals(features: Tensor, imageSizes: [(height: Int, width: Int)]) -> [Tensor]
  /// Parameters under their names relative to `rpn_head.` (`rpn_conv.weight`, …).
  var namedParameters: [NamedParameter] { get }
}

/// The RPN's part of a training step.
public struct RegionProposalPass {
  /// `[p, 4]` per image, input pixels; constants for the ROI head.
  public var proposals: [Tensor]
  public var classLoss: Float
  public var boxLoss: Float
  /// ∂(classLoss + boxLoss)/∂features; adds the RPN parameters' gradients. Call once.
  public var backward: () -> Tensor

  public init(proposals: [Tensor], classLoss: Float, boxLoss: Float, backward: @escaping () -> Tensor) {
    self.proposals = proposals
    self.classLoss = classLoss
    self.boxLoss = boxLoss
    self.backward = backward
  }
}

/// The four losses of a Faster R-CNN training step (mmdet's loss_rpn_cls, loss_rpn_bbox, loss_cls, loss_bbox).
public struct FasterRCNNLosses: Sendable, Equatable {
  public var rpnClass: Float
  public var rpnBox: Float
  public var roiClass: Float
  public var roiBox: Float

  /// The loss whose gradient a step adds: the plain sum (every loss weight is 1 in the config).
  public var total: Float { rpnClass + rpnBox + roiClass + roiBox }
}

extension RegionProposalNetwork: RegionProposing {
  public func trainingPass<G: RandomNumberGenerator>(features: Tensor, imageSizes: [(height: Int, width: Int)],
                                                    gtBoxes: [Tensor], sampler: inout G) -> RegionProposalPass {
    pass(forwardTraining(features: features, imageSizes: imageSizes, gtBoxes: gtBoxes, sampler: &sampler))
  }

  /// The training pass with given sampled anchors (parity tests).
  public func trainingPass(features: Tensor, imageSizes: [(height: Int, width: Int)], gtBoxes: [Tensor],
                           sampledAnchors: [RPNSampledAnchors]) -> RegionProposalPass {
    pass(forwardTraining(features: features, imageSizes: imageSizes, gtBoxes: gtBoxes, sampledAnchors: sampledAnchors))
  }

  private func pass(_ output: RPNTrainingOutput) -> RegionProposalPass {
    RegionProposalPass(proposals: output.proposals, classLoss: output.classificationLoss, boxLoss: output.boxLoss) {
      self.backward(output)
    }
  }
}

/// The detector's two configurable parts: the RPN on C4 and the ROI head.
public struct FasterRCNNConfig: Codable, Sendable, Equatable {
  public var rpn: RPNConfig
  public var roiHead: ROIHeadConfig

  public init(rpn: RPNConfig, roiHead: ROIHeadConfig) {
    self.rpn = rpn
    self.roiHead = roiHead
  }

  /// MMSelfSup's `faster_rcnn_r50_c4` for `classCount` classes on C4 features of `c4Channels` channels.
  public static func mmdetC4(classCount: Int, c4Channels: Int) -> FasterRCNNConfig {
    FasterRCNNConfig(rpn: .mmdetC4(inChannels: c4Channels), roiHead: .mmdetC4(classCount: classCount))
  }
}

/// Faster R-CNN C4: `backbone` stem..layer3 → C4 → `rpn` and `roiHead` (res5 = `backbone.stages[3]`).
///
/// State-dict names are mmdet's: `backbone.{conv1,bn1,layer1,layer2,layer3}.…`, `rpn_head.…`,
/// `roi_head.shared_head.layer4.…`, `roi_head.shared_head.norm.…`, `roi_head.bbox_head.{fc_cls,fc_reg}.…`.
public final class FasterRCNNC4 {
  public let backbone: ResNet
  public let rpn: any RegionProposing
  public let roiHead: C4ROIHead

  /// A detector around `backbone` (kept, not copied: e.g. a ResNet loaded by `BackboneBuilder`, whose layer4 weights
  /// thereby become the ROI head's res5, as mim_dist_train_c4.sh loads the checkpoint into both), an RPN on its C4
  /// features, and a fresh extra norm and fc layers drawn from `generator`.
  public init<G: RandomNumberGenerator>(backbone: ResNet, rpn: any RegionProposing, roiHead config: ROIHeadConfig,
                                        using generator: inout G) {
    precondition(backbone.stages.count == 4, "FasterRCNNC4 needs a four-stage ResNet (layer4 is the ROI head).")
    self.backbone = backbone
    self.rpn = rpn
    roiHead = C4ROIHead(res5: backbone.stages[3], config: config, using: &generator)
  }

  /// A detector around `backbone` with a fresh `RegionProposalNetwork` on its C4 features (drawn first) and a fresh
  /// ROI head (see the designated initialiser).
  public convenience init<G: RandomNumberGenerator>(backbone: ResNet, config: FasterRCNNConfig,
                                                    using generator: inout G) {
    let c4Channels = backbone.config.featureChannels[3]
    let rpn = RegionProposalNetwork(inChannels: c4Channels, config: config.rpn, using: &generator)
    self.init(backbone: backbone, rpn: rpn, roiHead: config.roiHead, using: &generator)
  }

  /// C4 channels (layer3's output): the RPN's and the ROI head's input.
  public var c4Channels: Int { backbone.config.featureChannels[3] }

  /// One training forward + backward on the padded batch `images` NHWC `[n, H, W, 3]` (normalised): RPN anchors
  /// and ROI-head samples drawn from `sampler` (the RPN's first, then the ROIs image by image). ADDS ∂L/∂θ of
  /// L = the sum of the four losses into every trainable parameter's `grad`; returns the losses.
  public func trainingStep<G: RandomNumberGenerator>(images: Tensor, imageSizes: [(height: Int, width: Int)],
                                                     gtBoxes: [Tensor], gtLabels: [[Int]],
                                                     sampler: inout G) -> FasterRCNNLosses {
    let config = roiHead.config
    return trainingStep(images: images, proposing: { features in
      rpn.trainingPass(features: features, imageSizes: imageSizes, gtBoxes: gtBoxes, sampler: &sampler)
    }, sampling: { proposals in
      zip(proposals, zip(gtBoxes, gtLabels)).map { proposals, truth in
        config.sampleROIs(proposals: proposals, gtBoxes: truth.0, gtLabels: truth.1, using: &sampler)
      }
    })
  }

  /// The training step with its draws supplied: `proposing(c4)` runs the RPN (e.g. with fixed anchor samples) and
  /// `sampling(proposals)` picks each image's training ROIs (e.g. `ROIHeadConfig.sampleROIs` with fixed indices).
  public func trainingStep(images: Tensor, proposing: (Tensor) -> RegionProposalPass,
                           sampling: ([Tensor]) -> [ROISample]) -> FasterRCNNLosses {
    precondition(images.rank == 4, "FasterRCNNC4 expects NHWC images [n, H, W, c], got \(images.shape).")
    let (features, trunkCache) = backbone.forwardFeatures(images, mode: .training, upTo: 4)
    let c4 = features[3]
    let proposalPass = proposing(c4)
    precondition(proposalPass.proposals.count == images.shape[0],
                 "FasterRCNNC4: \(proposalPass.proposals.count) proposal sets for \(images.shape[0]) images.")
    let samples = sampling(proposalPass.proposals)
    precondition(samples.count == images.shape[0],
                 "FasterRCNNC4: \(samples.count) ROI samples for \(images.shape[0]) images.")
    let rois = roisForBatch(samples.map(\.boxes))
    let (classLogits, boxDeltas, headCache) = roiHead.forward(features: c4, rois: rois, mode: .training)
    let losses = roiHeadLosses(classLogits: classLogits, boxDeltas: boxDeltas, samples: samples,
                               classCount: roiHead.config.classCount)
    var c4Gradient = roiHead.backward(classLogitGradient: losses.classLogitGradient,
                                      boxDeltaGradient: losses.boxDeltaGradient, headCache)
    c4Gradient += proposalPass.backward()
    _ = backbone.backward(featureGradients: [4: c4Gradient], trunkCache)
    return FasterRCNNLosses(rpnClass: proposalPass.classLoss, rpnBox: proposalPass.boxLoss,
                            roiClass: losses.classLoss, roiBox: losses.boxLoss)
  }

  /// Detections per image (boxes in the pixels of `images`, clipped to each image's unpadded size): trunk and head
  /// with running statistics, the RPN's test-time proposals, then `ROIHeadConfig.detections`.
  public func detect(images: Tensor, imageSizes: [(height: Int, width: Int)]) -> [Detections] {
    precondition(images.rank == 4 && imageSizes.count == images.shape[0],
                 "FasterRCNNC4.detect expects NHWC images and one size per image, got \(images.shape) and "
                   + "\(imageSizes.count) sizes.")
    let c4 = backbone.inferFeatures(images, upTo: 4)[3]
    let proposals = rpn.proposals(features: c4, imageSizes: imageSizes)
    let nonEmpty = proposals.indices.filter { proposals[$0].shape[0] > 0 }
    guard !nonEmpty.isEmpty else { return proposals.map { _ in .empty } }
    let rois = roisForBatch(proposals)  // image index = position in `proposals`
    let (classLogits, boxDeltas) = roiHead.infer(features: c4, rois: rois)
    var start = 0
    return proposals.enumerated().map { image, boxes in
      let rows = Array(start..<(start + boxes.shape[0]))
      start += boxes.shape[0]
      guard !rows.isEmpty else { return .empty }
      return roiHead.config.detections(classLogits: gatherRows(classLogits, rows),
                                       boxDeltas: gatherRows(boxDeltas, rows), proposals: boxes,
                                       imageHeight: imageSizes[image].height, imageWidth: imageSizes[image].width)
    }
  }

  /// Every parameter and buffer under its mmdet name: backbone (without layer4), rpn_head, roi_head.
  public var namedParameters: [NamedParameter] {
    let trunk = backbone.namedParameters.filter { !$0.name.hasPrefix("layer4.") }
    return prefixed("backbone", trunk) + prefixed("rpn_head", rpn.namedParameters)
      + prefixed("roi_head", roiHead.namedParameters)
  }

  public var parameters: [Parameter] { namedParameters.map(\.parameter) }

  public func zeroGrad() { for parameter in parameters { parameter.zeroGrad() } }
}
