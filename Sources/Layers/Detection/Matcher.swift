// Anchor / proposal to ground-truth matching and the balanced positive/negative sampler.
// Reference: detectron2 modeling/matcher.py (`Matcher.__call__`, `set_low_quality_matches_`) and
// modeling/sampling.py (`subsample_labels`).
import Tensors

/// What a match says about one prediction (detectron2's labels −1 / 0 / 1).
public enum MatchLabel: Int8, Sendable, Equatable {
  case ignore = -1, negative = 0, positive = 1
}

/// detectron2's `Matcher`: each prediction's best ground truth and a label from IoU thresholds.
///
/// With thresholds [t1, t2] and labels [l0, l1, l2]: IoU < t1 → l0, t1 ≤ IoU < t2 → l1, IoU ≥ t2 → l2.
/// RPN: thresholds [0.3, 0.7], labels [negative, ignore, positive], low-quality matches on.
/// ROI head: thresholds [0.5], labels [negative, positive], low-quality matches off.
public struct Matcher: Sendable, Equatable {
  public var thresholds: [Float]
  public var labels: [MatchLabel]
  public var allowLowQualityMatches: Bool

  public init(thresholds: [Float], labels: [MatchLabel], allowLowQualityMatches: Bool) {
    precondition(labels.count == thresholds.count + 1 && (thresholds.first ?? 1) > 0
                   && zip(thresholds, thresholds.dropFirst()).allSatisfy { $0 <= $1 },
                 "Matcher needs increasing positive thresholds and one more label, got \(thresholds), \(labels).")
    self.thresholds = thresholds
    self.labels = labels
    self.allowLowQualityMatches = allowLowQualityMatches
  }

  public static let rpn = Matcher(thresholds: [0.3, 0.7], labels: [.negative, .ignore, .positive],
                                  allowLowQualityMatches: true)
  public static let roiHead = Matcher(thresholds: [0.5], labels: [.negative, .positive], allowLowQualityMatches: false)

  /// Matches the predictions (columns) of `quality` `[groundTruths, predictions]` (IoU, all ≥ 0).
  ///
  /// `matches[i]` is the ground truth with the highest IoU for prediction i (the first on ties; 0 when there is no
  /// ground truth); `labels[i]` its label. With low-quality matches, every prediction that attains some ground
  /// truth's highest IoU (ties included — and a ground truth that overlaps nothing has highest IoU 0, which every
  /// prediction attains, as in detectron2) becomes positive, keeping its own argmax as its match.
  public func callAsFunction(_ quality: Tensor) -> (matches: [Int], labels: [MatchLabel]) {
    precondition(quality.rank == 2, "Matcher expects a [groundTruths, predictions] matrix, got \(quality.shape).")
    let (gtCount, predictions) = (quality.shape[0], quality.shape[1])
    if gtCount == 0 || predictions == 0 {
      return ([Int](repeating: 0, count: predictions), [MatchLabel](repeating: labels[0], count: predictions))
    }
    let q = quality.scalars
    var matches = [Int](repeating: 0, count: predictions)
    var best = [Float](repeating: -.infinity, count: predictions)
    for g in 0..<gtCount {
      for p in 0..<predictions where q[g * predictions + p] > best[p] {
        best[p] = q[g * predictions + p]
        matches[p] = g
      }
    }
    var result = best.map { value -> MatchLabel in
      var level = 0
      while level < thresholds.count && value >= thresholds[level] { level += 1 }
      return labels[level]
    }
    if allowLowQualityMatches {
      for g in 0..<gtCount {
        let row = q[(g * predictions)..<((g + 1) * predictions)]
        let highest = row.max()!
        for p in 0..<predictions where q[g * predictions + p] == highest { result[p] = .positive }
      }
    }
    return (matches, result)
  }
}

/// Balanced sampling of positives and negatives (detectron2 `subsample_labels`).
///
/// Positives are the entries with a label that is neither −1 nor `backgroundLabel`; negatives those equal to
/// `backgroundLabel`. It takes num_pos = min(#pos, Int(batchSize · positiveFraction)) and
/// num_neg = min(#neg, batchSize − num_pos), each the first entries of a random permutation of the candidates
/// (`permutation(n)` returns one of 0..<n; torch.randperm in the reference). Returns indices into `labels`.
public func subsampleLabels(_ labels: [Int], batchSize: Int, positiveFraction: Double, backgroundLabel: Int,
                            permutation: (Int) -> [Int]) -> (positive: [Int], negative: [Int]) {
  precondition(batchSize >= 0 && positiveFraction >= 0 && positiveFraction <= 1,
               "subsampleLabels needs batchSize ≥ 0 and a fraction in [0, 1], got \(batchSize), \(positiveFraction).")
  let positives = labels.indices.filter { labels[$0] != -1 && labels[$0] != backgroundLabel }
  let negatives = labels.indices.filter { labels[$0] == backgroundLabel }
  let positiveCount = min(positives.count, Int(Double(batchSize) * positiveFraction))
  let negativeCount = min(negatives.count, batchSize - positiveCount)
  func pick(_ candidates: [Int], _ count: Int) -> [Int] {
    let order = permutation(candidates.count)
    precondition(order.count == candidates.count, "subsampleLabels: the permutation of \(candidates.count) has \(order.count) entries.")
    return order.prefix(count).map { candidates[$0] }
  }
  return (pick(positives, positiveCount), pick(negatives, negativeCount))
}

/// `subsampleLabels` with a seeded Fisher–Yates permutation from `generator` (positives drawn first).
public func subsampleLabels<G: RandomNumberGenerator>(_ labels: [Int], batchSize: Int, positiveFraction: Double,
                                                      backgroundLabel: Int, using generator: inout G)
  -> (positive: [Int], negative: [Int]) {
  subsampleLabels(labels, batchSize: batchSize, positiveFraction: positiveFraction, backgroundLabel: backgroundLabel) {
    randomPermutation($0, using: &generator)
  }
}

/// A uniformly random permutation of 0..<count (Fisher–Yates).
public func randomPermutation<G: RandomNumberGenerator>(_ count: Int, using generator: inout G) -> [Int] {
  var order = Array(0..<count)
  if count > 1 {
    for i in stride(from: count - 1, to: 0, by: -1) {
      order.swapAt(i, Int.random(in: 0...i, using: &generator))
    }
  }
  return order
}
