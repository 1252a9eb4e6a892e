// Losses, each returning the scalar loss and ∂loss/∂input: cross-entropy, SimSiam's negative cosine
// similarity, smooth L1 and binary cross-entropy with logits (torch.nn.functional semantics).
import Foundation
import Tensors

/// How an elementwise loss is reduced to a scalar (PyTorch's `reduction=`).
public enum Reduction: Sendable {
  case mean, sum
}

/// Sums `rowLoss(rows)` over contiguous row groups in parallel; each group's partial sum is its own.
private func sumOverRowGroups(rows: Int, elementsPerRow: Int, _ rowLoss: (Range<Int>) -> Double) -> Double {
  let groups = RowGroups.count(rows: rows, elementsPerRow: elementsPerRow)
  var partials = [Double](repeating: 0, count: groups)
  partials.withUnsafeMutableBufferPointer { buffer in
    let pp = buffer.baseAddress!
    RowGroups.forEach(rows: rows, groups: groups) { group, range in pp[group] = rowLoss(range) }
  }
  return partials.reduce(0, +)
}

// MARK: - Cross-entropy

/// Softmax cross-entropy over the LAST axis, averaged over positions whose label is not `ignoreIndex`
/// (F.cross_entropy, reduction='mean').
///
/// `logits` is `[n, classes]` or NHWC `[n, h, w, classes]`; `labels` has one entry per position (row-major).
/// Ignored positions get zero gradient. If every position is ignored the loss is NaN (0/0), as in PyTorch,
/// and the gradient is zero.
public func crossEntropy(logits: Tensor, labels: [Int], ignoreIndex: Int = -100) -> (loss: Float, gradient: Tensor) {
  precondition(logits.rank >= 2, "crossEntropy expects logits with a class axis last, got shape \(logits.shape).")
  let classes = logits.shape[logits.rank - 1]
  let rows = logits.count / max(classes, 1)
  precondition(labels.count == rows,
               "crossEntropy: logits \(logits.shape) have \(rows) positions but \(labels.count) labels were given.")
  var counted = 0
  for label in labels where label != ignoreIndex {
    precondition(label >= 0 && label < classes, "crossEntropy: label \(label) is outside 0..<\(classes).")
    counted += 1
  }
  let weight = 1 / Double(counted)  // inf when everything is ignored; only multiplies counted rows
  var total = 0.0
  let gradient = Tensor(uninitializedShape: logits.shape) { out in
    logits.scalars.withUnsafeBufferPointer { logitBuffer in
      labels.withUnsafeBufferPointer { labelBuffer in
        let xp = logitBuffer.baseAddress!, gp = out.baseAddress!, lp = labelBuffer.baseAddress!
        total = sumOverRowGroups(rows: rows, elementsPerRow: classes) { range in
          var partial = 0.0
          for row in range {
            let xr = xp + row * classes, gr = gp + row * classes
            let label = lp[row]
            if label == ignoreIndex {
              gr.update(repeating: 0, count: classes)
              continue
            }
            partial += softmaxCrossEntropyRow(xr, gradient: gr, classes: classes, label: label, scale: weight)
          }
          return partial
        }
      }
    }
  }
  return (Float(total * weight), gradient)
}

/// One position of softmax cross-entropy: writes ∂/∂x_j = scale · (softmax_j − [j = label]) into `gradient` and
/// returns the unscaled loss −log softmax_label (log-sum-exp with the row max subtracted so exp never overflows,
/// accumulated in Double). Shared by `crossEntropy` and `segmentationCrossEntropy`, which differ only in `scale`.
@inline(__always)
func softmaxCrossEntropyRow(_ logits: UnsafePointer<Float>, gradient: UnsafeMutablePointer<Float>, classes: Int,
                            label: Int, scale: Double) -> Double {
  var rowMax = -Float.infinity
  for j in 0..<classes { rowMax = max(rowMax, logits[j]) }
  var expSum = 0.0
  for j in 0..<classes {
    let e = Foundation.exp(logits[j] - rowMax)
    gradient[j] = e
    expSum += Double(e)
  }
  let normaliser = Float(scale / expSum)
  for j in 0..<classes { gradient[j] *= normaliser }
  gradient[label] -= Float(scale)
  return Foundation.log(expSum) + Double(rowMax) - Double(logits[label])
}

// MARK: - Negative cosine similarity (SimSiam)

/// L = −mean_i(p̂_i · ẑ_i) with x̂ = x / max(‖x‖₂, 1e-12) (F.normalize on dim 1), the SimSiam loss.
///
/// `p` and `z` are `[n, d]`. The target `z` is a stop-gradient constant: only ∂L/∂p is returned.
public func negativeCosineSimilarity(_ p: Tensor, target z: Tensor) -> (loss: Float, gradient: Tensor) {
  precondition(p.rank == 2 && p.shape == z.shape,
               "negativeCosineSimilarity expects two [n, d] tensors of the same shape, got \(p.shape) and \(z.shape).")
  let (n, d) = (p.shape[0], p.shape[1])
  let epsilon = 1e-12
  var total = 0.0
  let gradient = Tensor(uninitializedShape: p.shape) { out in
    p.scalars.withUnsafeBufferPointer { pBuffer in
      z.scalars.withUnsafeBufferPointer { zBuffer in
        let pp = pBuffer.baseAddress!, zp = zBuffer.baseAddress!, gp = out.baseAddress!
        total = sumOverRowGroups(rows: n, elementsPerRow: d) { range in
          var partial = 0.0
          for row in range {
            let pr = pp + row * d, zr = zp + row * d, gr = gp + row * d
            var pp2 = 0.0, zz = 0.0, pz = 0.0
            for j in 0..<d {
              let (pj, zj) = (Double(pr[j]), Double(zr[j]))
              pp2 += pj * pj
              zz += zj * zj
              pz += pj * zj
            }
            let pNorm = pp2.squareRoot(), zNorm = max(zz.squareRoot(), epsilon)
            let clampedPNorm = max(pNorm, epsilon)
            let cosine = pz / (clampedPNorm * zNorm)
            partial += cosine
            // ∂(p̂·ẑ)/∂p = (ẑ − (p̂·ẑ)·p̂)/‖p‖; when the norm is clamped, the clamp has no slope
            // and the gradient is ẑ/ε.
            let scaleZ = Float(-1 / (Double(n) * zNorm * clampedPNorm))
            let scaleP = pNorm > epsilon ? Float(cosine / (Double(n) * pNorm * pNorm)) : 0
            for j in 0..<d { gr[j] = scaleZ * zr[j] + scaleP * pr[j] }
          }
          return partial
        }
      }
    }
  }
  return (Float(-total / Double(n)), gradient)
}

// MARK: - Smooth L1

/// Huber-style loss (F.smooth_l1_loss): 0.5·d²/β where |d| < β, else |d| − 0.5·β, with d = x − target.
///
/// β = 0 is the plain L1 loss (whose gradient at d = 0 is 0, as `sign(0)` in PyTorch). Gradient w.r.t. `x` only.
public func smoothL1(_ x: Tensor, target: Tensor, beta: Float = 1.0,
                     reduction: Reduction = .mean) -> (loss: Float, gradient: Tensor) {
  precondition(x.shape == target.shape, "smoothL1 of shapes \(x.shape) and target \(target.shape).")
  precondition(beta >= 0, "smoothL1 needs beta ≥ 0, got \(beta).")
  let count = x.count
  let weight: Float = reduction == .mean ? 1 / Float(count) : 1
  var total = 0.0
  let gradient = Tensor(uninitializedShape: x.shape) { out in
    x.scalars.withUnsafeBufferPointer { xBuffer in
      target.scalars.withUnsafeBufferPointer { tBuffer in
        let xp = xBuffer.baseAddress!, tp = tBuffer.baseAddress!, gp = out.baseAddress!
        total = sumOverRowGroups(rows: count, elementsPerRow: 1) { range in
          var partial = 0.0
          for i in range {
            let d = xp[i] - tp[i]
            if abs(d) < beta {
              partial += Double(0.5 * d * d / beta)
              gp[i] = weight * d / beta
            } else {
              partial += Double(abs(d) - 0.5 * beta)
              gp[i] = d > 0 ? weight : (d < 0 ? -weight : 0)
            }
          }
          return partial
        }
      }
    }
  }
  return (reduction == .mean ? Float(total / Double(count)) : Float(total), gradient)
}

// MARK: - Binary cross-entropy with logits

/// Sigmoid + binary cross-entropy in the stable form max(x, 0) − x·t + log(1 + e^(−|x|))
/// (F.binary_cross_entropy_with_logits, without `pos_weight`).
///
/// `targets` and the optional per-element `weights` have the shape of `logits` (no broadcasting).
/// The gradient, w·(σ(x) − t), is w.r.t. the logits only.
public func binaryCrossEntropyWithLogits(_ logits: Tensor, targets: Tensor, weights: Tensor? = nil,
                                         reduction: Reduction = .mean) -> (loss: Float, gradient: Tensor) {
  precondition(logits.shape == targets.shape,
               "binaryCrossEntropyWithLogits: logits \(logits.shape) and targets \(targets.shape) differ in shape.")
  if let weights {
    precondition(weights.shape == logits.shape,
                 "binaryCrossEntropyWithLogits: weights \(weights.shape) must match logits \(logits.shape).")
  }
  let count = logits.count
  let scale: Float = reduction == .mean ? 1 / Float(count) : 1
  let weightScalars = weights?.scalars ?? []  // empty: every weight is 1
  let hasWeights = weights != nil
  var total = 0.0
  let gradient = Tensor(uninitializedShape: logits.shape) { out in
    logits.scalars.withUnsafeBufferPointer { xBuffer in
      targets.scalars.withUnsafeBufferPointer { tBuffer in
        weightScalars.withUnsafeBufferPointer { wBuffer in
          let xp = xBuffer.baseAddress!, tp = tBuffer.baseAddress!, gp = out.baseAddress!
          let wp = wBuffer.baseAddress
          total = sumOverRowGroups(rows: count, elementsPerRow: 1) { range in
            var partial = 0.0
            for i in range {
              let (x, t) = (xp[i], tp[i])
              let w: Float = hasWeights ? wp![i] : 1
              let e = Foundation.exp(-abs(x))  // in (0, 1]: never overflows
              partial += Double(w) * (Double(max(x, 0) - x * t) + Foundation.log1p(Double(e)))
              let sigmoid = x >= 0 ? 1 / (1 + e) : e / (1 + e)
              gp[i] = scale * w * (sigmoid - t)
            }
            return partial
          }
        }
      }
    }
  }
  return (reduction == .mean ? Float(total / Double(count)) : Float(total), gradient)
}
