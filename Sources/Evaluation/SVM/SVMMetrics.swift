// The three pieces of PROTOCOLS §2.3 that decide numbers without any training: the two AP definitions, the fold
// assignment of scikit-learn's StratifiedKFold, and the reference cost list. Each matches its reference exactly;
// tests compare them with hand-computed values and with scikit-learn's output (scripts/reference/make_svm_fixtures.py).

/// The reference cost list: `parse_cost_list("1.0,10.0,100.0")` = [1, 10, 100] + [0.5^n for n in 4…19]
/// (MMSelfSup `tools/benchmarks/classification/svm_voc07/svm_helper.py`, `eval_svm_full.sh`). 19 costs.
public let referenceSVMCosts: [Double] = [1.0, 10.0, 100.0] + (4...19).map { pow2(-$0) }

private func pow2(_ exponent: Int) -> Double {
  var value = 1.0
  for _ in 0..<abs(exponent) { value = exponent < 0 ? value * 0.5 : value * 2 }
  return value
}

/// scikit-learn's `average_precision_score(y_true, y_score)` (non-interpolated; `sklearn.metrics`,
/// `_binary_uninterpolated_average_precision`): AP = Σₙ (Rₙ − Rₙ₋₁) Pₙ over the **distinct** score thresholds,
/// from the highest score down, so tied scores enter together (`precision_recall_curve`'s `_binary_clf_curve`
/// keeps the last index of each run of equal sorted scores).
///
/// `positive[i]` marks the positives. With no positive, scikit-learn ≥ 1.3 sets recall to 1 everywhere after a
/// warning, which makes AP = 0 here (the sum has no recall step); we return 0 too.
public func sklearnAveragePrecision(scores: [Double], positive: [Bool]) -> Double {
  precondition(scores.count == positive.count,
               "average precision needs one label per score, got \(scores.count) scores, \(positive.count) labels.")
  let totalPositives = positive.reduce(0) { $0 + ($1 ? 1 : 0) }
  guard totalPositives > 0 else { return 0 }
  // Descending by score; the order inside a run of equal scores does not matter, only the run's totals.
  let order = scores.indices.sorted { scores[$0] > scores[$1] }
  var truePositives = 0
  var seen = 0
  var previousRecall = 0.0
  var ap = 0.0
  for (rank, index) in order.enumerated() {
    seen += 1
    if positive[index] { truePositives += 1 }
    let endOfRun = rank == order.count - 1 || scores[order[rank + 1]] != scores[index]
    guard endOfRun else { continue }
    let recall = Double(truePositives) / Double(totalPositives)
    let precision = Double(truePositives) / Double(seen)
    ap += (recall - previousRecall) * precision
    previousRecall = recall
  }
  return ap
}

/// The reference's test AP (`svm_helper.py`: `get_precision_recall` + `calculate_ap`): VOC2010-style all-point
/// interpolated AP. Sort by score descending (`np.argsort(preds)[::-1]`); cumulative TP/FP give P and R at every
/// rank; pad `mrec = [0, R, 1]`, `mpre = [0, P, 0]`; make precision non-increasing from the right; sum
/// `(mrec[i] − mrec[i−1]) · mpre[i]` over the indices where recall changes.
///
/// Ties: NumPy's default (unstable) argsort leaves the order of equal scores unspecified; we use the order a stable
/// ascending sort reversed gives (equal scores: higher index first), which is what NumPy does for ≤ 16 elements.
/// SVM decision values are continuous, so ties are rare; the sklearn AP above is tie-exact.
///
/// With no positive the reference divides by zero (R = NaN, AP = 0 after NaN comparisons); callers reject that
/// case earlier (`SVMError.noPositives`); here it returns 0.
public func vocAllPointAP(scores: [Double], positive: [Bool]) -> Double {
  precondition(scores.count == positive.count,
               "VOC AP needs one label per score, got \(scores.count) scores, \(positive.count) labels.")
  let totalPositives = positive.reduce(0) { $0 + ($1 ? 1 : 0) }
  guard totalPositives > 0, !scores.isEmpty else { return 0 }
  // Stable ascending argsort, reversed.
  let ascending = scores.indices.sorted { scores[$0] < scores[$1] || (scores[$0] == scores[$1] && $0 < $1) }
  let n = scores.count
  var recall = [Double](repeating: 0, count: n + 2)
  var precision = [Double](repeating: 0, count: n + 2)
  var truePositives = 0.0
  var falsePositives = 0.0
  for (rank, index) in ascending.reversed().enumerated() {
    if positive[index] { truePositives += 1 } else { falsePositives += 1 }
    recall[rank + 1] = truePositives / Double(totalPositives)
    precision[rank + 1] = truePositives / (truePositives + falsePositives)
  }
  recall[n + 1] = 1
  precision[n + 1] = 0
  for i in stride(from: n, through: 0, by: -1) { precision[i] = max(precision[i], precision[i + 1]) }
  var ap = 0.0
  for i in 1...(n + 1) where recall[i] != recall[i - 1] { ap += (recall[i] - recall[i - 1]) * precision[i] }
  return ap
}

/// scikit-learn's `StratifiedKFold(n_splits, shuffle=False).split(X, y)` test-fold index of every sample
/// (`sklearn/model_selection/_split.py`, ≥ 0.22): classes are numbered by first appearance; the round-robin
/// allocation `bincount(sort(y_encoded)[i::n_splits])` says how many samples of each class fold i gets; each class's
/// samples, in index order, fill fold 0, then fold 1, … in blocks of those sizes.
///
/// Returns nil when every class has fewer than `splits` members (scikit-learn raises ValueError then).
public func stratifiedKFoldAssignment(labels: [Int], splits: Int) -> [Int]? {
  precondition(splits >= 2, "StratifiedKFold needs at least 2 splits, got \(splits).")
  var classOf: [Int: Int] = [:]  // label → class number by first appearance
  var encoded = [Int](repeating: 0, count: labels.count)
  for (index, label) in labels.enumerated() {
    if classOf[label] == nil { classOf[label] = classOf.count }
    encoded[index] = classOf[label]!
  }
  var counts = [Int](repeating: 0, count: classOf.count)
  for value in encoded { counts[value] += 1 }
  guard counts.contains(where: { $0 >= splits }) else { return nil }
  // allocation[fold][class]: positions p of the sorted encoding with p % splits == fold inside the class's block.
  var allocation = [[Int]](repeating: [Int](repeating: 0, count: counts.count), count: splits)
  var blockStart = 0
  for (classNumber, count) in counts.enumerated() {
    for fold in 0..<splits {
      // Positions p in [blockStart, blockStart + count) with p ≡ fold (mod splits).
      let first = blockStart + ((fold - blockStart % splits) + splits) % splits
      allocation[fold][classNumber] = first < blockStart + count ? (blockStart + count - 1 - first) / splits + 1 : 0
    }
    blockStart += count
  }
  var assignment = [Int](repeating: 0, count: labels.count)
  var filled = [Int](repeating: 0, count: counts.count)  // members of each class assigned so far
  for (index, classNumber) in encoded.enumerated() {
    var position = filled[classNumber]
    var fold = 0
    while position >= allocation[fold][classNumber] {
      position -= allocation[fold][classNumber]
      fold += 1
    }
    assignment[index] = fold
    filled[classNumber] += 1
  }
  return assignment
}

/// Features are cast to float64 and divided by (‖x‖₂ + 1e-5) (`svm_helper.py`, `normalize_features`).
public let svmNormalizationEpsilon = 1e-5
