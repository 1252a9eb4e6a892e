// One image × one category of a COCO evaluation: cocoeval.py's computeIoU + evaluateImg for every area range.
import Datasets

/// What accumulate needs from one (image, category) cell: its kept detections' scores and, per area range and IoU
/// threshold, whether each detection matched a ground truth and whether it is ignored.
struct COCOCellEvaluation: Sendable {
  /// Scores of the kept detections, highest first (the first maxDets of a stable sort by score).
  var scores: [Double]
  /// Row-major A × T × D flags: bit 0 = matched to a ground truth whose id is nonzero (cocoeval's `dtm` is the
  /// matched id, and 0 reads as "unmatched"), bit 1 = ignored (`dtIgnore`).
  var flags: [UInt8]
  /// Per area range, the ground truths that count (`gtIgnore == 0`).
  var countedTruths: [Int]

  static let matched: UInt8 = 1
  static let ignored: UInt8 = 2
}

/// The inputs of one cell, in file order.
struct COCOCellInput {
  var truthIDs: [Int]
  var truthAreas: [Double]
  var truthCrowd: [Bool]
  var detectionScores: [Double]
  var detectionAreas: [Double]
}

enum COCOCellEvaluator {
  /// Detection positions sorted by score, highest first, ties in file order (numpy's stable mergesort of −score),
  /// cut to `limit`.
  static func rankedDetections(_ scores: [Double], limit: Int) -> [Int] {
    let order = scores.indices.sorted { a, b in scores[a] > scores[b] || (scores[a] == scores[b] && a < b) }
    return Array(order.prefix(limit))
  }

  /// evaluateImg for every area range, given the ranked detections and their IoU with every ground truth
  /// (`iou[d · G + g]`, detections in ranked order, ground truths in file order).
  static func evaluate(_ cell: COCOCellInput, ranked: [Int], iou: [Double],
                       parameters: COCOEvalParameters) -> COCOCellEvaluation {
    let truthCount = cell.truthIDs.count, detectionCount = ranked.count
    let thresholds = parameters.iouThresholds, areaRanges = parameters.areaRanges
    let thresholdCount = thresholds.count
    var flags = [UInt8](repeating: 0, count: areaRanges.count * thresholdCount * detectionCount)
    var countedTruths = [Int](repeating: 0, count: areaRanges.count)
    var truthOrder = [Int](), truthIgnored = [Bool](repeating: false, count: truthCount)
    var truthTaken = [Bool](repeating: false, count: truthCount)  // gtm > 0, in sorted order
    truthOrder.reserveCapacity(truthCount)
    for (a, range) in areaRanges.enumerated() {
      // Ground truths that do not count: crowds and those outside the area range; stable sort puts them last.
      for g in 0..<truthCount {
        truthIgnored[g] = cell.truthCrowd[g] || cell.truthAreas[g] < range.lower || cell.truthAreas[g] > range.upper
      }
      truthOrder.removeAll(keepingCapacity: true)
      truthOrder.append(contentsOf: (0..<truthCount).filter { !truthIgnored[$0] })
      countedTruths[a] = truthOrder.count
      truthOrder.append(contentsOf: (0..<truthCount).filter { truthIgnored[$0] })
      for t in 0..<thresholdCount {
        let base = (a * thresholdCount + t) * detectionCount
        for i in 0..<truthCount { truthTaken[i] = false }
        for d in 0..<detectionCount {
          // Greedy: the best remaining ground truth at IoU ≥ threshold; counted ones before ignored ones.
          var best = min(thresholds[t], 1 - 1e-10)
          var match = -1  // position in truthOrder
          for position in 0..<truthCount {
            let g = truthOrder[position]
            if truthTaken[position] && !cell.truthCrowd[g] { continue }
            if match > -1 && !truthIgnored[truthOrder[match]] && truthIgnored[g] { break }
            let overlap = iou[d * truthCount + g]
            if overlap < best { continue }
            best = overlap
            match = position
          }
          var flag: UInt8 = 0
          if match >= 0 {
            let g = truthOrder[match]
            truthTaken[match] = true
            if truthIgnored[g] { flag |= COCOCellEvaluation.ignored }
            if cell.truthIDs[g] != 0 { flag |= COCOCellEvaluation.matched }
          }
          // Unmatched detections (dtm == 0, which includes a match to a ground truth with id 0) outside the
          // area range are ignored too.
          if flag & COCOCellEvaluation.matched == 0 {
            let area = cell.detectionAreas[ranked[d]]
            if area < range.lower || area > range.upper { flag |= COCOCellEvaluation.ignored }
          }
          flags[base + d] = flag
        }
      }
    }
    return COCOCellEvaluation(scores: ranked.map { cell.detectionScores[$0] }, flags: flags,
                              countedTruths: countedTruths)
  }

  /// Box IoU of the ranked detections against the ground truths: D × G.
  static func boxIoU(detectionBoxes: UnsafePointer<Double>, ranked: [Int], truthBoxes: UnsafePointer<Double>,
                     crowd: [Bool]) -> [Double] {
    let truthCount = crowd.count
    var iou = [Double](repeating: 0, count: ranked.count * truthCount)
    for (d, detection) in ranked.enumerated() {
      for g in 0..<truthCount {
        iou[d * truthCount + g] = COCOBoxIoU.iou(detection: detectionBoxes + 4 * detection,
                                                 groundTruth: truthBoxes + 4 * g, crowd: crowd[g])
      }
    }
    return iou
  }
}
