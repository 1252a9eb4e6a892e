// Training targets and losses of the C4 ROI head, as mmdet 2.x computes them:
// core/bbox/samplers/base_sampler.py (`sample`: GT boxes PREPENDED to the proposals, each assigned to itself;
// positives and negatives drawn separately, then `unique()` — so each set comes back in ascending index order),
// samplers/random_sampler.py (`random_choice` = first `num` of a shuffle), assigners/max_iou_assigner.py
// (`assign_wrt_overlaps`; low-quality matches for the FPN config), bbox_heads/bbox_head.py (`_get_target_single`,
// `loss`).
import Tensors
import Layers

/// Which ground truth each candidate ROI of one image matches: GT boxes first (when added as proposals), then the
/// proposals.
public struct ROIAssignment: Sendable, Equatable {
  /// `[c, 4]`: the ground-truth boxes (if added) followed by the proposals.
  public var candidates: Tensor
  /// The matched ground truth of each candidate (meaningful for positives).
  public var matchedGroundTruth: [Int]
  /// positive (best IoU ≥ positiveIoU), negative (< negativeIoU) or ignore (in between).
  public var labels: [MatchLabel]

  public var positiveIndices: [Int] { labels.indices.filter { labels[$0] == .positive } }
  public var negativeIndices: [Int] { labels.indices.filter { labels[$0] == .negative } }
}

/// One image's sampled training ROIs: positives (ascending candidate index), then negatives (ascending).
public struct ROISample: Sendable, Equatable {
  /// Candidate indices (into `ROIAssignment.candidates`) of the sampled positives, then negatives.
  public var indices: [Int]
  /// `[s, 4]` the sampled boxes, in input pixels.
  public var boxes: Tensor
  /// The ground-truth class (0..<classCount) of a positive; `backgroundLabel` for a negative.
  public var labels: [Int]
  /// `[s, 4]` BoxCoder.roiHead deltas from a positive box to its ground truth (means 0, stds 0.1, 0.1, 0.2, 0.2);
  /// zeros for negatives.
  public var boxTargets: Tensor
  public var positiveCount: Int
  /// The ground-truth index each positive is matched to (`pos_assigned_gt_inds`: the mask targets' instances).
  public var positiveGroundTruth: [Int]
}

extension ROIHeadConfig {
  /// mmdet's MaxIoUAssigner (rcnn: pos 0.5, neg 0.5; low-quality matches only with `matchesLowQuality`, the FPN
  /// config) on `proposals` `[p, 4]` against
  /// `gtBoxes` `[g, 4]`, with the ground truths prepended as candidates (each assigned to itself, IoU 1) when
  /// `addsGroundTruthAsProposals`. Without ground truth every proposal is negative.
  public func assign(proposals: Tensor, gtBoxes: Tensor) -> ROIAssignment {
    precondition(proposals.rank == 2 && proposals.shape[1] == 4 && gtBoxes.rank == 2 && gtBoxes.shape[1] == 4,
                 "ROI assignment expects proposals [p, 4] and ground truths [g, 4], got \(proposals.shape) and "
                   + "\(gtBoxes.shape).")
    let gtCount = gtBoxes.shape[0]
    // mmdet assigns the proposals alone, then `add_gt_`: the GT candidates are positives of their own GT.
    let quality = pairwiseIoU(gtBoxes, proposals)
    let (matches, labels): ([Int], [MatchLabel])
    if matchesLowQuality {
      (labels, matches) = maxIoUAssign(quality: quality, positiveIoU: positiveIoU, negativeIoU: negativeIoU,
                                       minPositiveIoU: minPositiveIoU)
    } else {
      let matcher = Matcher(thresholds: [negativeIoU, positiveIoU], labels: [.negative, .ignore, .positive],
                            allowLowQualityMatches: false)
      (matches, labels) = matcher(quality)
    }
    guard addsGroundTruthAsProposals && gtCount > 0 else {
      return ROIAssignment(candidates: proposals, matchedGroundTruth: matches, labels: labels)
    }
    return ROIAssignment(candidates: Tensor(shape: [gtCount + proposals.shape[0], 4],
                                            scalars: gtBoxes.scalars + proposals.scalars),
                         matchedGroundTruth: Array(0..<gtCount) + matches,
                         labels: [MatchLabel](repeating: .positive, count: gtCount) + labels)
  }

  /// The number of positives mmdet's RandomSampler aims for (`int(num · pos_fraction)`).
  public var expectedPositivesPerImage: Int { Int(Double(batchSizePerImage) * positiveFraction) }

  /// Samples one image's training ROIs as mmdet's RandomSampler: up to `expectedPositivesPerImage` positives, then
  /// up to `batchSizePerImage − sampled positives` negatives, each set the first entries of a random permutation
  /// (Fisher–Yates from `generator`; mmdet's numpy shuffle) when there are more candidates than wanted, all of
  /// them otherwise; each set in ascending order.
  public func sampleROIs<G: RandomNumberGenerator>(proposals: Tensor, gtBoxes: Tensor, gtLabels: [Int],
                                                   using generator: inout G) -> ROISample {
    let assignment = assign(proposals: proposals, gtBoxes: gtBoxes)
    func choose(_ candidates: [Int], _ wanted: Int) -> [Int] {
      guard candidates.count > wanted else { return candidates }
      return randomPermutation(candidates.count, using: &generator).prefix(wanted).map { candidates[$0] }.sorted()
    }
    let positives = choose(assignment.positiveIndices, expectedPositivesPerImage)
    let negatives = choose(assignment.negativeIndices, batchSizePerImage - positives.count)
    return sample(assignment, gtBoxes: gtBoxes, gtLabels: gtLabels, positives: positives, negatives: negatives)
  }

  /// The training ROIs for given sampled candidate indices (a fixture's draws): `positives` must be positives and
  /// `negatives` negatives of the assignment (each set is sorted, as mmdet's `unique()` returns it).
  public func sampleROIs(proposals: Tensor, gtBoxes: Tensor, gtLabels: [Int], positives: [Int],
                         negatives: [Int]) -> ROISample {
    let assignment = assign(proposals: proposals, gtBoxes: gtBoxes)
    for index in positives {
      precondition(assignment.labels.indices.contains(index) && assignment.labels[index] == .positive,
                   "sampleROIs: candidate \(index) is not a positive of this assignment.")
    }
    for index in negatives {
      precondition(assignment.labels.indices.contains(index) && assignment.labels[index] == .negative,
                   "sampleROIs: candidate \(index) is not a negative of this assignment.")
    }
    return sample(assignment, gtBoxes: gtBoxes, gtLabels: gtLabels, positives: positives.sorted(),
                  negatives: negatives.sorted())
  }

  /// `BBoxHead._get_target_single`: labels (GT class or background) and encoded box targets of the positives.
  private func sample(_ assignment: ROIAssignment, gtBoxes: Tensor, gtLabels: [Int], positives: [Int],
                      negatives: [Int]) -> ROISample {
    precondition(gtLabels.count == gtBoxes.shape[0],
                 "sampleROIs: \(gtBoxes.shape[0]) ground-truth boxes but \(gtLabels.count) labels.")
    precondition(gtLabels.allSatisfy { (0..<classCount).contains($0) },
                 "sampleROIs: ground-truth labels must be in 0..<\(classCount), got \(gtLabels).")
    let indices = positives + negatives
    let boxes = gatherRows(assignment.candidates, indices)
    let matched = positives.map { assignment.matchedGroundTruth[$0] }
    var targets = Tensor.zeros([indices.count, 4])
    if !positives.isEmpty {
      let encoded = BoxCoder.roiHead.encode(sources: gatherRows(assignment.candidates, positives),
                                            targets: gatherRows(gtBoxes, matched))
      targets.scalars.replaceSubrange(0..<(4 * positives.count), with: encoded.scalars)
    }
    return ROISample(indices: indices, boxes: boxes,
                     labels: matched.map { gtLabels[$0] } + [Int](repeating: backgroundLabel, count: negatives.count),
                     boxTargets: targets, positiveCount: positives.count, positiveGroundTruth: matched)
  }
}

/// The sampled rois of a batch as ROIAlign takes them: `[Σ s, 5]` rows (image index, x1, y1, x2, y2), image by image
/// (mmdet `bbox2roi`).
public func roisForBatch(_ boxesPerImage: [Tensor]) -> Tensor {
  var scalars = [Float]()
  scalars.reserveCapacity(boxesPerImage.reduce(0) { $0 + $1.shape[0] } * 5)
  for (image, boxes) in boxesPerImage.enumerated() {
    precondition(boxes.rank == 2 && boxes.shape[1] == 4, "roisForBatch expects [k, 4] boxes, got \(boxes.shape).")
    for row in 0..<boxes.shape[0] {
      scalars.append(Float(image))
      scalars += boxes.scalars[(4 * row)..<(4 * row + 4)]
    }
  }
  return Tensor(shape: [scalars.count / 5, 5], scalars: scalars)
}

/// The two ROI-head losses and their gradients w.r.t. the head's outputs.
public struct ROIHeadLosses: Sendable {
  /// Softmax cross-entropy averaged over every sampled roi of the batch.
  public var classLoss: Float
  /// L1 between each positive's deltas for its GT class and its target, summed, divided by the sampled rois.
  public var boxLoss: Float
  public var classLogitGradient: Tensor  // [k, classCount + 1]
  public var boxDeltaGradient: Tensor    // [k, 4·classCount]
}

/// mmdet `BBoxHead.loss` on the batch's sampled rois (image by image, as `roisForBatch` orders them):
/// CrossEntropyLoss with avg_factor = the number of sampled rois, and L1Loss over the positives' class-specific deltas
/// (`reg_class_agnostic=False`) with avg_factor = the number of sampled rois (`bbox_targets.size(0)`).
/// Without positives the box loss is 0 (mmdet: `bbox_pred[pos_inds].sum()`).
public func roiHeadLosses(classLogits: Tensor, boxDeltas: Tensor, samples: [ROISample],
                          classCount: Int) -> ROIHeadLosses {
  let k = samples.reduce(0) { $0 + $1.labels.count }
  precondition(k > 0 && classLogits.shape == [k, classCount + 1] && boxDeltas.shape == [k, 4 * classCount],
               "roiHeadLosses: \(k) sampled rois need logits [\(k), \(classCount + 1)] and deltas "
                 + "[\(k), \(4 * classCount)], got \(classLogits.shape) and \(boxDeltas.shape).")
  let labels = samples.flatMap(\.labels)
  let (classLoss, classGradient) = crossEntropy(logits: classLogits, labels: labels)
  var boxGradient = Tensor.zeros(boxDeltas.shape)
  var total = 0.0
  let scale = 1 / Float(k)
  var row = 0
  for sample in samples {
    for position in 0..<sample.positiveCount {
      let label = sample.labels[position]
      for coordinate in 0..<4 {
        let index = (row + position) * 4 * classCount + 4 * label + coordinate
        let difference = boxDeltas.scalars[index] - sample.boxTargets.scalars[4 * position + coordinate]
        total += Double(abs(difference))
        boxGradient.scalars[index] = difference > 0 ? scale : (difference < 0 ? -scale : 0)
      }
    }
    row += sample.labels.count
  }
  return ROIHeadLosses(classLoss: classLoss, boxLoss: Float(total / Double(k)), classLogitGradient: classGradient,
                       boxDeltaGradient: boxGradient)
}
