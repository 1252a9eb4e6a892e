// RPN training targets and losses: mmdet 2.x `AnchorHead._get_targets_single` / `get_targets` / `loss_single` /
// `loss` (mmdet/models/dense_heads/anchor_head.py) with `MaxIoUAssigner.assign_wrt_overlaps`
// (mmdet/core/bbox/assigners/max_iou_assigner.py), `RandomSampler` (core/bbox/samplers/random_sampler.py) and the
// seed's `train_cfg.rpn`; the losses are `CrossEntropyLoss(use_sigmoid=True)` and `L1Loss`, both with
// `avg_factor` = the number of sampled anchors over the batch.
import Tensors
import Layers

/// How one image's anchors (all h·w·A of the padded feature map) were assigned.
public struct RPNAnchorAssignment: Sendable, Equatable {
  /// Per anchor: ignore (outside the image beyond `allowedBorder`, or best IoU in [negativeIoU, positiveIoU) without
  /// a low-quality match), negative or positive.
  public var labels: [MatchLabel]
  /// Per anchor: the ground truth a positive regresses to; −1 for the others.
  public var matchedGroundTruth: [Int]

  public init(labels: [MatchLabel], matchedGroundTruth: [Int]) {
    precondition(labels.count == matchedGroundTruth.count,
                 "An RPN assignment needs one match per label, got \(labels.count) labels and "
                   + "\(matchedGroundTruth.count) matches.")
    self.labels = labels
    self.matchedGroundTruth = matchedGroundTruth
  }

  /// The labels as integers for the sampler: 1 positive, 0 negative, −1 ignored.
  var samplerLabels: [Int] { labels.map { Int($0.rawValue) } }
}

/// The anchors of one image the loss uses: indices into its h·w·A anchors.
public struct RPNSampledAnchors: Sendable, Equatable {
  public var positive: [Int]
  public var negative: [Int]

  public init(positive: [Int], negative: [Int]) {
    self.positive = positive
    self.negative = negative
  }

  public var count: Int { positive.count + negative.count }
}

/// mmdet `MaxIoUAssigner.assign_wrt_overlaps` with `gt_max_assign_all=True`, `match_low_quality=True`, float
/// `neg_iou_thr`, no ignored ground truths, on `quality` `[groundTruths, anchors]` (IoU).
///
/// 1. every anchor is ignored; 2. best IoU in [0, negativeIoU) → negative; 3. best IoU ≥ positiveIoU → positive,
/// matched to its best ground truth (the first on ties); 4. for each ground truth g in order whose highest IoU is
/// ≥ minPositiveIoU, every anchor attaining that IoU (ties included) becomes positive and is matched to **g** — a
/// later ground truth overwrites an earlier one. Without ground truth every anchor is negative.
///
/// How this differs from detectron2's `Matcher` (our `Matcher.rpn`, used by detectron2's RPN): detectron2 has no
/// `min_pos_iou` (a ground truth whose best IoU is 0.1, or even 0, still makes its best anchors positive) and keeps
/// each low-quality positive's own argmax as its match, where mmdet re-matches it to the ground truth that claimed
/// it. The seed's config is mmdet's, so the RPN uses this function.
public func maxIoUAssign(quality: Tensor, positiveIoU: Float, negativeIoU: Float,
                         minPositiveIoU: Float) -> (labels: [MatchLabel], matches: [Int]) {
  precondition(quality.rank == 2, "maxIoUAssign expects a [groundTruths, anchors] IoU matrix, got \(quality.shape).")
  let (gtCount, anchorCount) = (quality.shape[0], quality.shape[1])
  guard gtCount > 0 else {
    return ([MatchLabel](repeating: .negative, count: anchorCount), [Int](repeating: -1, count: anchorCount))
  }
  let q = quality.scalars
  // max over dim 0: the best ground truth of each anchor, the first on ties (torch.max returns the first).
  var best = [Float](repeating: -.infinity, count: anchorCount)
  var argmax = [Int](repeating: 0, count: anchorCount)
  for g in 0..<gtCount {
    for a in 0..<anchorCount where q[g * anchorCount + a] > best[a] {
      best[a] = q[g * anchorCount + a]
      argmax[a] = g
    }
  }
  var labels = [MatchLabel](repeating: .ignore, count: anchorCount)
  var matches = [Int](repeating: -1, count: anchorCount)
  for a in 0..<anchorCount {
    if best[a] >= 0 && best[a] < negativeIoU { labels[a] = .negative }
    if best[a] >= positiveIoU { labels[a] = .positive; matches[a] = argmax[a] }
  }
  for g in 0..<gtCount {
    let row = q[(g * anchorCount)..<((g + 1) * anchorCount)]
    guard let highest = row.max(), highest >= minPositiveIoU else { continue }
    for a in 0..<anchorCount where q[g * anchorCount + a] == highest {
      labels[a] = .positive
      matches[a] = g
    }
  }
  return (labels, matches)
}

/// One image's assignment (mmdet `_get_targets_single` up to the sampler): anchors `[K, 4]` inside the
/// `height` × `width` image up to `config.allowedBorder` (mmdet `anchor_inside_flags`) are assigned by
/// `maxIoUAssign` against `groundTruth` `[g, 4]`; the others are ignored.
///
/// mmdet also ANDs `valid_flags` (feature locations inside the image's padded shape); with a border ≥ 0 that test
/// is implied by the inside test (an anchor centred at or beyond the padded edge ends beyond the image), so it is
/// left out.
public func assignRPNAnchors(anchors: Tensor, groundTruth: Tensor, height: Int, width: Int,
                             config: RPNConfig) -> RPNAnchorAssignment {
  precondition(groundTruth.rank == 2 && groundTruth.shape[1] == 4,
               "assignRPNAnchors expects [g, 4] ground-truth boxes, got \(groundTruth.shape).")
  let anchorCount = anchors.shape[0]
  let inside = anchorsInsideImage(anchors, height: height, width: width, allowedBorder: config.allowedBorder)
  let kept = inside.indices.filter { inside[$0] }
  var result = RPNAnchorAssignment(labels: [MatchLabel](repeating: .ignore, count: anchorCount),
                                   matchedGroundTruth: [Int](repeating: -1, count: anchorCount))
  guard !kept.isEmpty else { return result }
  // mmdet's BboxOverlaps2D(gt_bboxes, anchors): the same arithmetic order as pairwiseIoU(a: gt, b: anchors).
  let quality = pairwiseIoU(groundTruth, gatherRows(anchors, kept))
  let (labels, matches) = maxIoUAssign(quality: quality, positiveIoU: config.positiveIoU,
                                       negativeIoU: config.negativeIoU, minPositiveIoU: config.minPositiveIoU)
  for (local, anchor) in kept.enumerated() {
    result.labels[anchor] = labels[local]
    result.matchedGroundTruth[anchor] = matches[local]
  }
  return result
}

/// mmdet `RandomSampler(num: batchSizePerImage, pos_fraction: positiveFraction)`: min(#positives,
/// ⌊num·fraction⌋) positives and min(#negatives, num − that) negatives, each a uniformly random subset (seeded
/// `generator`, positives drawn first; torch's generator cannot be reproduced, so the draws differ from mmdet's).
public func sampleRPNAnchors<G: RandomNumberGenerator>(_ assignment: RPNAnchorAssignment, config: RPNConfig,
                                                       using generator: inout G) -> RPNSampledAnchors {
  let (positive, negative) = subsampleLabels(assignment.samplerLabels, batchSize: config.batchSizePerImage,
                                             positiveFraction: config.positiveFraction, backgroundLabel: 0,
                                             using: &generator)
  return RPNSampledAnchors(positive: positive.sorted(), negative: negative.sorted())
}

/// The two RPN losses and their gradients w.r.t. the head's outputs.
public struct RPNLoss: Sendable {
  /// `loss_rpn_cls`: Σ over sampled anchors of BCE-with-logits (target 1 positive, 0 negative) / sampled count.
  public var classification: Float
  /// `loss_rpn_bbox`: Σ over positives of |deltas − encode(anchor, gt)| (4 coordinates) / sampled count.
  public var box: Float
  /// ∂(classification + box)/∂objectness `[n, K]` and ∂/∂deltas `[n, K, 4]` (zero for anchors not sampled).
  public var objectnessGradient: Tensor
  public var deltasGradient: Tensor
  /// mmdet's `avg_factor` (`rpnAverageFactor`): Σ over images of max(#positives, 1) + max(#negatives, 1).
  public var sampledCount: Int
}

/// mmdet 2.x `AnchorHead.get_targets`' `avg_factor` with sampling: Σ over images of max(#positives, 1) +
/// max(#negatives, 1) — the plain sampled count unless an image lacks positives or negatives (an image without
/// ground truth, or whose every anchor is ignored).
public func rpnAverageFactor(_ samples: [RPNSampledAnchors]) -> Int {
  samples.reduce(0) { $0 + max($1.positive.count, 1) + max($1.negative.count, 1) }
}

/// mmdet `AnchorHead.loss` for one level: the sampled anchors' sigmoid BCE and the positives' L1 on deltas encoded
/// with `BoxCoder.rpn` (`DeltaXYWHBBoxCoder`, means 0, stds 1), both summed over the batch and divided by mmdet's
/// `avg_factor` (`rpnAverageFactor`: the sampled count, with an image's missing positives or negatives counted as
/// one each; with none sampled at all both losses are 0).
///
/// objectness `[n, K]`, deltas `[n, K, 4]`, anchors `[K, 4]`; per image its ground truth `[g, 4]`, its assignment and
/// its sampled anchors (every sampled positive must be labelled positive and every negative negative).
public func rpnLoss(objectness: Tensor, deltas: Tensor, anchors: Tensor, groundTruth: [Tensor],
                    assignments: [RPNAnchorAssignment], samples: [RPNSampledAnchors]) -> RPNLoss {
  let (n, k) = (objectness.shape[0], anchors.shape[0])
  precondition(objectness.shape == [n, k] && deltas.shape == [n, k, 4] && groundTruth.count == n
                 && assignments.count == n && samples.count == n,
               "rpnLoss: objectness \(objectness.shape), deltas \(deltas.shape) and \(anchors.shape[0]) anchors do not "
                 + "match \(groundTruth.count) ground truths, \(assignments.count) assignments, \(samples.count) samples.")
  let sampledCount = samples.reduce(0) { $0 + $1.count }
  var objectnessGradient = Tensor.zeros(objectness.shape)
  var deltasGradient = Tensor.zeros(deltas.shape)
  guard sampledCount > 0 else {
    return RPNLoss(classification: 0, box: 0, objectnessGradient: objectnessGradient, deltasGradient: deltasGradient,
                   sampledCount: 0)
  }
  let averageFactor = rpnAverageFactor(samples)
  let normaliser = Float(averageFactor)
  var classificationSum = 0.0, boxSum = 0.0
  for image in 0..<n {
    let (assignment, sample) = (assignments[image], samples[image])
    for index in sample.positive {
      precondition(assignment.labels[index] == .positive, "rpnLoss: image \(image)'s sampled positive \(index) is "
                     + "labelled \(assignment.labels[index]).")
    }
    for index in sample.negative {
      precondition(assignment.labels[index] == .negative, "rpnLoss: image \(image)'s sampled negative \(index) is "
                     + "labelled \(assignment.labels[index]).")
    }
    let sampled = sample.positive + sample.negative
    let logits = Tensor(shape: [sampled.count], scalars: sampled.map { objectness.scalars[image * k + $0] })
    let targets = Tensor(shape: [sampled.count],
                         scalars: sampled.indices.map { $0 < sample.positive.count ? 1 : 0 })
    let (bce, bceGradient) = binaryCrossEntropyWithLogits(logits, targets: targets, reduction: .sum)
    classificationSum += Double(bce)
    for (slot, index) in sampled.enumerated() {
      objectnessGradient.scalars[image * k + index] = bceGradient.scalars[slot] / normaliser
    }
    guard !sample.positive.isEmpty else { continue }
    let positiveDeltas = Tensor(shape: [sample.positive.count, 4], scalars: sample.positive.flatMap { index in
      deltas.scalars[((image * k + index) * 4)..<((image * k + index) * 4 + 4)]
    })
    let positiveAnchors = gatherRows(anchors, sample.positive)
    let matched = gatherRows(groundTruth[image], sample.positive.map { assignment.matchedGroundTruth[$0] })
    let boxTargets = BoxCoder.rpn.encode(sources: positiveAnchors, targets: matched)
    let (l1, l1Gradient) = smoothL1(positiveDeltas, target: boxTargets, beta: 0,
                                    reduction: .sum)
    boxSum += Double(l1)
    for (slot, index) in sample.positive.enumerated() {
      for c in 0..<4 {
        deltasGradient.scalars[(image * k + index) * 4 + c] = l1Gradient.scalars[slot * 4 + c] / normaliser
      }
    }
  }
  return RPNLoss(classification: Float(classificationSum / Double(normaliser)),
                 box: Float(boxSum / Double(normaliser)), objectnessGradient: objectnessGradient,
                 deltasGradient: deltasGradient, sampledCount: averageFactor)
}
