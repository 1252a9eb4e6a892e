// What a Gram-path fit gives back, and the two ways out of it:
// - `featureModels`: w_x = Σₐ βₐ x_{subset[a]} over the stored feature rows, for every model fitted on one factor
//   in one pass over those rows (each row's nodes read once for all models instead of once per model — the rows are
//   ≈ 0.5 · n · d nodes of 16 bytes, 250 MB for a CV fold's 3,340 × 9,216; a low-shot class's 19 costs share
//   one pass). Each weight sums the same terms in the same order as a model on its own, so the result is the same
//   bits (up to the sign of a zero weight).
// - `decisions`: scores of trainval rows without w_x: w_x · x_j = Σₐ βₐ xₐ · x_j = Σₐ βₐ K[subset[a], j], read from
//   the layer's Gram matrix (dense float64) — how the CV folds score their held-out rows. It differs from w_x · x_j
//   only by rounding (≈ 1e-16 relative per term).
// `SVMLayer.fitShared` / `fitSharedScoring` run the fits of one set of rows through one factor when it pays, and
// through liblinear on the plain rows otherwise.
import Foundation
import Tensors

/// A Gram-path fit in dual form: coefficients β = α ∘ y on the factor's rows (in `subset` order) and the bias
/// weight (bias column weight × bias value), the same as `LinearSVMModel.bias`.
public struct GramDualModel: Sendable {
  public var coefficients: [Double]
  public var bias: Double
  public var outcome: LiblinearOutcome
}

extension GramFactor {
  /// The feature-space models of `models` (all fitted on this factor), in one pass over the subset's feature rows.
  public func featureModels(_ models: [GramDualModel]) -> [LinearSVMModel] {
    let n = subset.count
    let count = models.count
    guard count > 0 else { return [] }
    for model in models {
      precondition(model.coefficients.count == n, "A dual model has \(model.coefficients.count) coefficients for a "
                     + "factor of \(n) rows.")
    }
    let d = problem.dimension
    var byRow = [Double](repeating: 0, count: n * count)  // [n, models]: βₐ of every model, contiguous per row
    for (m, model) in models.enumerated() {
      for a in 0..<n { byRow[a * count + m] = model.coefficients[a] }
    }
    var interleaved = [Double](repeating: 0, count: d * count)  // [d, models]
    byRow.withUnsafeBufferPointer { byRow in
      interleaved.withUnsafeMutableBufferPointer { out in
        let target = out.baseAddress!
        for a in 0..<n {
          let coefficients = byRow.baseAddress! + a * count
          problem.withRow(subset[a]) { first in
            var node = first
            while node.pointee.index != -1 {
              let column = Int(node.pointee.index) - 1
              if column < d {
                let value = node.pointee.value
                let weights = target + column * count
                // Branch-free (vectorised): a β of 0 adds ±0, which leaves every non-zero weight's bits alone.
                for m in 0..<count { weights[m] += coefficients[m] * value }
              }
              node += 1
            }
          }
        }
      }
    }
    return models.enumerated().map { m, model in
      LinearSVMModel(weights: (0..<d).map { interleaved[$0 * count + m] }, bias: model.bias, outcome: model.outcome)
    }
  }

  /// Decision values w_x · x_j + b of trainval rows `rows` for each of `models`, [models][rows], through the Gram
  /// matrix: Σₐ βₐ K[subset[a], j] (a ascending) + b. `gram` must be the matrix this factor was built from.
  public func decisions(_ models: [GramDualModel], rows: [Int], gram: SVMGramMatrix) -> [[Double]] {
    precondition(gram.rows == problem.rows, "The Gram matrix has \(gram.rows) rows, the problem \(problem.rows).")
    let n = subset.count
    var scores = models.map { _ in [Double](repeating: 0, count: rows.count) }
    var gathered = [Double](repeating: 0, count: n)  // K[subset[a], j] for one j
    gathered.withUnsafeMutableBufferPointer { gathered in
      for (slot, j) in rows.enumerated() {
        precondition(j >= 0 && j < gram.rows, "Row \(j) is outside the \(gram.rows) rows.")
        let kRow = gram.values + j * gram.rows  // K is symmetric: row j holds K[·, j]
        for a in 0..<n { gathered[a] = kRow[subset[a]] }
        for (m, model) in models.enumerated() {
          let total = model.coefficients.withUnsafeBufferPointer { beta in
            sequentialDot(beta.baseAddress!, UnsafePointer(gathered.baseAddress!), count: n)
          }
          scores[m][slot] = total + model.bias
        }
      }
    }
    return scores
  }
}

extension SVMLayer {
  /// Fits sharing `rows`, one per (labels, cost) job in order, through one factor when possible; `each(job, model)`
  /// runs after the fits, in job order (journal, progress). `factor` reuses one built by the caller (e.g. shared by
  /// workers). Through a factor, all jobs' feature weights come from one pass over the rows.
  func fitShared(rows: [Int], jobs: [(labels: [Double], cost: Double)], settings: SVMSettings,
                 factor given: GramFactor?? = nil, each: (Int, LinearSVMModel) throws -> Void) throws {
    guard !jobs.isEmpty else { return }
    let factor = given ?? gramFactor(rows: rows)
    var liblinear = settings.liblinear
    liblinear.reseedsRandomOrder = settings.deterministic
    if let factor {
      let duals = try jobs.map { job in
        let dual = try factor.fitDual(labels: job.labels, cost: job.cost, settings: liblinear)
        pathCounter.add(gram: true, outcome: dual.outcome)
        return dual
      }
      for (index, model) in factor.featureModels(duals).enumerated() { try each(index, model) }
      return
    }
    for (index, job) in jobs.enumerated() {
      let model = try problem.fit(rows: rows, labels: job.labels, cost: job.cost, settings: liblinear)
      pathCounter.add(gram: false, outcome: model.outcome)
      try each(index, model)
    }
  }

  /// Fits sharing `rows` as `fitShared`, scored on the trainval rows `scoring`: `each(job, decision values)` in job
  /// order. Through a factor the scores come from the Gram matrix and no feature weights are formed.
  func fitSharedScoring(rows: [Int], scoring: [Int], jobs: [(labels: [Double], cost: Double)],
                        settings: SVMSettings, each: (Int, [Double]) throws -> Void) throws {
    guard !jobs.isEmpty else { return }
    if let gram, let factor = gramFactor(rows: rows) {
      var liblinear = settings.liblinear
      liblinear.reseedsRandomOrder = settings.deterministic
      let duals = try jobs.map { job in
        let dual = try factor.fitDual(labels: job.labels, cost: job.cost, settings: liblinear)
        pathCounter.add(gram: true, outcome: dual.outcome)
        return dual
      }
      for (index, scores) in factor.decisions(duals, rows: scoring, gram: gram).enumerated() {
        try each(index, scores)
      }
      return
    }
    try fitShared(rows: rows, jobs: jobs, settings: settings, factor: .some(nil)) { index, model in
      try each(index, scoring.map { problem.decision(row: $0, model: model) })
    }
  }
}
