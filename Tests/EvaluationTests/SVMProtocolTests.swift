// The liblinear-backed protocols on small synthetic layers: the solver's settings, resume after an interruption,
// low-shot sampling rules and every bad-input error.
import Datasets
import Foundation
import Tensors
import Testing
import TestSupport
@testable import Evaluation

/// A synthetic VOC-like layer: `classes` classes, each image positive for 1–2 of them, features = sum of the
/// positive classes' prototypes + noise; a few labels are difficult (−1).
func syntheticLayer(classes: Int = 4, train: Int = 60, test: Int = 50, dimension: Int = 16, seed: UInt64 = 1,
                    noise: Float = 0.8) -> SVMLayerData {
  var generator = SplitMix64(seed: seed)
  let prototypes = (0..<(classes * dimension)).map { _ in generator.nextUniform() * 2 - 1 }
  func split(_ n: Int, prefix: String) -> (FeatureMatrix, SVMLabels) {
    var labels = [Int32](repeating: 0, count: n * classes)
    var scalars = [Float](repeating: 0, count: n * dimension)
    for i in 0..<n {
      let first = i % classes  // every class gets positives
      labels[i * classes + first] = 1
      if generator.nextUniform() < 0.3 { labels[i * classes + Int(generator.next() % UInt64(classes))] = 1 }
      if generator.nextUniform() < 0.1 {
        let c = Int(generator.next() % UInt64(classes))
        if labels[i * classes + c] == 0 { labels[i * classes + c] = -1 }
      }
      for j in 0..<dimension {
        var value = noise * (generator.nextUniform() * 2 - 1)
        for c in 0..<classes where labels[i * classes + c] != 0 { value += prototypes[c * dimension + j] }
        scalars[i * dimension + j] = max(0, value)  // ReLU-like: some zeros
      }
    }
    return (FeatureMatrix(rows: n, columns: dimension, scalars: scalars),
            SVMLabels(classes: (0..<classes).map { "class\($0)" }, labels: labels))
  }
  let (trainFeatures, trainLabels) = split(train, prefix: "t")
  let (testFeatures, testLabels) = split(test, prefix: "v")
  return SVMLayerData(layer: "feature5", train: trainFeatures, test: testFeatures, trainLabels: trainLabels,
                      testLabels: testLabels)
}

func temporaryDirectory(_ name: String) throws -> URL {
  let url = FileManager.default.temporaryDirectory.appendingPathComponent("\(name)-\(UUID().uuidString)")
  try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
  return url
}

@Suite(.serialized) struct SVMProtocolTests {
  static let smallCosts = [1.0, 10.0, 0.0625, 0.001]

  @Test func liblinearCapsIterationsAt1000() throws {
    // 2.3.0 has no max_iter setting; the cap is hard-coded (PROTOCOLS §2.3 / §8.10). A huge C on overlapping
    // classes cannot converge to eps 1e-4, so the solver must stop at exactly 1000 iterations and say so.
    var generator = SplitMix64(seed: 3)
    let rows = 200
    let scalars = (0..<(rows * 4)).map { _ in generator.nextUniform() }
    let problem = try LiblinearProblem(features: FeatureMatrix(rows: rows, columns: 4, scalars: scalars), bias: 1,
                                       layer: "x", location: { "\($0)" })
    var settings = LiblinearSettings()
    settings.finishCappedFits = false
    let model = try problem.fit(rows: Array(0..<rows), labels: (0..<rows).map { $0 % 2 == 0 ? 1 : -1 }, cost: 1e6,
                                settings: settings)
    #expect(lastDualIterationsOnThisThread() == 1000)
    #expect(model.outcome == .stoppedAtCap)
    // A small C converges well before the cap.
    let easy = try problem.fit(rows: Array(0..<rows), labels: (0..<rows).map { $0 % 2 == 0 ? 1 : -1 }, cost: 0.01,
                               settings: settings)
    #expect(easy.outcome == .converged)
    #expect((lastDualIterationsOnThisThread() ?? 1000) < 1000)
  }

  @Test func cappedFitsAreFinishedAtTheOptimumOnBothPaths() throws {
    // Oracle: the primal gradient of f(w) = ½‖w‖² + Σᵢ Cᵢ max(0, 1 − yᵢ w·x̃ᵢ)² (x̃ = [x/(‖x‖+1e-5), 1], C₊ = 2C,
    // C₋ = C), computed here in float64 from the raw features. It vanishes only at the optimum, which the dual and
    // primal solvers share; the finished fit must be near it, the capped dual point measurably farther.
    var generator = SplitMix64(seed: 8)
    let (rows, columns) = (90, 120)  // fewer rows than columns: the Gram path applies
    // Rows near a 30-dimensional subspace (+ small noise, so the Gram block stays positive definite) with labels
    // unrelated to the features: separable only through the noise, by a tiny margin — slow for the dual at large C.
    let rank = 30
    let raw = lowRankRows(rows: rows, columns: columns, rank: rank, using: &generator)
    let labels = (0..<rows).map { $0 % 3 == 0 ? 1.0 : -1.0 }
    let problem = try LiblinearProblem(features: FeatureMatrix(rows: rows, columns: columns, scalars: raw), bias: 1,
                                       layer: "x", location: { "\($0)" })
    let cost = 1e4
    let normalized: [[Double]] = (0..<rows).map { i in
      let x = raw[(i * columns)..<((i + 1) * columns)].map(Double.init)
      let norm = x.reduce(0) { $0 + $1 * $1 }.squareRoot()
      return x.map { $0 / (norm + 1e-5) } + [1]
    }
    func gradientNorm(_ model: LinearSVMModel) -> Double {
      let w = model.weights + [model.bias]
      var gradient = w
      for i in 0..<rows {
        let margin = 1 - labels[i] * zip(w, normalized[i]).reduce(0) { $0 + $1.0 * $1.1 }
        guard margin > 0 else { continue }
        let weight = labels[i] > 0 ? 2 * cost : cost
        for j in gradient.indices { gradient[j] -= 2 * weight * labels[i] * margin * normalized[i][j] }
      }
      return gradient.reduce(0) { $0 + $1 * $1 }.squareRoot()
    }
    let atZero = gradientNorm(LinearSVMModel(weights: [Double](repeating: 0, count: columns), bias: 0))
    var capOnly = LiblinearSettings()
    capOnly.finishCappedFits = false
    let all = Array(0..<rows)
    let capped = try problem.fit(rows: all, labels: labels, cost: cost, settings: capOnly)
    let plain = try problem.fit(rows: all, labels: labels, cost: cost, settings: LiblinearSettings())
    let factor = try #require(GramFactor(problem: problem, gram: SVMGramMatrix(problem: problem), rows: all))
    let gram = try factor.fit(labels: labels, cost: cost, settings: LiblinearSettings())
    #expect(capped.outcome == .stoppedAtCap)
    #expect(plain.outcome == .finishedByPrimal && gram.outcome == .finishedByPrimal)
    // liblinear's primal stopping rule: ‖∇f‖ ≤ eps · min(#pos, #neg) / l · ‖∇f(0)‖ (eps 1e-4).
    let positives = labels.filter { $0 > 0 }.count
    let tolerance = 1e-4 * Double(min(positives, rows - positives)) / Double(rows) * atZero
    #expect(gradientNorm(plain) <= tolerance, "plain: \(gradientNorm(plain)) > \(tolerance)")
    #expect(gradientNorm(gram) <= 1.01 * tolerance, "Gram: \(gradientNorm(gram)) > \(tolerance)")
    #expect(gradientNorm(capped) > 10 * tolerance, "the capped point is already optimal: test data too easy")
    // Both at the optimum: the same objective value and decision values (the weights themselves may differ along
    // directions the flat objective barely sees).
    func objective(_ model: LinearSVMModel) -> Double {
      let w = model.weights + [model.bias]
      var total = 0.5 * w.reduce(0) { $0 + $1 * $1 }
      for i in 0..<rows {
        let margin = max(0, 1 - labels[i] * zip(w, normalized[i]).reduce(0) { $0 + $1.0 * $1.1 })
        total += (labels[i] > 0 ? 2 * cost : cost) * margin * margin
      }
      return total
    }
    // Measured: capped 1.91e6, plain 3.13006e5, Gram 3.12999e5; decisions within 0.0085.
    #expect(abs(objective(plain) - objective(gram)) <= 1e-4 * objective(plain))
    #expect(objective(capped) > 2 * objective(plain))
    let decisions = all.map { abs(problem.decision(row: $0, model: plain) - problem.decision(row: $0, model: gram)) }
    #expect(decisions.max()! <= 0.05)
  }

  @Test func fitSeparatesAndScoresPositiveForClassOne() throws {
    // 1-D points: positives at x > 0. Whatever label comes first in the rows, decisions are positive for +1.
    let xs: [Float] = [2, 1.5, 1, -1, -1.5, -2]
    for order in [[0, 1, 2, 3, 4, 5], [5, 4, 3, 2, 1, 0]] {
      let features = FeatureMatrix(rows: 6, columns: 2, scalars: order.flatMap { [xs[$0], 1] })
      let problem = try LiblinearProblem(features: features, bias: 1, layer: "x", location: { "\($0)" })
      let labels = order.map { xs[$0] > 0 ? 1.0 : -1.0 }
      let model = try problem.fit(rows: Array(0..<6), labels: labels, cost: 10, settings: LiblinearSettings())
      for row in 0..<6 { #expect((problem.decision(row: row, model: model) > 0) == (labels[row] > 0)) }
    }
  }

  @Test func interruptedFullRunResumesToTheSameResult() throws {
    let data = syntheticLayer()
    var settings = SVMSettings()
    settings.costs = Self.smallCosts
    settings.deterministic = true
    let layer = try SVMLayer(data, settings: settings)
    let reference = try layer.runFull(settings: settings, journal: nil)

    let directory = try temporaryDirectory("svm-resume")
    defer { try? FileManager.default.removeItem(at: directory) }
    var interrupted = settings
    interrupted.stopAfterUnits = 7
    #expect(throws: SVMError.interrupted(afterUnits: 7)) {
      _ = try layer.runFull(settings: interrupted, journal: try SVMJournal(directory: directory, key: "k"))
    }
    let journal = try SVMJournal(directory: directory, key: "k")
    #expect(journal.count == 7)
    let resumed = try layer.runFull(settings: settings, journal: journal)
    #expect(resumed == reference)
    // Everything is journaled now: a third run trains nothing (a stop after 1 unit would throw otherwise).
    var noWork = settings
    noWork.stopAfterUnits = 1
    #expect(try layer.runFull(settings: noWork, journal: SVMJournal(directory: directory, key: "k")) == reference)
    // A different key starts afresh.
    #expect(try SVMJournal(directory: directory, key: "other").count == 0)
    #expect(reference.mAP > 0.5)
  }

  @Test func parallelFitsAgreeWithDeterministicOnes() throws {
    let data = syntheticLayer(seed: 2)
    var settings = SVMSettings()
    settings.costs = Self.smallCosts
    settings.deterministic = true
    let layer = try SVMLayer(data, settings: settings)
    let serial = try layer.runFull(settings: settings, journal: nil)
    settings.deterministic = false
    settings.workers = 3
    let parallel = try layer.runFull(settings: settings, journal: nil)
    #expect(abs(serial.mAP - parallel.mAP) < 1e-3)
    #expect(serial.cvAP.count == 4 && serial.cvAP[0].count == 4 && serial.cvAP[0][0].count == 3)
  }

  @Test func fullProtocolChoosesTheBestMeanCVCost() throws {
    var settings = SVMSettings()
    settings.costs = Self.smallCosts
    settings.deterministic = true
    let result = try SVMLayer(syntheticLayer(seed: 4), settings: settings).runFull(settings: settings, journal: nil)
    for c in result.classes.indices {
      let means = result.costs.indices.map { result.meanCV(c, $0) }
      #expect(result.chosenCost[c] == means.firstIndex(of: means.max()!))
    }
  }

  @Test func lowShotSamplesFollowTheReferenceRules() {
    let labels = syntheticLayer(classes: 3, train: 60).trainLabels
    let draw = drawLowShotSamples(labels: labels, ks: [1, 4, 30], samples: 2, seed: 7)
    #expect(draw.samples.count == 6)
    #expect(draw == drawLowShotSamples(labels: labels, ks: [1, 4, 30], samples: 2, seed: 7))
    #expect(draw != drawLowShotSamples(labels: labels, ks: [1, 4, 30], samples: 2, seed: 8))
    let positives = labels.positiveCounts
    for sample in draw.samples {
      for c in 0..<3 {
        let column = (0..<60).map { sample.targets[$0 * 3 + c] }
        let available = (0..<60).filter { labels[$0, c] == 0 }.count
        #expect(column.filter { $0 == 1 }.count == min(sample.k, positives[c]))
        #expect(column.filter { $0 == 0 }.count == min(2 * sample.k, available))
        // Drawn positives are positives, drawn negatives are negatives: never a difficult image.
        for i in 0..<60 where column[i] != -1 { #expect(Int32(column[i]) == labels[i, c]) }
      }
    }
    // k = 30 exceeds every class's positives (20 each + a few): the rule is "use all", and it is reported.
    #expect(draw.shortfalls.contains { $0.contains("k=30") })
  }

  @Test func lowShotRunResumesAndAggregatesPerCost() throws {
    let data = syntheticLayer(seed: 5)
    var settings = SVMSettings()
    settings.costs = Self.smallCosts
    settings.deterministic = true
    let layer = try SVMLayer(data, settings: settings)
    let draw = drawLowShotSamples(labels: data.trainLabels, ks: [1, 2, 8], samples: 3, seed: 1)
    let reference = try layer.runLowShot(draw, settings: settings, journal: nil)
    let directory = try temporaryDirectory("svm-lowshot")
    defer { try? FileManager.default.removeItem(at: directory) }
    var interrupted = settings
    interrupted.stopAfterUnits = 4
    #expect(throws: SVMError.interrupted(afterUnits: 4)) {
      _ = try layer.runLowShot(draw, settings: interrupted, journal: try SVMJournal(directory: directory, key: "l"))
    }
    #expect(try layer.runLowShot(draw, settings: settings, journal: SVMJournal(directory: directory, key: "l"))
      == reference)
    for summary in reference.summaries {
      let maps = (0..<3).map { s in settings.costs.indices.map { reference.mAP(k: summary.k, sample: s, cost: $0) } }
      let means = settings.costs.indices.map { cost in maps.map { $0[cost] }.reduce(0, +) / 3 }
      #expect(summary.chosenCost == means.firstIndex(of: means.max()!))
      let values = maps.map { $0[summary.chosenCost] }
      #expect(summary.min == values.min()! && summary.max == values.max()!)
      let mean = values.reduce(0, +) / 3
      #expect(abs(summary.std - (values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 3).squareRoot()) < 1e-12)
    }
  }

  @Test func lowShotSampleFilesAreCheckedForShape() throws {
    let directory = try temporaryDirectory("svm-samples")
    defer { try? FileManager.default.removeItem(at: directory) }
    let good = NPYArray(shape: [60, 4], data: .int32([Int32](repeating: -1, count: 240)))
    try NPY.write(good, to: directory.appendingPathComponent("train_targets_sample1_k1.npy"))
    let draw = try readLowShotSamples(directory: directory, ks: [1], samples: 1, images: 60, classes: 4)
    #expect(draw.samples.count == 1 && draw.source == "files=\(directory.path)")
    let bad = directory.appendingPathComponent("train_targets_sample1_k2.npy")
    try NPY.write(NPYArray(shape: [5011, 20], data: .int32([Int32](repeating: 0, count: 5011 * 20))), to: bad)
    #expect {
      _ = try readLowShotSamples(directory: directory, ks: [2], samples: 1, images: 60, classes: 4)
    } throws: { error in
      guard case SVMError.badLowShotSample(let path, let reason) = error else { return false }
      return path == bad.path && reason.contains("[5011, 20]")
    }
    #expect(throws: SVMError.missingLowShotSample(
      path: directory.appendingPathComponent("train_targets_sample1_k4.npy").path)) {
      _ = try readLowShotSamples(directory: directory, ks: [4], samples: 1, images: 60, classes: 4)
    }
  }

  @Test func badInputsNameTheirCause() throws {
    var data = syntheticLayer()
    var scalars = data.train.row(0)
    scalars = (0..<data.train.rows).flatMap { data.train.row($0) }
    scalars[5 * 16 + 3] = .nan
    data.train = FeatureMatrix(rows: data.train.rows, columns: 16, scalars: scalars)
    data.trainLocation = { "JPEGImages/\($0).jpg" }
    #expect(throws: SVMError.nonFiniteFeature(layer: "feature5", image: "JPEGImages/5.jpg", column: 3,
                                              value: .nan).description) {
      do { _ = try SVMLayer(data, settings: SVMSettings()) } catch { throw error.localizedDescription }
    }

    var noPositive = syntheticLayer()
    noPositive.trainLabels.labels = noPositive.trainLabels.labels.enumerated().map { $0.offset % 4 == 2 ? 0 : $0.element }
    #expect(throws: SVMError.noPositives(className: "class2", split: "trainval")) {
      _ = try SVMLayer(noPositive, settings: SVMSettings())
    }

    var fewPositives = syntheticLayer()
    fewPositives.trainLabels.labels = fewPositives.trainLabels.labels.enumerated().map { index, value in
      index % 4 == 1 ? (index / 4 < 2 ? 1 : 0) : value
    }
    let layer = try SVMLayer(fewPositives, settings: SVMSettings())
    #expect(throws: SVMError.tooFewPositivesForCV(className: "class1", positives: 2, folds: 3)) {
      _ = try layer.runFull(settings: SVMSettings(), journal: nil)
    }
  }
}

extension String: @retroactive Error {}
