// The dense dual solver (GramDualSolver.swift) against liblinear 2.3.0 itself, solving the same Gram problems (the
// rows of L as liblinear `feature_node`s, `GramFactor.fitThroughLiblinearRows`): random and clustered features,
// positives rare and half of the rows, costs from 1e-3 to ones that reach the 1000-iteration cap.
// - With liblinear's summation order the solve is liblinear's, bit for bit: the same weights and iteration counts
//   (this pins down the row grouping, QD, the rand() shuffle, shrinking, the stopping rule and the cap).
// - With the blocked (SIMD) dot product the iteration counts are the same and weights / decision values agree to
//   1e-9 relative.
// In the SVMProtocolTests suite (serialised): the fits reseed the C library's global `rand()` (srand(1), alone).
import Foundation
import Tensors
import Testing
import TestSupport
@testable import Evaluation

/// One Gram problem: a factor of `rows` training rows with labels ±1.
private struct GramCase {
  var name: String
  var problem: LiblinearProblem
  var factor: GramFactor
  var labels: [Double]
}

/// Random non-negative features (no class structure) or `syntheticLayer`'s clustered ones, d > n; `balanced`:
/// every other row positive, else class 0 of the layer (about a quarter of the rows).
private func gramCase(clustered: Bool, balanced: Bool, seed: UInt64) throws -> GramCase {
  let (train, dimension) = (48, 80)
  var data = syntheticLayer(classes: 4, train: train, test: 4, dimension: dimension, seed: seed)
  if !clustered {
    var generator = SplitMix64(seed: seed &+ 50)
    data.train = FeatureMatrix(rows: train, columns: dimension, scalars: (0..<(train * dimension)).map { _ in
      max(0, generator.nextUniform() * 2 - 0.6)
    })
  }
  let problem = try LiblinearProblem(features: data.train, bias: 1, layer: "x", location: { "\($0)" })
  let subset = (0..<train).filter { $0 % 5 != 2 }
  let factor = try #require(GramFactor(problem: problem, gram: SVMGramMatrix(problem: problem), rows: subset))
  let labels = subset.map { row in
    balanced ? (row % 2 == 0 ? 1.0 : -1.0) : (data.trainLabels[row, 0] == 1 ? 1.0 : -1.0)
  }
  return GramCase(name: "\(clustered ? "clustered" : "random"), \(balanced ? "balanced" : "rare positives")",
                  problem: problem, factor: factor, labels: labels)
}

/// Rows near a 20-dimensional subspace with labels unrelated to them (cappedFitsAreFinishedAtTheOptimumOnBothPaths'
/// construction): at cost 1e4 the dual reaches its 1000-iteration cap.
private func cappingCase() throws -> GramCase {
  var generator = SplitMix64(seed: 21)
  let (rows, columns, rank) = (60, 90, 20)
  let raw = lowRankRows(rows: rows, columns: columns, rank: rank, using: &generator)
  let problem = try LiblinearProblem(features: FeatureMatrix(rows: rows, columns: columns, scalars: raw), bias: 1,
                                     layer: "x", location: { "\($0)" })
  let all = Array(0..<rows)
  let factor = try #require(GramFactor(problem: problem, gram: SVMGramMatrix(problem: problem), rows: all))
  return GramCase(name: "near-rank-20, labels unrelated", problem: problem, factor: factor,
                  labels: all.map { $0 % 3 == 0 ? 1.0 : -1.0 })
}

private let costs = [1e-3, 0.0625, 1.0, 10.0, 1000.0]

/// `|a − b| ≤ tolerance · scale` for every pair, with scale the largest |b|.
private func expectRelativelyClose(_ a: [Double], _ b: [Double], tolerance: Double, _ comment: String,
                                   sourceLocation: SourceLocation = #_sourceLocation) {
  #expect(a.count == b.count, sourceLocation: sourceLocation)
  let scale = max(b.map(abs).max() ?? 0, 1e-300)
  let worst = zip(a, b).map { abs($0 - $1) }.max() ?? 0
  #expect(worst <= tolerance * scale, "\(comment): worst |Δ| \(worst) vs scale \(scale)",
          sourceLocation: sourceLocation)
}

/// Both fits of one case and cost, each followed by its dual iteration count.
private func fitBoth(_ gramCase: GramCase, cost: Double, settings: LiblinearSettings, dotProduct: DotProductOrder)
  throws -> (dense: LinearSVMModel, denseIterations: Int?, liblinear: LinearSVMModel, liblinearIterations: Int?)
{
  let dense = try gramCase.factor.fit(labels: gramCase.labels, cost: cost, settings: settings,
                                      dotProduct: dotProduct)
  let denseIterations = lastDualIterationsOnThisThread()
  let liblinear = try gramCase.factor.fitThroughLiblinearRows(labels: gramCase.labels, cost: cost,
                                                              settings: settings)
  return (dense, denseIterations, liblinear, lastDualIterationsOnThisThread())
}

extension SVMProtocolTests {
  // Not parameterised: test cases of one test may run concurrently, and these reseed `rand()`.
  @Test func denseDualWithLiblinearSummationIsLiblinearBitForBit() throws {
    var settings = LiblinearSettings()
    settings.reseedsRandomOrder = true
    settings.finishCappedFits = false  // compare the dual's own end point, also at the cap
    var cases: [GramCase] = []
    for clustered in [false, true] {
      for balanced in [false, true] { cases.append(try gramCase(clustered: clustered, balanced: balanced, seed: 31)) }
    }
    for gramCase in cases {
      for cost in costs {
        let fits = try fitBoth(gramCase, cost: cost, settings: settings, dotProduct: .liblinear)
        #expect(fits.dense == fits.liblinear, "\(gramCase.name), C = \(cost)")
        #expect(fits.denseIterations != nil && fits.denseIterations == fits.liblinearIterations,
                "\(gramCase.name), C = \(cost)")
        #expect(fits.dense.outcome == fits.liblinear.outcome)
      }
    }
    let capping = try cappingCase()
    for cost in [1e4, 1e5] {
      let fits = try fitBoth(capping, cost: cost, settings: settings, dotProduct: .liblinear)
      #expect(fits.denseIterations == 1000 && fits.liblinearIterations == 1000)
      #expect(fits.dense.outcome == .stoppedAtCap && fits.liblinear.outcome == .stoppedAtCap)
      #expect(fits.dense == fits.liblinear, "capped at C = \(cost)")
    }
    // The primal finish starts from the same point: the same finished model.
    settings.finishCappedFits = true
    let finished = try fitBoth(capping, cost: 1e4, settings: settings, dotProduct: .liblinear)
    #expect(finished.dense.outcome == .finishedByPrimal && finished.liblinear.outcome == .finishedByPrimal)
    #expect(finished.dense == finished.liblinear)
  }

  @Test func denseDualWithBlockedSummationAgreesWithLiblinear() throws {
    var settings = LiblinearSettings()
    settings.reseedsRandomOrder = true
    var cases: [GramCase] = []
    for clustered in [false, true] {
      for balanced in [false, true] { cases.append(try gramCase(clustered: clustered, balanced: balanced, seed: 32)) }
    }
    for gramCase in cases {
      let rows = Array(0..<gramCase.problem.rows)
      for cost in costs {
        let fits = try fitBoth(gramCase, cost: cost, settings: settings, dotProduct: .blocked)
        let label = "\(gramCase.name), C = \(cost)"
        #expect(fits.denseIterations != nil && fits.denseIterations == fits.liblinearIterations, "\(label)")
        expectRelativelyClose(fits.dense.weights + [fits.dense.bias],
                              fits.liblinear.weights + [fits.liblinear.bias], tolerance: 1e-9, label)
        expectRelativelyClose(rows.map { gramCase.problem.decision(row: $0, model: fits.dense) },
                              rows.map { gramCase.problem.decision(row: $0, model: fits.liblinear) },
                              tolerance: 1e-9, label)
      }
    }
    // At the cap the dual end points still agree to 1e-9. Finished by the primal solver (trust-region Newton) from
    // these slightly differently rounded starts, the two stop wherever each first meets the primal's gradient
    // tolerance: measured 3e-5 relative apart in decision values (the plain and Gram paths differ so too; both are
    // at the optimum to the tolerance, which cappedFitsAreFinishedAtTheOptimumOnBothPaths checks with the gradient).
    let capping = try cappingCase()
    let rows = Array(0..<capping.problem.rows)
    for finish in [false, true] {
      settings.finishCappedFits = finish
      let fits = try fitBoth(capping, cost: 1e4, settings: settings, dotProduct: .blocked)
      #expect(fits.dense.outcome == (finish ? .finishedByPrimal : .stoppedAtCap))
      #expect(fits.dense.outcome == fits.liblinear.outcome)
      if !finish { #expect(fits.denseIterations == 1000 && fits.liblinearIterations == 1000) }
      expectRelativelyClose(rows.map { capping.problem.decision(row: $0, model: fits.dense) },
                            rows.map { capping.problem.decision(row: $0, model: fits.liblinear) },
                            tolerance: finish ? 1e-3 : 1e-9, "capping case, finish \(finish)")
    }
  }

  @Test func denseDualReturnsTheWeightsOfItsAlphas() throws {
    // w = Σ αᵢ yᵢ zᵢ (with zᵢ = [row i of L, bias]) and α ≥ 0, recomputed here from the packed rows; at the optimum
    // of the squared-hinge dual, αᵢ = 2 Cᵢ max(0, 1 − yᵢ w·zᵢ) (KKT, to the solver's tolerance at eps 1e-10).
    let gramCase = try gramCase(clustered: true, balanced: false, seed: 33)
    let factor = gramCase.factor
    let n = factor.rows
    let labels = gramCase.labels
    let cost = 1.0
    let solution = solveGramDual(rows: factor.packed, squaredNorms: factor.squaredNorms, labels: labels, bias: 1,
                                 positiveCost: 2 * cost, negativeCost: cost, epsilon: 1e-10, reseeded: true)
    #expect(solution.alpha.allSatisfy { $0 >= 0 } && !solution.reachedCap)
    var expected = [Double](repeating: 0, count: n + 1)
    for a in 0..<n {
      let row = factor.packed + packedRowOffset(a)
      for b in 0...a { expected[b] += solution.alpha[a] * labels[a] * row[b] }
      expected[n] += solution.alpha[a] * labels[a] * 1
    }
    expectRelativelyClose(solution.weights, expected, tolerance: 1e-12, "w = Σ α y z")
    for a in 0..<n {
      let row = factor.packed + packedRowOffset(a)
      var margin = solution.weights[n]
      for b in 0...a { margin += solution.weights[b] * row[b] }
      let costOfRow = labels[a] > 0 ? 2 * cost : cost
      let kkt = 2 * costOfRow * max(0, 1 - labels[a] * margin)
      #expect(abs(solution.alpha[a] - kkt) <= 1e-6 * max(1, kkt), "row \(a): α \(solution.alpha[a]) vs \(kkt)")
    }
  }

  @Test func gramFitsDoNotDependOnTheThreadCount() throws {
    // The factor's packing runs in parallel, the solve on one thread: the same bits with 1 or 4 threads.
    let data = syntheticLayer(classes: 3, train: 48, test: 20, dimension: 96, seed: 34)
    var settings = SVMSettings()
    settings.costs = Self.smallCosts
    settings.deterministic = true
    func run() throws -> FullSVMResult {
      try SVMLayer(data, settings: settings).runFull(settings: settings, journal: nil)
    }
    try ThreadCountLock.holding {
      Threads.configure(1)
      let single = try run()
      Threads.configure(4)
      let several = try run()
      #expect(single.cvAP == several.cvAP && single.testAP == several.testAP)
      #expect(single.chosenCost == several.chosenCost)
    }
  }
  @Test func dualModelsGiveTheFeatureWeightsAndScoresOfSingleFits() throws {
    // Three costs' duals on one factor: their batched feature weights are each lone fit's, bit for bit; their
    // scores through the Gram matrix are w_x · x + b of the stored rows to rounding.
    let gramCase = try gramCase(clustered: true, balanced: false, seed: 35)
    var settings = LiblinearSettings()
    settings.reseedsRandomOrder = true
    let costs = [0.01, 1.0, 100.0]
    let duals = try costs.map { try gramCase.factor.fitDual(labels: gramCase.labels, cost: $0, settings: settings) }
    let batched = gramCase.factor.featureModels(duals)
    for (cost, model) in zip(costs, batched) {
      let alone = try gramCase.factor.fit(labels: gramCase.labels, cost: cost, settings: settings)
      #expect(model == alone, "C = \(cost)")
    }
    let rows = Array(0..<gramCase.problem.rows)  // trainval rows in and out of the factor's subset
    let gram = SVMGramMatrix(problem: gramCase.problem)
    for (scores, model) in zip(gramCase.factor.decisions(duals, rows: rows, gram: gram), batched) {
      expectRelativelyClose(scores, rows.map { gramCase.problem.decision(row: $0, model: model) }, tolerance: 1e-12,
                            "scores through K")
    }
  }
}
