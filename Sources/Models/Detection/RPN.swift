// The region proposal network of Faster R-CNN C4 (mmdet 2.x `RPNHead.forward_train` / `simple_test_rpn`): the head,
// its anchors, the training targets and losses, and the proposals handed to the ROI head.
import Tensors
import Layers

/// What a training forward returns: the proposals (no gradient), the two losses, and what `backward` needs.
public struct RPNTrainingOutput {
  /// Per image, `rpn_proposal`'s proposals `[k, 4]` (x1, y1, x2, y2 in input pixels), best first.
  public let proposals: [Tensor]
  /// Per image, σ(objectness) of each proposal.
  public let proposalScores: [[Float]]
  /// `loss_rpn_cls` and `loss_rpn_bbox`.
  public let classificationLoss: Float
  public let boxLoss: Float
  /// Per image, the anchors' assignment and the sampled anchors the losses used.
  public let assignments: [RPNAnchorAssignment]
  public let samples: [RPNSampledAnchors]
  /// ∂(classificationLoss + boxLoss) w.r.t. the head's objectness `[n, K]` and deltas `[n, K, 4]`.
  let objectnessGradient: Tensor
  let deltasGradient: Tensor
  let headCache: RPNHead.Cache

  public var loss: Float { classificationLoss + boxLoss }
}

/// Faster R-CNN's RPN on one feature level (C4: stride 16), as mmdet 2.x with the seed's config (`RPNConfig`).
public final class RegionProposalNetwork {
  public let config: RPNConfig
  public let head: RPNHead
  public let anchorGenerator: AnchorGenerator

  public init<G: RandomNumberGenerator>(inChannels: Int, config: RPNConfig, using generator: inout G) {
    self.config = config
    anchorGenerator = config.anchorGenerator
    head = RPNHead(inChannels: inChannels, featureChannels: config.featureChannels,
                   anchorsPerLocation: config.anchorsPerLocation, using: &generator)
  }

  /// The anchors of a `[n, h, w, C]` feature map: `[h·w·A, 4]` in the head's output order.
  public func anchors(featureHeight: Int, featureWidth: Int) -> Tensor {
    anchorGenerator.gridAnchors(featureHeight: featureHeight, featureWidth: featureWidth)
  }

  /// Training forward with the seeded sampler (mmdet `RandomSampler`). `features` `[n, h, w, C]` of the padded
  /// batch; `imageSizes` each image's unpadded (height, width) in input pixels; `gtBoxes` per image `[g, 4]`
  /// (x1, y1, x2, y2, input pixels; g may be 0).
  public func forwardTraining<G: RandomNumberGenerator>(features: Tensor, imageSizes: [(height: Int, width: Int)],
                                                        gtBoxes: [Tensor], sampler: inout G) -> RPNTrainingOutput {
    forwardTraining(features: features, imageSizes: imageSizes, gtBoxes: gtBoxes) { assignments in
      assignments.map { sampleRPNAnchors($0, config: config, using: &sampler) }
    }
  }

  /// Training forward with given sampled anchors (indices into each image's h·w·A anchors, e.g. PyTorch's), for
  /// parity tests. Each sampled positive must be assigned positive and each negative negative.
  public func forwardTraining(features: Tensor, imageSizes: [(height: Int, width: Int)], gtBoxes: [Tensor],
                              sampledAnchors: [RPNSampledAnchors]) -> RPNTrainingOutput {
    forwardTraining(features: features, imageSizes: imageSizes, gtBoxes: gtBoxes) { _ in sampledAnchors }
  }

  private func forwardTraining(features: Tensor, imageSizes: [(height: Int, width: Int)], gtBoxes: [Tensor],
                               sample: ([RPNAnchorAssignment]) -> [RPNSampledAnchors]) -> RPNTrainingOutput {
    checkBatch(features, imageSizes)
    precondition(gtBoxes.count == imageSizes.count,
                 "RegionProposalNetwork: \(gtBoxes.count) ground-truth sets for \(imageSizes.count) images.")
    let (objectness, deltas, cache) = head.forward(features, mode: .training)
    let anchors = anchors(featureHeight: features.shape[1], featureWidth: features.shape[2])
    let assignments = imageSizes.indices.map { image in
      assignRPNAnchors(anchors: anchors, groundTruth: gtBoxes[image], height: imageSizes[image].height,
                       width: imageSizes[image].width, config: config)
    }
    let samples = sample(assignments)
    precondition(samples.count == imageSizes.count,
                 "RegionProposalNetwork: \(samples.count) sampled sets for \(imageSizes.count) images.")
    let loss = rpnLoss(objectness: objectness, deltas: deltas, anchors: anchors, groundTruth: gtBoxes,
                       assignments: assignments, samples: samples)
    let proposals = proposals(objectness: objectness, deltas: deltas, anchors: anchors, imageSizes: imageSizes,
                              settings: config.proposalSettings(.training))
    return RPNTrainingOutput(proposals: proposals.map(\.boxes), proposalScores: proposals.map(\.scores),
                             classificationLoss: loss.classification, boxLoss: loss.box, assignments: assignments,
                             samples: samples, objectnessGradient: loss.objectnessGradient,
                             deltasGradient: loss.deltasGradient, headCache: cache)
  }

  /// ∂(loss_rpn_cls + loss_rpn_bbox)/∂features `[n, h, w, C]`, times `scale`; adds the head's parameter gradients.
  public func backward(_ output: RPNTrainingOutput, scale: Float = 1) -> Tensor {
    let (dObjectness, dDeltas) = scale == 1 ? (output.objectnessGradient, output.deltasGradient)
      : (scale * output.objectnessGradient, scale * output.deltasGradient)
    return head.backward(objectnessGradient: dObjectness, deltasGradient: dDeltas, output.headCache)
  }

  /// Inference: per image its `test_cfg.rpn` proposals `[k, 4]`, best first.
  public func proposals(features: Tensor, imageSizes: [(height: Int, width: Int)]) -> [Tensor] {
    proposalsWithScores(features: features, imageSizes: imageSizes).map(\.boxes)
  }

  /// Inference proposals with their scores.
  public func proposalsWithScores(features: Tensor, imageSizes: [(height: Int, width: Int)]) -> [RPNProposals] {
    checkBatch(features, imageSizes)
    let (objectness, deltas, _) = head.forward(features, mode: .inference)
    return proposals(objectness: objectness, deltas: deltas,
                     anchors: anchors(featureHeight: features.shape[1], featureWidth: features.shape[2]),
                     imageSizes: imageSizes, settings: config.proposalSettings(.inference))
  }

  /// Per image, `generateRPNProposals` on its rows of objectness `[n, K]` and deltas `[n, K, 4]`.
  public func proposals(objectness: Tensor, deltas: Tensor, anchors: Tensor, imageSizes: [(height: Int, width: Int)],
                        settings: RPNProposalSettings) -> [RPNProposals] {
    let k = anchors.shape[0]
    precondition(objectness.shape == [imageSizes.count, k] && deltas.shape == [imageSizes.count, k, 4],
                 "RegionProposalNetwork.proposals: objectness \(objectness.shape) and deltas \(deltas.shape) for "
                   + "\(imageSizes.count) images of \(k) anchors.")
    var result = [RPNProposals?](repeating: nil, count: imageSizes.count)
    // Images are independent; NMS and the decode are single-threaded per image below 65k boxes.
    result.withUnsafeMutableBufferPointer { slots in
      let slotsPointer = slots.baseAddress!
      parallelFor(0..<imageSizes.count, minimumChunk: 1) { images in
        for image in images {
          slotsPointer[image] = generateRPNProposals(
            objectness: objectness.scalars[(image * k)..<((image + 1) * k)],
            deltas: deltas.scalars[(image * k * 4)..<((image + 1) * k * 4)], anchors: anchors,
            height: imageSizes[image].height, width: imageSizes[image].width, settings: settings)
        }
      }
    }
    return result.map { $0! }
  }

  /// mmdet's state-dict names under the RPN head (`rpn_conv.*`, `rpn_cls.*`, `rpn_reg.*`); the detector prefixes
  /// `rpn_head.`.
  public var namedParameters: [NamedParameter] { head.namedParameters }

  public var parameters: [Parameter] { head.parameters }

  public func zeroGrad() { for parameter in parameters { parameter.zeroGrad() } }

  private func checkBatch(_ features: Tensor, _ imageSizes: [(height: Int, width: Int)]) {
    precondition(features.rank == 4 && features.shape[0] == imageSizes.count,
                 "RegionProposalNetwork expects NHWC features [n, h, w, C] for \(imageSizes.count) images, got \(features.shape).")
    for (height, width) in imageSizes {
      precondition(height > 0 && width > 0 && height <= features.shape[1] * config.stride
                     && width <= features.shape[2] * config.stride,
                   "RegionProposalNetwork: image \(height)×\(width) does not fit the \(features.shape[1])×\(features.shape[2]) "
                     + "feature map at stride \(config.stride).")
    }
  }
}
