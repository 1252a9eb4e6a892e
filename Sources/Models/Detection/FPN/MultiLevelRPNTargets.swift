// Multi-level RPN training targets and losses: mmdet 2.x `AnchorHead.get_anchors` (`valid_flags` on each image's
// pad_shape), `get_targets` / `_get_targets_single` on the concatenation of all levels' anchors of an image
// (`anchor_inside_flags` with allowed_border −1 = the valid flags), MaxIoUAssigner, RandomSampler, and `loss`:
// `loss_single` per level with `avg_factor = num_total_pos + num_total_neg`, where each image counts at least one
// positive and one negative (`sum(max(inds.numel(), 1))`), mmdet/models/dense_heads/anchor_head.py.
import Tensors
import Layers

/// mmdet `AnchorGenerator.valid_flags` for one image, all levels concatenated: an anchor is valid when its feature
/// location (y, x) has y < min(⌈padHeight / stride⌉, h) and x < min(⌈padWidth / stride⌉, w) — the part of the batch's
/// padded map that covers this image's own padded extent. `featureSizes` and `strides` per level.
public func multiLevelValidFlags(featureSizes: [(height: Int, width: Int)], strides: [Int], anchorsPerLocation: Int,
                                 padHeight: Int, padWidth: Int) -> [Bool] {
  precondition(featureSizes.count == strides.count && anchorsPerLocation >= 1,
               "multiLevelValidFlags: \(featureSizes.count) feature sizes for \(strides.count) strides.")
  var flags = [Bool]()
  for (level, size) in featureSizes.enumerated() {
    let stride = strides[level]
    let validHeight = min((padHeight + stride - 1) / stride, size.height)
    let validWidth = min((padWidth + stride - 1) / stride, size.width)
    for y in 0..<size.height {
      for x in 0..<size.width {
        let valid = y < validHeight && x < validWidth
        flags.append(contentsOf: repeatElement(valid, count: anchorsPerLocation))
      }
    }
  }
  return flags
}

/// One image's assignment over its concatenated anchors `[K, 4]` (mmdet `_get_targets_single` up to the sampler):
/// the anchors that are valid (`validFlags`) and, when `config.allowedBorder` ≥ 0, inside the `height` × `width`
/// image up to that border, are assigned by `maxIoUAssign` against `groundTruth` `[g, 4]`; the rest are ignored.
public func assignMultiLevelRPNAnchors(anchors: Tensor, validFlags: [Bool], groundTruth: Tensor, height: Int,
                                       width: Int, config: MultiLevelRPNConfig) -> RPNAnchorAssignment {
  precondition(groundTruth.rank == 2 && groundTruth.shape[1] == 4 && anchors.rank == 2
                 && validFlags.count == anchors.shape[0],
               "assignMultiLevelRPNAnchors: anchors \(anchors.shape), \(validFlags.count) valid flags and ground "
                 + "truth \(groundTruth.shape) (expected [K, 4], K flags, [g, 4]).")
  let anchorCount = anchors.shape[0]
  let inside = anchorsInsideImage(anchors, height: height, width: width, allowedBorder: config.allowedBorder)
  let kept = (0..<anchorCount).filter { validFlags[$0] && inside[$0] }
  var result = RPNAnchorAssignment(labels: [MatchLabel](repeating: .ignore, count: anchorCount),
                                   matchedGroundTruth: [Int](repeating: -1, count: anchorCount))
  guard !kept.isEmpty else { return result }
  // BboxOverlaps2D(gt_bboxes, anchors): the same arithmetic order as pairwiseIoU(gt, anchors).
  let quality = pairwiseIoU(groundTruth, gatherRows(anchors, kept))
  let (labels, matches) = maxIoUAssign(quality: quality, positiveIoU: config.positiveIoU,
                                       negativeIoU: config.negativeIoU, minPositiveIoU: config.minPositiveIoU)
  for (local, anchor) in kept.enumerated() {
    result.labels[anchor] = labels[local]
    result.matchedGroundTruth[anchor] = matches[local]
  }
  return result
}

/// mmdet `RandomSampler(num, pos_fraction)` on one image's assignment with the seeded `generator` (positives drawn
/// first; torch's generator cannot be reproduced, so the draws differ from mmdet's). Indices sorted.
public func sampleMultiLevelRPNAnchors<G: RandomNumberGenerator>(_ assignment: RPNAnchorAssignment,
                                                                 config: MultiLevelRPNConfig,
                                                                 using generator: inout G) -> RPNSampledAnchors {
  let (positive, negative) = subsampleLabels(assignment.samplerLabels, batchSize: config.batchSizePerImage,
                                             positiveFraction: config.positiveFraction, backgroundLabel: 0,
                                             using: &generator)
  return RPNSampledAnchors(positive: positive.sorted(), negative: negative.sorted())
}

/// mmdet `AnchorHead.loss` over all levels at once (the per-level sums add up to the sum over the concatenation):
/// sigmoid BCE over the sampled anchors + L1 on the positives' `BoxCoder.rpn` deltas, both divided by
/// `rpnAverageFactor(samples)`. objectness `[n, K]`, deltas `[n, K, 4]`, anchors `[K, 4]` (K = all levels' anchors,
/// level-major). The result's `sampledCount` is that average factor.
public func multiLevelRPNLoss(objectness: Tensor, deltas: Tensor, anchors: Tensor, groundTruth: [Tensor],
                              assignments: [RPNAnchorAssignment], samples: [RPNSampledAnchors]) -> RPNLoss {
  rpnLoss(objectness: objectness, deltas: deltas, anchors: anchors, groundTruth: groundTruth,
          assignments: assignments, samples: samples)
}
