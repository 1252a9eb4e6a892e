// The same liblinear fits on fewer columns: the dual of the L2-regularised squared-hinge SVM (liblinear `-s 1`)
// sees the data only through inner products xᵢ · xⱼ (the bias is liblinear's extra constant column, unchanged).
// For the n rows S of one fit, factor their Gram block K_S = X_S X_Sᵀ = L Lᵀ (Cholesky, float64) and solve the dual
// on the rows zᵢ of L instead of xᵢ: zᵢ · zⱼ = xᵢ · xⱼ, so it is the same dual problem, with the same coordinate
// order from `rand()` and the same α up to rounding, at n(n+1)/2 values per iteration (L is lower triangular, zeros
// are not stored) instead of nnz(X_S) ≈ n · d.
//
// The solve is liblinear 2.3.0's dual coordinate descent re-run on L's dense packed rows (GramDualSolver.swift,
// which says why liblinear's sparse node format does not fit them); liblinear itself still runs the plain path,
// the primal finish of capped fits and `fitThroughLiblinearRows`, the reference the dense solver is tested against.
//
// Back to feature space: the dual returns w_z = Σ αᵢ yᵢ zᵢ = Lᵀ (α ∘ y), so β = L⁻ᵀ w_z are the dual coefficients
// α ∘ y and w_x = X_Sᵀ β = Σ βᵢ xᵢ is the weight vector the plain fit returns (one triangular solve and one pass
// over the subset's rows per fit); the bias weight is the solve's last weight in both cases.
//
// Used only when it pays and is safe: n < `gramMaxRowFraction` · d, and the Cholesky succeeds with every pivot
// Lᵢᵢ² > `gramMinPivotRatio` · max Lⱼⱼ² (duplicate or nearly dependent rows make L⁻ᵀ amplify rounding); other
// fits run the plain path on the stored `feature_node` rows.
import CLiblinear
import COpenBLAS
import Foundation
import Synchronization
import Tensors

/// Serialises the OpenBLAS/LAPACK calls made from concurrent SVM workers (each call still uses every core): we take
/// concurrent entries into the pthread OpenBLAS 0.3.21 as unsafe. (It was added after one outlier mAP, +1.2 points
/// in 12 parallel runs on the agreement test's scene features, none in 18 with it. Session 3 found the likelier
/// cause of that outlier: fits stopping at liblinear's iteration cap, whose end point depends on the coordinate
/// order — see LiblinearProblem.swift. The lock stays: it costs nothing measurable, and the doubt is not cleared.)
let openBLASCallLock = NSLock()

/// The Gram path runs only for fits with rows < this fraction of the feature dimension.
public let gramMaxRowFraction = 0.8
/// Smallest accepted Cholesky pivot Lᵢᵢ², relative to the largest.
public let gramMinPivotRatio = 1e-10

/// K = X Xᵀ of a problem's normalised rows (float64, as liblinear's own products), [rows, rows] row-major,
/// both triangles filled. Every fit's K_S is a sub-block of it: CV folds, final fits and low-shot subsets.
public final class SVMGramMatrix: @unchecked Sendable {
  // @unchecked: written once in init, read-only afterwards; a raw pointer, which the compiler cannot check.
  public let rows: Int
  let values: UnsafeMutablePointer<Double>  // [rows, rows]

  /// One `cblas_dsyrk` over the dense float64 copy of the problem's rows (freed before returning).
  public init(problem: LiblinearProblem) {
    let (n, d) = (problem.rows, problem.dimension)
    rows = n
    values = .allocate(capacity: max(n * n, 1))
    guard n > 0, d > 0 else { return }
    let dense = UnsafeMutablePointer<Double>.allocate(capacity: n * d)  // [n, d]
    defer { dense.deallocate() }
    let values = self.values
    parallelFor(0..<n, minimumChunk: 64) { range in
      for row in range {
        let target = dense + row * d
        target.initialize(repeating: 0, count: d)  // sparse rows: the absent columns are zeros
        problem.withRow(row) { first in
          var node = first
          while node.pointee.index != -1 {
            let column = Int(node.pointee.index) - 1
            if column < d { target[column] = node.pointee.value }
            node += 1
          }
        }
      }
    }
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, Int32(n), Int32(d), 1, dense, Int32(d), 0, values,
                Int32(n))
    // Mirror the upper triangle into the lower one.
    parallelFor(0..<n, minimumChunk: 64) { range in
      for i in range {
        for j in 0..<i { values[i * n + j] = values[j * n + i] }
      }
    }
  }

  deinit { values.deallocate() }

  public subscript(i: Int, j: Int) -> Double { values[i * rows + j] }
}

/// The rows `subset` of a problem, factored: K_S = L Lᵀ, L's rows stored packed (row a: its a + 1 values, contiguous)
/// for the dense dual solver (GramDualSolver.swift). Shared by every fit on the same rows (all costs, all classes of a
/// final fit); read-only after init, so fits may run concurrently.
public final class GramFactor: @unchecked Sendable {
  // @unchecked: written once in init, only read afterwards. Raw pointers are never Sendable, so the compiler cannot
  // check this; nothing mutable needs a lock.
  public let subset: [Int]
  let problem: LiblinearProblem
  let packed: UnsafeMutablePointer<Double>  // [n(n+1)/2] L's rows, row-major lower packed
  let squaredNorms: UnsafeMutablePointer<Double>  // [n] Σ_b L[a, b]² in order from b = 0 (liblinear's nrm2_sq)

  /// nil when the rows do not pay (n ≥ `gramMaxRowFraction` · d) or the factorisation fails the pivot test.
  public init?(problem: LiblinearProblem, gram: SVMGramMatrix, rows subset: [Int]) {
    precondition(gram.rows == problem.rows, "The Gram matrix has \(gram.rows) rows, the problem \(problem.rows).")
    let n = subset.count
    guard n > 0, Double(n) < gramMaxRowFraction * Double(problem.dimension) else { return nil }
    let factor = UnsafeMutablePointer<Double>.allocate(capacity: n * n)  // [n, n] row-major, lower triangle = L
    defer { factor.deallocate() }
    // Row-major lower triangle of K_S = column-major upper triangle, which dpotrf("U") factors as Uᵀ U; read
    // back row-major, U is L = Uᵀ (lower) with K_S = L Lᵀ. The other triangle is never read.
    for a in 0..<n {
      precondition(subset[a] >= 0 && subset[a] < gram.rows, "Row \(subset[a]) is outside the \(gram.rows) rows.")
      let source = gram.values + subset[a] * gram.rows
      let target = factor + a * n
      for b in 0...a { target[b] = source[subset[b]] }
    }
    var info: Int32 = 0
    var order = Int32(n)
    var leading = Int32(n)
    openBLASCallLock.withLock { dpotrf_("U", &order, factor, &leading, &info) }
    var smallest = Double.infinity
    var largest = 0.0
    for i in 0..<n {
      let pivot = factor[i * n + i] * factor[i * n + i]
      smallest = min(smallest, pivot)
      largest = max(largest, pivot)
    }
    guard info == 0, smallest.isFinite, smallest > gramMinPivotRatio * largest else { return nil }
    self.subset = subset
    self.problem = problem
    let packed = UnsafeMutablePointer<Double>.allocate(capacity: n * (n + 1) / 2)
    let squaredNorms = UnsafeMutablePointer<Double>.allocate(capacity: n)
    parallelFor(0..<n, minimumChunk: 64) { range in
      for a in range {
        let source = factor + a * n
        let target = packed + packedRowOffset(a)
        target.update(from: source, count: a + 1)
        squaredNorms[a] = sequentialDot(source, source, count: a + 1)
      }
    }
    self.packed = packed
    self.squaredNorms = squaredNorms
  }

  deinit {
    packed.deallocate()
    squaredNorms.deallocate()
  }

  public var rows: Int { subset.count }

  /// The fit `problem.fit(rows: subset, labels:cost:settings:)` would return, through the factor: liblinear's dual
  /// solve run by `solveGramDual` on L's packed rows; a solve that reaches the dual's cap is finished by liblinear's
  /// primal solver on L's rows as `feature_node`s when `settings.finishCappedFits` (as `trainLiblinear` does).
  public func fit(labels: [Double], cost: Double, settings: LiblinearSettings) throws -> LinearSVMModel {
    try fit(labels: labels, cost: cost, settings: settings, dotProduct: .blocked)
  }

  /// The same with the dual's dot products summed in `dotProduct` order (`.liblinear`: liblinear's fit bit for bit).
  public func fit(labels: [Double], cost: Double, settings: LiblinearSettings, dotProduct: DotProductOrder) throws
    -> LinearSVMModel
  {
    featureModels([try fitDual(labels: labels, cost: cost, settings: settings, dotProduct: dotProduct)])[0]
  }

  /// The fit in dual form (β = α ∘ y on the factor's rows, and the bias weight): what `fit` returns before the
  /// pass over the feature rows, enough to score trainval rows through the Gram matrix (`decisions`).
  public func fitDual(labels: [Double], cost: Double, settings: LiblinearSettings,
                      dotProduct: DotProductOrder = .blocked) throws -> GramDualModel {
    try checkFit(labels: labels, settings: settings)
    let solution = solveGramDual(
      rows: packed, squaredNorms: squaredNorms, labels: labels, bias: problem.bias,
      positiveCost: cost * settings.positiveWeight, negativeCost: cost * settings.negativeWeight,
      epsilon: settings.epsilon, reseeded: settings.reseedsRandomOrder, dotProduct: dotProduct)
    var w = solution.weights
    var outcome = LiblinearOutcome.converged
    if solution.reachedCap {
      outcome = .stoppedAtCap
      if settings.finishCappedFits {
        let primal = withLiblinearRows { rows in
          finishWithLiblinearPrimal(rows: rows, columns: w.count, labels: labels, cost: cost, start: w,
                                    settings: settings)
        }
        w = primal.weights
        outcome = primal.capped ? .stoppedAtCap : .finishedByPrimal
      }
    }
    SolveReport.current = SolveReport(reachedCap: solution.reachedCap, iterations: solution.iterations)
    return dualModel(liblinearWeights: w, outcome: outcome)
  }

  /// The same fit through liblinear's own `train` on L's rows as `feature_node`s (the Gram path before the dense
  /// solver): the reference the dense solver is tested and benchmarked against.
  public func fitThroughLiblinearRows(labels: [Double], cost: Double, settings: LiblinearSettings) throws
    -> LinearSVMModel
  {
    try checkFit(labels: labels, settings: settings)
    let n = subset.count
    let (w, outcome) = withLiblinearRows { rows in
      trainLiblinear(rows: rows, features: n, labels: labels, cost: cost, settings: settings)
    }
    return featureModels([dualModel(liblinearWeights: w, outcome: outcome)])[0]
  }

  private func checkFit(labels: [Double], settings: LiblinearSettings) throws {
    precondition(labels.count == subset.count,
                 "fit needs one label per row: \(subset.count) rows, \(labels.count) labels.")
    precondition(settings.bias == problem.bias,
                 "The problem was built with bias \(problem.bias), the fit asks for \(settings.bias).")
    guard labels.contains(1), labels.contains(-1) else {
      throw SVMError.singleClassFit(positives: labels.filter { $0 == 1 }.count, rows: labels.count)
    }
  }

  /// L's rows as liblinear `feature_node` rows (columns 1…n, zeros left out, the bias node at n + 1), built for the
  /// duration of `body` (n(n+1)/2 nodes of 16 bytes: only capped fits and the reference path need them).
  func withLiblinearRows<R>(_ body: (UnsafeMutablePointer<UnsafeMutablePointer<feature_node>?>) -> R) -> R {
    let n = subset.count
    let withBias = problem.bias >= 0
    let perRowExtra = (withBias ? 1 : 0) + 1  // bias node + terminator
    let nodes = UnsafeMutablePointer<feature_node>.allocate(capacity: n * (n + 1) / 2 + n * perRowExtra)
    let pointers = UnsafeMutablePointer<UnsafeMutablePointer<feature_node>?>.allocate(capacity: max(n, 1))
    defer {
      nodes.deallocate()
      pointers.deallocate()
    }
    var node = nodes
    for a in 0..<n {
      pointers[a] = node
      let row = packed + packedRowOffset(a)
      for b in 0...a where row[b] != 0 {
        node.pointee = feature_node(index: Int32(b + 1), value: row[b])
        node += 1
      }
      if withBias {
        node.pointee = feature_node(index: Int32(n + 1), value: problem.bias)
        node += 1
      }
      node.pointee = feature_node(index: -1, value: 0)
      node += 1
    }
    return body(pointers)
  }

  /// Dual coefficients from liblinear's weights on L's columns, w_z = Lᵀ (α ∘ y) [n (+ 1 bias column)]:
  /// β = L⁻ᵀ w_z (one packed triangular solve), bias weight unchanged.
  private func dualModel(liblinearWeights w: [Double], outcome: LiblinearOutcome) -> GramDualModel {
    let n = subset.count
    var beta = Array(w[0..<n])
    beta.withUnsafeMutableBufferPointer { b in
      openBLASCallLock.withLock {
        cblas_dtpsv(CblasRowMajor, CblasLower, CblasTrans, CblasNonUnit, Int32(n), packed, b.baseAddress!, 1)
      }
    }
    return GramDualModel(coefficients: beta, bias: problem.bias >= 0 ? w[n] * problem.bias : 0, outcome: outcome)
  }
}

/// Counts of fits per path (Gram factor or plain rows) and of fits that reached liblinear's dual iteration cap, for
/// progress lines and provenance.
public struct SVMFitPaths: Sendable, Equatable {
  public var gram = 0
  public var plain = 0
  /// Fits finished by the primal solver after the dual's 1000-iteration cap.
  public var finishedByPrimal = 0
  /// Fits that stopped at an iteration cap (finishing off, or the primal capped too).
  public var stoppedAtCap = 0
  public init(gram: Int = 0, plain: Int = 0, finishedByPrimal: Int = 0, stoppedAtCap: Int = 0) {
    self.gram = gram
    self.plain = plain
    self.finishedByPrimal = finishedByPrimal
    self.stoppedAtCap = stoppedAtCap
  }
  public var description: String {
    "fits: \(gram) Gram-factored, \(plain) plain; \(finishedByPrimal) reached the dual's 1000-iteration cap and were "
      + "finished by the primal solver" + (stoppedAtCap > 0 ? ", \(stoppedAtCap) stopped at an iteration cap" : "")
  }
}

final class FitPathCounter: Sendable {
  private let paths = Mutex(SVMFitPaths())
  func add(gram: Bool, outcome: LiblinearOutcome) {
    paths.withLock { paths in
      if gram { paths.gram += 1 } else { paths.plain += 1 }
      switch outcome {
      case .converged: break
      case .finishedByPrimal: paths.finishedByPrimal += 1
      case .stoppedAtCap: paths.stoppedAtCap += 1
      }
    }
  }
  var value: SVMFitPaths { paths.withLock { $0 } }
}

extension SVMLayer {
  /// The factor of `rows` when the Gram path is on and pays for them; nil → plain fits.
  public func gramFactor(rows: [Int]) -> GramFactor? {
    guard let gram else { return nil }
    return GramFactor(problem: problem, gram: gram, rows: rows)
  }

  /// Fits run so far on this layer, per path.
  public var fitPaths: SVMFitPaths { pathCounter.value }
}
