// cocoeval.py accumulate(): per category, area range and detection cap, the detections of all images ranked by
// score, cumulative true / false positives per IoU threshold, the precision envelope and its read-out at the 101
// recall points. Parallel over categories; each category's slices are written by one thread.
import Tensors

enum COCOAccumulator {
  /// `precision` T × R × K × A × M and `recall` T × K × A × M (row-major), −1 where a category has no counted
  /// ground truth in an area range. `cells[image · K + category]`.
  static func accumulate(_ cells: [COCOCellEvaluation?], imageCount: Int, categoryCount: Int,
                         parameters: COCOEvalParameters) -> (precision: [Double], recall: [Double]) {
    let T = parameters.iouThresholds.count, R = parameters.recallThresholds.count
    let K = categoryCount, A = parameters.areaRanges.count, M = parameters.maxDetections.count
    var precision = [Double](repeating: -1, count: T * R * K * A * M)
    var recall = [Double](repeating: -1, count: T * K * A * M)
    precision.withUnsafeMutableBufferPointer { precisionSlots in
      recall.withUnsafeMutableBufferPointer { recallSlots in
        parallelForEach(K) { k, _ in
          let categoryCells = (0..<imageCount).compactMap { cells[$0 * K + k] }  // image order, as evalImgs
          if categoryCells.isEmpty { return }
          let counted = (0..<A).map { a in categoryCells.reduce(0) { $0 + $1.countedTruths[a] } }
          for (m, cap) in parameters.maxDetections.enumerated() {
            let ranked = rank(categoryCells, cap: cap), count = ranked.count
            // The ranked detections' flags, gathered once: rankedFlags[(a · T + t) · count + i].
            var rankedFlags = [UInt8](repeating: 0, count: A * T * count)
            for (i, entry) in ranked.enumerated() {
              let detectionCount = categoryCells[entry.cell].scores.count
              categoryCells[entry.cell].flags.withUnsafeBufferPointer { flags in
                for at in 0..<(A * T) { rankedFlags[at * count + i] = flags[at * detectionCount + entry.rank] }
              }
            }
            var truePositives = [Double](repeating: 0, count: count)
            var falsePositives = [Double](repeating: 0, count: count)
            for a in 0..<A where counted[a] > 0 {
              for t in 0..<T {
                // Cumulative sums over the ranked detections; ignored ones add to neither.
                var tp = 0, fp = 0
                let base = (a * T + t) * count
                for i in 0..<count {
                  let flag = rankedFlags[base + i]
                  if flag & COCOCellEvaluation.ignored == 0 {
                    if flag & COCOCellEvaluation.matched != 0 { tp += 1 } else { fp += 1 }
                  }
                  truePositives[i] = Double(tp)
                  falsePositives[i] = Double(fp)
                }
                let curve = readOut(truePositives: truePositives, falsePositives: falsePositives,
                                    countedTruths: Double(counted[a]), recallThresholds: parameters.recallThresholds)
                recallSlots[((t * K + k) * A + a) * M + m] = curve.recall
                for r in 0..<R { precisionSlots[(((t * R + r) * K + k) * A + a) * M + m] = curve.precision[r] }
              }
            }
          }
        }
      }
    }
    return (precision, recall)
  }

  /// A detection of the concatenated list: which cell, and its rank inside the cell.
  struct RankedDetection {
    var cell: Int
    var rank: Int
  }

  /// The first `cap` detections of every cell, concatenated in image order and sorted by score, highest first,
  /// ties kept in concatenation order (numpy's stable mergesort of −dtScores).
  static func rank(_ cells: [COCOCellEvaluation], cap: Int) -> [RankedDetection] {
    var entries: [RankedDetection] = [], scores: [Double] = []
    for (c, cell) in cells.enumerated() {
      for rank in 0..<min(cap, cell.scores.count) {
        entries.append(RankedDetection(cell: c, rank: rank))
        scores.append(cell.scores[rank])
      }
    }
    let order = scores.indices.sorted { a, b in scores[a] > scores[b] || (scores[a] == scores[b] && a < b) }
    return order.map { entries[$0] }
  }

  /// One (t, k, a, m) curve: recall = tp / npig; precision = tp / (tp + fp + eps) made non-increasing from the
  /// right; precision at each recall point is the envelope at the first detection whose recall reaches it
  /// (`np.searchsorted(rc, recThrs, side='left')`), 0 past the last one. Recall is the last recall, 0 if none.
  static func readOut(truePositives tp: [Double], falsePositives fp: [Double], countedTruths: Double,
                      recallThresholds: [Double]) -> (precision: [Double], recall: Double) {
    let count = tp.count
    let spacing = 2.220446049250313e-16  // np.spacing(1)
    var recall = [Double](repeating: 0, count: count), envelope = [Double](repeating: 0, count: count)
    for i in 0..<count {
      recall[i] = tp[i] / countedTruths
      envelope[i] = tp[i] / (fp[i] + tp[i] + spacing)
    }
    var i = count - 1
    while i > 0 {
      if envelope[i] > envelope[i - 1] { envelope[i - 1] = envelope[i] }
      i -= 1
    }
    var precision = [Double](repeating: 0, count: recallThresholds.count)
    var position = 0  // recall is non-decreasing and so are the thresholds: one forward walk is searchsorted
    for (r, threshold) in recallThresholds.enumerated() {
      while position < count && recall[position] < threshold { position += 1 }
      if position == count { break }
      precision[r] = envelope[position]
    }
    return (precision, count > 0 ? recall[count - 1] : 0)
  }
}
