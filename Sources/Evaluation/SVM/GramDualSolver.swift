// liblinear 2.3.0's dual coordinate descent for `-s 1` (the L2-regularised squared-hinge SVM dual,
// `solve_l2r_l1l2_svc` with L2R_L2LOSS_SVC_DUAL in linear.cpp; Hsieh et al., ICML 2008, Algorithm 3), run on the
// dense packed rows of a Gram factor L (GramSVM.swift):
//
//   min_α ½ αᵀ(Q + D)α − eᵀα,  α ≥ 0,  Qᵢⱼ = yᵢ yⱼ zᵢ·zⱼ,  Dᵢᵢ = 1/(2 C₊) for yᵢ = +1, 1/(2 C₋) for yᵢ = −1,
//
// with zᵢ = (row i of L, bias) — liblinear's extra constant column of value `bias` is part of every zᵢ.
//
// Why not liblinear itself: since the Gram path a fit's rows are the rows of L, dense and lower triangular (row i
// has i + 1 values). liblinear takes them only as sparse `feature_node`s (int index + double, 16 bytes per value),
// reached through an index per value: a sweep reads twice the bytes the values need and cannot vectorise its dot
// product or its axpy. A sweep is memory-bound (≈ 45 MB of L per sweep for a CV fold of 3,340 rows, more than the
// 32 MB L3 here), so the node format is the bottleneck. Here row i is i + 1 contiguous doubles (8 bytes per value,
// row-major packed), the dot product runs in SIMD blocks and the axpy is a plain vectorised loop. The plain
// (feature-space) path stays on liblinear; so does the primal finish of capped fits.
//
// Everything else follows 2.3.0 step for step, so that a fit takes liblinear's path:
// - `train` → `group_classes`: with labels ±1, label[0] is +1 (it swaps the two when −1 comes first), so the rows
//   are reordered positives first, then negatives, each in input order; Cp = C · positive weight,
//   Cn = C · negative weight; the returned w scores class +1 (no sign flip).
// - QDᵢ = Dᵢᵢ + ‖zᵢ‖² (nrm2_sq over the row's values in order, then bias²); α = 0, w = 0.
// - Each outer iteration shuffles index[0..<active] with the C library's `rand()`:
//   `j = i + rand() % (active − i)`, the same draws in the same order (under `LiblinearRandomOrder`, as liblinear's
//   own solves, so `srand(1)` gives the order a fresh `train` process has).
// - Shrinking against PGmax_old / PGmin_old, the update only where |PG| > 1e-12, the stopping rule
//   PGmax_new − PGmin_new ≤ eps (then a final pass over all rows with the shrinking bounds reset, as liblinear does),
//   and the hard-coded `max_iter = 1000`.
// The only difference is the rounding of the dot product: `DotProductOrder.blocked` sums in eight SIMD lanes;
// `.liblinear` sums one term after the other, bias last, as sparse_operator::dot does — with it a solve is bit for
// bit liblinear's on the same rows (tested), which pins down every step above.
import Foundation

/// liblinear 2.3.0's dual iteration cap (`max_iter = 1000` in solve_l2r_l1l2_svc; the library has no setting).
let liblinearDualIterationCap = 1000

/// How the dual solver sums zᵢ · w.
public enum DotProductOrder: Sendable {
  /// Term after term, the bias term last: liblinear's `sparse_operator::dot`, bit for bit.
  case liblinear
  /// Eight SIMD lanes over the row, lane sums added, then the bias term: the fast path. Agrees with `.liblinear` to
  /// rounding (≈ 1e-16 relative per product).
  case blocked
}

/// What one dual solve returns: liblinear's raw weights (scoring class +1), [rows (+ 1 for the bias column)], the
/// dual variables in input row order, the outer iterations and whether the cap stopped the solve.
struct GramDualSolution {
  var weights: [Double]
  var alpha: [Double]
  var iterations: Int
  var reachedCap: Bool
}

/// Offset of row `row` in row-major lower packed storage: row a starts at a(a + 1)/2 and holds a + 1 values (BLAS
/// `CblasRowMajor, CblasLower` packed layout, as `cblas_dtpsv` reads it).
@inline(__always)
func packedRowOffset(_ row: Int) -> Int { row * (row + 1) / 2 }

/// liblinear 2.3.0's `solve_l2r_l1l2_svc` (L2R_L2LOSS_SVC_DUAL) on the packed rows zᵢ of a lower-triangular matrix.
/// - rows: [n(n+1)/2] packed rows; row a = zₐ without the bias value.
/// - squaredNorms: [n] Σ zₐ[b]² summed in order from b = 0 (liblinear's nrm2_sq without the bias term).
/// - labels: ±1 per row; both must occur (the caller checks).
/// - bias: the constant column's value, or < 0 for none.
/// Draws from the C library's `rand()` inside `LiblinearRandomOrder` (`reseeded`: after `srand(1)`, alone).
func solveGramDual(rows: UnsafePointer<Double>, squaredNorms: UnsafePointer<Double>, labels: [Double],
                   bias: Double, positiveCost: Double, negativeCost: Double, epsilon: Double, reseeded: Bool,
                   dotProduct: DotProductOrder = .blocked) -> GramDualSolution {
  let n = labels.count
  precondition(labels.allSatisfy { $0 == 1 || $0 == -1 }, "The dual solver takes labels ±1 only.")
  let hasBias = bias >= 0
  let biasColumn = n  // w's last entry, present when hasBias
  // group_classes: positives first, then negatives, each in input order.
  let order = labels.indices.filter { labels[$0] > 0 } + labels.indices.filter { labels[$0] <= 0 }
  let positives = labels.lazy.filter { $0 > 0 }.count
  precondition(positives > 0 && positives < n,
               "The dual solver needs both classes: \(positives) positive of \(n) rows.")
  // diag[GETI(i)] and upper_bound[GETI(i)] of the L2-loss case: D = 0.5 / C, no upper bound.
  let diagonal = (positive: 0.5 / positiveCost, negative: 0.5 / negativeCost)
  let upperBound = Double.infinity

  var w = [Double](repeating: 0, count: n + (hasBias ? 1 : 0))
  var alpha = [Double](repeating: 0, count: n)  // in liblinear's internal (grouped) order
  var qd = [Double](repeating: 0, count: n)
  var index = [Int](0..<n)
  for i in 0..<n {
    let row = order[i]
    var norm = squaredNorms[row]
    if hasBias { norm += bias * bias }
    qd[i] = (i < positives ? diagonal.positive : diagonal.negative)
    qd[i] += norm
  }

  var iterations = 0
  w.withUnsafeMutableBufferPointer { wBuffer in
    alpha.withUnsafeMutableBufferPointer { alpha in
      qd.withUnsafeBufferPointer { qd in
        index.withUnsafeMutableBufferPointer { index in
          order.withUnsafeBufferPointer { order in
            let w = wBuffer.baseAddress!
            LiblinearRandomOrder.withAccess(reseeded: reseeded) {
              var activeSize = n
              var pgMaxOld = Double.infinity
              var pgMinOld = -Double.infinity
              while iterations < liblinearDualIterationCap {
                var pgMaxNew = -Double.infinity
                var pgMinNew = Double.infinity
                for i in 0..<activeSize {
                  let j = i + Int(rand()) % (activeSize - i)
                  index.swapAt(i, j)
                }
                var s = 0
                while s < activeSize {
                  let i = index[s]
                  let yi: Double = i < positives ? 1 : -1
                  let row = order[i]
                  let z = rows + packedRowOffset(row)
                  let length = row + 1
                  var product = dotProduct == .blocked
                    ? blockedDot(UnsafePointer(w), z, count: length) : sequentialDot(UnsafePointer(w), z, count: length)
                  if hasBias { product += w[biasColumn] * bias }
                  var gradient = yi * product - 1
                  gradient += alpha[i] * (i < positives ? diagonal.positive : diagonal.negative)

                  var projected = 0.0
                  if alpha[i] == 0 {
                    if gradient > pgMaxOld {
                      activeSize -= 1
                      index.swapAt(s, activeSize)
                      continue  // s stays: the swapped-in row is next
                    } else if gradient < 0 {
                      projected = gradient
                    }
                  } else if alpha[i] == upperBound {
                    if gradient < pgMinOld {
                      activeSize -= 1
                      index.swapAt(s, activeSize)
                      continue
                    } else if gradient > 0 {
                      projected = gradient
                    }
                  } else {
                    projected = gradient
                  }
                  // std::max / std::min as liblinear calls them: (a < b) ? b : a and (b < a) ? b : a.
                  pgMaxNew = pgMaxNew < projected ? projected : pgMaxNew
                  pgMinNew = projected < pgMinNew ? projected : pgMinNew

                  if abs(projected) > 1.0e-12 {
                    let old = alpha[i]
                    let step = old - gradient / qd[i]
                    let clipped = step < 0 ? 0 : step
                    alpha[i] = upperBound < clipped ? upperBound : clipped
                    let d = (alpha[i] - old) * yi
                    axpy(d, z, into: w, count: length)
                    if hasBias { w[biasColumn] += d * bias }
                  }
                  s += 1
                }

                iterations += 1
                if pgMaxNew - pgMinNew <= epsilon {
                  if activeSize == n { break }
                  activeSize = n
                  pgMaxOld = .infinity
                  pgMinOld = -.infinity
                  continue
                }
                pgMaxOld = pgMaxNew
                pgMinOld = pgMinNew
                if pgMaxOld <= 0 { pgMaxOld = .infinity }
                if pgMinOld >= 0 { pgMinOld = -.infinity }
              }
            }
          }
        }
      }
    }
  }
  var alphaByRow = [Double](repeating: 0, count: n)
  for i in 0..<n { alphaByRow[order[i]] = alpha[i] }
  return GramDualSolution(weights: w, alpha: alphaByRow, iterations: iterations,
                          reachedCap: iterations >= liblinearDualIterationCap)
}

/// Σ a[k] b[k] for k in 0..<count, term after term from 0 (liblinear's order).
@inline(__always)
func sequentialDot(_ a: UnsafePointer<Double>, _ b: UnsafePointer<Double>, count: Int) -> Double {
  var total = 0.0
  for k in 0..<count { total += a[k] * b[k] }
  return total
}

/// Σ a[k] b[k] for k in 0..<count in two SIMD4 accumulators (lanes k mod 8), their lane sum, then the tail in order.
@inline(__always)
func blockedDot(_ a: UnsafePointer<Double>, _ b: UnsafePointer<Double>, count: Int) -> Double {
  let (rawA, rawB) = (UnsafeRawPointer(a), UnsafeRawPointer(b))
  let stride = MemoryLayout<Double>.stride
  var low = SIMD4<Double>()
  var high = SIMD4<Double>()
  var k = 0
  while k + 8 <= count {
    low += rawA.loadUnaligned(fromByteOffset: k * stride, as: SIMD4<Double>.self)
      * rawB.loadUnaligned(fromByteOffset: k * stride, as: SIMD4<Double>.self)
    high += rawA.loadUnaligned(fromByteOffset: (k + 4) * stride, as: SIMD4<Double>.self)
      * rawB.loadUnaligned(fromByteOffset: (k + 4) * stride, as: SIMD4<Double>.self)
    k += 8
  }
  let lanes = low + high
  var total = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3])
  while k < count {
    total += a[k] * b[k]
    k += 1
  }
  return total
}

/// y[k] += a · x[k] for k in 0..<count (elementwise: the same rounding as liblinear's sparse axpy, in any order).
@inline(__always)
func axpy(_ a: Double, _ x: UnsafePointer<Double>, into y: UnsafeMutablePointer<Double>, count: Int) {
  for k in 0..<count { y[k] += a * x[k] }
}
