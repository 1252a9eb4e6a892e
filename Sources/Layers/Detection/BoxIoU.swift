// Pairwise intersection-over-union of two box sets (x1, y1, x2, y2; areas without +1).
// Reference: detectron2 structures/boxes.py `pairwise_iou` (0 where boxes do not intersect, so two empty boxes
// give 0, not NaN) — torchvision `box_iou` agrees wherever the union is positive.
import Tensors

/// IoU `[n, m]` of boxes `a` `[n, 4]` against `b` `[m, 4]`, in Float32 like the references.
public func pairwiseIoU(_ a: Tensor, _ b: Tensor) -> Tensor {
  precondition(a.rank == 2 && a.shape[1] == 4 && b.rank == 2 && b.shape[1] == 4,
               "pairwiseIoU expects [n, 4] and [m, 4] boxes, got \(a.shape) and \(b.shape).")
  let (n, m) = (a.shape[0], b.shape[0])
  let bs = b.scalars
  let areaB: [Float] = (0..<m).map { j -> Float in
    let width: Float = bs[4 * j + 2] - bs[4 * j]
    let height: Float = bs[4 * j + 3] - bs[4 * j + 1]
    return width * height
  }
  return Tensor(uninitializedShape: [n, m]) { out in
    a.scalars.withUnsafeBufferPointer { ap in
      b.scalars.withUnsafeBufferPointer { bp in
        areaB.withUnsafeBufferPointer { areaBp in
          let op = out.baseAddress!
          parallelFor(0..<n, minimumChunk: max(1, 4096 / max(m, 1))) { rows in
            for i in rows {
              let (ax1, ay1, ax2, ay2) = (ap[4 * i], ap[4 * i + 1], ap[4 * i + 2], ap[4 * i + 3])
              let areaA = (ax2 - ax1) * (ay2 - ay1)
              for j in 0..<m {
                let w = max(min(ax2, bp[4 * j + 2]) - max(ax1, bp[4 * j]), 0)
                let h = max(min(ay2, bp[4 * j + 3]) - max(ay1, bp[4 * j + 1]), 0)
                let intersection = w * h
                op[i * m + j] = intersection > 0 ? intersection / (areaA + areaBp[j] - intersection) : 0
              }
            }
          }
        }
      }
    }
  }
}
