// Greedy non-maximum suppression, single-class and batched per class.
// Reference: torchvision csrc/ops/cpu/nms_kernel.cpp (`nms_kernel_impl`) and torchvision/ops/boxes.py
// (`batched_nms`, `_batched_nms_vanilla`).
import Tensors

/// Indices of the boxes kept by greedy NMS, in decreasing score order (torchvision `nms`).
///
/// Boxes `[k, 4]` (x1, y1, x2, y2), areas without +1. Candidates are visited in a stable descending sort of
/// `scores` (equal scores keep their input order); a box is suppressed when its IoU with a kept box is
/// **greater than** `iouThreshold` (compared in double, as the kernel's `ovr > iou_threshold`). `limit` stops
/// after that many kept boxes — the first `limit` of the full answer, which is what a following top-k keeps.
public func nonMaximumSuppression(boxes: Tensor, scores: [Float], iouThreshold: Double, limit: Int? = nil) -> [Int] {
  precondition(boxes.rank == 2 && boxes.shape[1] == 4 && boxes.shape[0] == scores.count,
               "nonMaximumSuppression expects [k, 4] boxes and k scores, got \(boxes.shape) and \(scores.count).")
  let count = scores.count
  let maximum = limit ?? count
  guard maximum > 0 else { return [] }
  let order = stableDescendingOrder(scores)
  // Structure-of-arrays in visiting order, so the inner loop reads contiguous memory and vectorises.
  var x1 = [Float](repeating: 0, count: count), y1 = x1, x2 = x1, y2 = x1, area = x1
  for (rank, index) in order.enumerated() {
    let b = 4 * index
    x1[rank] = boxes.scalars[b]; y1[rank] = boxes.scalars[b + 1]
    x2[rank] = boxes.scalars[b + 2]; y2[rank] = boxes.scalars[b + 3]
    area[rank] = (x2[rank] - x1[rank]) * (y2[rank] - y1[rank])
  }
  let threshold = Float(iouThreshold)
  // ovr > t in double ⇔ ovr > the largest float ≤ t when t is not a float (ovr is a float); ⇔ ovr > Float(t) when
  // Float(t) == t. Float(t) rounds to nearest, so step down when it rounded up.
  let floatThreshold = Double(threshold) > iouThreshold ? threshold.nextDown : threshold
  var suppressed = [UInt8](repeating: 0, count: count)
  var kept = [Int]()
  x1.withUnsafeBufferPointer { x1b in y1.withUnsafeBufferPointer { y1b in
  x2.withUnsafeBufferPointer { x2b in y2.withUnsafeBufferPointer { y2b in
  area.withUnsafeBufferPointer { areab in suppressed.withUnsafeMutableBufferPointer { sb in
    let (x1p, y1p, x2p, y2p, areap, sp) = (x1b.baseAddress, y1b.baseAddress, x2b.baseAddress, y2b.baseAddress,
                                           areab.baseAddress, sb.baseAddress)
    guard let x1p, let y1p, let x2p, let y2p, let areap, let sp else { return }
    for i in 0..<count where sp[i] == 0 {
      kept.append(order[i])
      if kept.count >= maximum { break }
      let (ix1, iy1, ix2, iy2, iarea) = (x1p[i], y1p[i], x2p[i], y2p[i], areap[i])
      // Branch-free: already suppressed boxes are recomputed but stay suppressed (an OR).
      func suppress(_ range: Range<Int>) {
        for j in range {
          let w = max(min(ix2, x2p[j]) - max(ix1, x1p[j]), 0)
          let h = max(min(iy2, y2p[j]) - max(iy1, y1p[j]), 0)
          let intersection = w * h
          let overlap = intersection / (iarea + areap[j] - intersection)
          sp[j] |= overlap > floatThreshold ? 1 : 0
        }
      }
      let rest = (i + 1)..<count
      if rest.count >= 65_536 { parallelFor(rest, minimumChunk: 16_384, suppress) } else { suppress(rest) }
    }
  }}}}}}
  return kept
}

/// NMS applied independently within each class (torchvision `batched_nms`): indices of the kept boxes, all
/// classes together, in decreasing score order (equal scores in increasing index order).
public func batchedNonMaximumSuppression(boxes: Tensor, scores: [Float], classes: [Int],
                                         iouThreshold: Double) -> [Int] {
  precondition(boxes.rank == 2 && boxes.shape[1] == 4 && boxes.shape[0] == scores.count && classes.count == scores.count,
               "batchedNonMaximumSuppression expects [k, 4] boxes, k scores and k classes, got \(boxes.shape), "
                 + "\(scores.count) and \(classes.count).")
  var members = [Int: [Int]]()
  for (index, label) in classes.enumerated() { members[label, default: []].append(index) }
  var kept = [Int]()
  for (_, indices) in members {
    let local = nonMaximumSuppression(boxes: gatherRows(boxes, indices), scores: indices.map { scores[$0] },
                                      iouThreshold: iouThreshold)
    kept += local.map { indices[$0] }
  }
  kept.sort()  // `torch.where(keep_mask)` order, then a stable sort by score
  return stableDescendingOrder(kept.map { scores[$0] }).map { kept[$0] }
}

/// Positions of `values` sorted by decreasing value; equal values keep their input order
/// (torch.sort(stable=True, descending=True)).
func stableDescendingOrder(_ values: [Float]) -> [Int] {
  values.indices.sorted { values[$0] > values[$1] || (values[$0] == values[$1] && $0 < $1) }
}
