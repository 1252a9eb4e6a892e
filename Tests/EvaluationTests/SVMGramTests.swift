// The Gram path (GramSVM.swift) against the plain liblinear path on layers with more features than rows: the same
// fits, CV APs, chosen costs, test APs and low-shot results; rank-deficient rows fall back to the plain path.
// In the SVMProtocolTests suite (serialised): deterministic fits reseed the C library's global `rand()`. Another
// suite drawing from it concurrently changes the coordinate order, so both paths would stop at different points
// within liblinear's tolerance (1e-5 relative at eps 1e-4); the comparisons therefore solve to a tight eps, where
// the unique optimum of the (strictly convex) dual is reached whatever the order.
import Foundation
import Tensors
import Testing
@testable import Evaluation

/// Random non-negative features without class structure, labels from `syntheticLayer`'s generator.
private func randomLayer(classes: Int, train: Int, test: Int, dimension: Int, seed: UInt64) -> SVMLayerData {
  var data = syntheticLayer(classes: classes, train: train, test: test, dimension: dimension, seed: seed)
  var generator = SplitMix64(seed: seed &+ 100)
  func noise(_ rows: Int) -> FeatureMatrix {
    FeatureMatrix(rows: rows, columns: dimension,
                  scalars: (0..<(rows * dimension)).map { _ in max(0, generator.nextUniform() * 2 - 0.6) })
  }
  data.train = noise(train)
  data.test = noise(test)
  return data
}

/// `|a − b| ≤ tolerance · scale` for every pair, with scale the largest |a|.
private func expectRelativelyClose(_ a: [Double], _ b: [Double], tolerance: Double,
                                   sourceLocation: SourceLocation = #_sourceLocation) {
  #expect(a.count == b.count, sourceLocation: sourceLocation)
  let scale = max(a.map(abs).max() ?? 0, 1e-300)
  let worst = zip(a, b).map { abs($0 - $1) }.max() ?? 0
  #expect(worst <= tolerance * scale, "worst |Δ| \(worst) vs scale \(scale)", sourceLocation: sourceLocation)
}

/// Same (class, cost) results up to rounding: CV and test APs within 1e-9; the chosen cost identical unless two
/// costs' mean CV APs lie within 1e-9 of each other.
private func expectSameFull(_ gram: FullSVMResult, _ plain: FullSVMResult,
                            sourceLocation: SourceLocation = #_sourceLocation) {
  for c in plain.classes.indices {
    expectRelativelyClose(gram.cvAP[c].flatMap { $0 }, plain.cvAP[c].flatMap { $0 }, tolerance: 1e-9,
                          sourceLocation: sourceLocation)
    let means = plain.costs.indices.map { plain.meanCV(c, $0) }
    let best = means[plain.chosenCost[c]]
    let nearTie = means.indices.contains { $0 != plain.chosenCost[c] && abs(means[$0] - best) <= 1e-9 }
    if !nearTie { #expect(gram.chosenCost[c] == plain.chosenCost[c], sourceLocation: sourceLocation) }
  }
  expectRelativelyClose(gram.testAP, plain.testAP, tolerance: 1e-9, sourceLocation: sourceLocation)
  #expect(abs(gram.mAP - plain.mAP) <= 1e-9, sourceLocation: sourceLocation)
}

extension SVMProtocolTests {
  // Not parameterised: test cases of one test may run concurrently, and these reseed `rand()`.
  @Test func gramFitGivesThePlainModelAndDecisions() throws {
    for clustered in [false, true] { try gramFitGivesThePlainModelAndDecisions(clustered: clustered) }
  }

  private func gramFitGivesThePlainModelAndDecisions(clustered: Bool) throws {
    let data = clustered
      ? syntheticLayer(classes: 3, train: 40, test: 10, dimension: 120, seed: 11)
      : randomLayer(classes: 3, train: 40, test: 10, dimension: 120, seed: 12)
    let problem = try LiblinearProblem(features: data.train, bias: 1, layer: "x", location: { "\($0)" })
    let gram = SVMGramMatrix(problem: problem)
    let subset = (0..<40).filter { $0 % 4 != 1 }  // 30 training rows, 10 held out
    let factor = try #require(GramFactor(problem: problem, gram: gram, rows: subset))
    let labels = subset.map { data.trainLabels[$0, 0] == 1 ? 1.0 : -1.0 }
    var tight = LiblinearSettings()
    tight.epsilon = 1e-10
    tight.reseedsRandomOrder = true  // srand(1) before each dual solve, alone in the process
    for cost in [1e-3, 0.0625, 1.0, 10.0, 1000.0] {
      let plain = try problem.fit(rows: subset, labels: labels, cost: cost, settings: tight)
      let viaGram = try factor.fit(labels: labels, cost: cost, settings: tight)
      let rows = Array(0..<40)
      expectRelativelyClose(rows.map { problem.decision(row: $0, model: viaGram) },
                            rows.map { problem.decision(row: $0, model: plain) }, tolerance: 1e-6)
      expectRelativelyClose(viaGram.weights, plain.weights, tolerance: 1e-6)
      #expect(abs(viaGram.bias - plain.bias) <= 1e-6 * max(abs(plain.bias), 1e-3))
    }
  }

  @Test func gramMatrixHoldsTheRowProducts() throws {
    // Rows (3, 4) and (1, 0) normalised to (0.6, 0.8)·s₀ and (1, 0)·s₁ with sᵢ = ‖xᵢ‖ / (‖xᵢ‖ + 1e-5):
    // K = [[s₀², 0.6 s₀ s₁], [0.6 s₀ s₁, s₁²]].
    let problem = try LiblinearProblem(features: FeatureMatrix(rows: 2, columns: 2, scalars: [3, 4, 1, 0]), bias: 1,
                                       layer: "x", location: { "\($0)" })
    let gram = SVMGramMatrix(problem: problem)
    let (s0, s1) = (5 / (5 + 1e-5), 1 / (1 + 1e-5))
    #expect(abs(gram[0, 0] - s0 * s0) < 1e-15 && abs(gram[1, 1] - s1 * s1) < 1e-15)
    #expect(abs(gram[0, 1] - 0.6 * s0 * s1) < 1e-15 && gram[0, 1] == gram[1, 0])
  }

  @Test func gramFullProtocolEqualsThePlainOne() throws {
    for clustered in [false, true] { try gramFullProtocolEqualsThePlainOne(clustered: clustered) }
  }

  private func gramFullProtocolEqualsThePlainOne(clustered: Bool) throws {
    let data = clustered
      ? syntheticLayer(classes: 3, train: 48, test: 40, dimension: 96, seed: 13)
      : randomLayer(classes: 3, train: 48, test: 40, dimension: 96, seed: 14)
    var settings = SVMSettings()  // the reference's 19 costs
    settings.deterministic = true
    settings.liblinear.epsilon = 1e-8
    settings.gram = false
    let plainLayer = try SVMLayer(data, settings: settings)
    #expect(plainLayer.gram == nil)
    let plain = try plainLayer.runFull(settings: settings, journal: nil)
    #expect(plainLayer.fitPaths == SVMFitPaths(gram: 0, plain: 3 * 19 * 3 + 3))
    settings.gram = true
    let gramLayer = try SVMLayer(data, settings: settings)
    let viaGram = try gramLayer.runFull(settings: settings, journal: nil)
    #expect(gramLayer.fitPaths == SVMFitPaths(gram: 3 * 19 * 3 + 3, plain: 0))
    expectSameFull(viaGram, plain)
    if clustered { #expect(plain.mAP > 0.5) }
  }

  @Test func duplicateRowsFallBackToThePlainPath() throws {
    // Every training image twice: K is singular, so the all-rows factor (final fits) is refused; folds that
    // separate a pair may still factor. The result equals the plain run.
    var data = syntheticLayer(classes: 3, train: 24, test: 30, dimension: 96, seed: 15)
    let (n, d) = (data.train.rows, data.train.columns)
    var scalars: [Float] = []
    var labels: [Int32] = []
    for copy in 0..<2 {
      _ = copy
      for i in 0..<n {
        for j in 0..<d { scalars.append(data.train[i, j]) }
        for c in 0..<3 { labels.append(data.trainLabels[i, c]) }
      }
    }
    data.train = FeatureMatrix(rows: 2 * n, columns: d, scalars: scalars)
    data.trainLabels = SVMLabels(classes: data.trainLabels.classes, labels: labels)
    var settings = SVMSettings()
    settings.costs = Self.smallCosts
    settings.deterministic = true
    settings.liblinear.epsilon = 1e-8
    let gramLayer = try SVMLayer(data, settings: settings)
    #expect(gramLayer.gramFactor(rows: Array(0..<(2 * n))) == nil)
    #expect(gramLayer.gramFactor(rows: Array(0..<n)) != nil)  // one copy each: full rank
    let viaGram = try gramLayer.runFull(settings: settings, journal: nil)
    #expect(gramLayer.fitPaths.plain >= 3)  // at least the final fits
    settings.gram = false
    let plain = try SVMLayer(data, settings: settings).runFull(settings: settings, journal: nil)
    expectSameFull(viaGram, plain)
  }

  @Test func tooManyRowsUseThePlainPath() throws {
    // 60 rows ≥ 0.8 · 16 features: no factor, every fit plain (and the same as with the Gram path off).
    let layer = try SVMLayer(syntheticLayer(seed: 16), settings: SVMSettings())
    #expect(layer.gramFactor(rows: Array(0..<40)) == nil)
    #expect(layer.gramFactor(rows: Array(0..<12)) != nil)
  }

  @Test func gramLowShotEqualsThePlainOne() throws {
    let data = syntheticLayer(classes: 3, train: 60, test: 40, dimension: 64, seed: 17)
    let draw = drawLowShotSamples(labels: data.trainLabels, ks: [1, 2, 4, 8], samples: 2, seed: 3)
    var settings = SVMSettings()
    settings.deterministic = true
    settings.liblinear.epsilon = 1e-8
    settings.gram = false
    let plain = try SVMLayer(data, settings: settings).runLowShot(draw, settings: settings, journal: nil)
    settings.gram = true
    let gramLayer = try SVMLayer(data, settings: settings)
    let viaGram = try gramLayer.runLowShot(draw, settings: settings, journal: nil)
    // k = 1, 2, 4: 3k rows < 51.2, k = 8: 24 rows: every fit factored.
    #expect(gramLayer.fitPaths == SVMFitPaths(gram: 4 * 2 * 3 * 19, plain: 0))
    for k in [1, 2, 4, 8] {
      expectRelativelyClose(viaGram.classAP[k]!.flatMap { $0.flatMap { $0 } },
                            plain.classAP[k]!.flatMap { $0.flatMap { $0 } }, tolerance: 1e-9)
    }
    for (a, b) in zip(viaGram.summaries, plain.summaries) {
      #expect(a.k == b.k && a.chosenCost == b.chosenCost)
      #expect(abs(a.mean - b.mean) <= 1e-9)
    }
  }
}
