import Foundation
import Testing
import Checkpoints
import Layers
import Tensors
@testable import Evaluation

/// The probe's training loop: separable data is learned perfectly, checkpoints resume exactly, hits are counted
/// as mmcls does.
@Suite struct ProbeTrainingTests {
  /// `count` points in `classes` linearly separable classes: pooled features of 2 channels on a 2×2 grid whose
  /// class-`c` coordinate is large (±noise), flattened in NCHW order.
  static func separable(count: Int, classes: Int, seed: UInt64) -> (FeatureMatrix, [Int]) {
    var rng = SplitMix64(seed: seed)
    var scalars: [Float] = [], labels: [Int] = []
    for index in 0..<count {
      let label = index % classes
      for d in 0..<8 { scalars.append((d == label ? 3 : 0) + 0.3 * rng.nextNormal()) }
      labels.append(label)
    }
    return (FeatureMatrix(rows: count, columns: 8, scalars: scalars), labels)
  }

  static func optimization(_ method: ProbeOptimization.Method, epochs: Int) -> ProbeOptimization {
    method == .sgd
      ? ProbeOptimization(method: .sgd, learningRate: 0.1, momentum: 0.9, weightDecay: 1e-4, nesterov: true,
                          schedule: .init(.step(milestones: [epochs * 2 / 3], gamma: 0.1)), epochs: epochs)
      // MMSelfSup LARS moves a tensor by about lr · 0.001 · ‖w‖ per step (trust ratio), so this 8-d toy problem
      // needs a large rate and more epochs than SGD.
      : ProbeOptimization(method: .lars, learningRate: 10, momentum: 0.9, weightDecay: 0,
                          nesterov: false, schedule: .init(.cosine(minimum: 0)), epochs: epochs)
  }

  @Test(arguments: [(ProbeKind.mhead, ProbeOptimization.Method.sgd, 15), (.avgpool, .sgd, 15), (.avgpool, .lars, 60)])
  func linearlySeparableFeaturesAreClassifiedPerfectly(_ kind: ProbeKind, _ method: ProbeOptimization.Method,
                                                       _ epochs: Int) throws {
    let (train, trainLabels) = Self.separable(count: 240, classes: 4, seed: 1)
    let (test, testLabels) = Self.separable(count: 80, classes: 4, seed: 2)
    let input = kind == .mhead ? ProbeInput(layer: .feature5, channels: 2, grid: 2)
      : ProbeInput(layer: .avgpool, channels: 8, grid: 1)
    var rng = SplitMix64(seed: 3)
    let probe = LinearProbe(kind: kind, inputs: [input], classCount: 4,
                            optimization: Self.optimization(method, epochs: epochs), using: &rng)
    var reports: [ProbeEpochReport] = []
    try ProbeTrainer(batchSize: 32, evaluationInterval: 5, seed: 0)
      .train(probe, data: CachedProbeFeatures(matrices: [train], labels: trainLabels), test: [test],
             testLabels: testLabels) { reports.append($0) }
    #expect(reports.map(\.epoch) == Array(1...epochs))
    #expect(reports.map { $0.hits != nil } == (1...epochs).map { $0 % 5 == 0 })
    let final = try #require(reports.last?.hits?.first)
    #expect(final.count == 80)
    #expect(final.top1 == 80, "top-1 \(final.top1Percent) % on separable data")
    #expect(reports.last!.losses[0] < reports.first!.losses[0])
    let trainHits = ProbeTrainer.evaluate(probe, features: [train], labels: trainLabels)
    #expect(trainHits[0].top1 == 240)
  }

  @Test func resumingFromACheckpointContinuesExactly() throws {
    let (train, labels) = Self.separable(count: 96, classes: 3, seed: 4)
    let inputs = [ProbeInput(layer: .feature4, channels: 2, grid: 2), ProbeInput(layer: .feature5, channels: 2, grid: 2)]
    func makeProbe() -> LinearProbe {
      var rng = SplitMix64(seed: 9)
      return LinearProbe(kind: .mhead, inputs: inputs, classCount: 3, optimization: Self.optimization(.sgd, epochs: 4),
                         using: &rng)
    }
    let data = CachedProbeFeatures(matrices: [train, train], labels: labels)
    let trainer = ProbeTrainer(batchSize: 20, evaluationInterval: 1, seed: 7)
    let straight = makeProbe()
    try trainer.train(straight, data: data, test: [train, train], testLabels: labels) { _ in }

    let first = makeProbe()
    var saved: SafeTensors?
    try trainer.train(first, data: data, test: [train, train], testLabels: labels) { report in
      if report.epoch == 2 { saved = first.checkpoint(metadata: ["note": "test"]) }
    }
    let file = try #require(saved)
    #expect(file.metadata["epoch"] == "2")
    #expect(file.tensors["optimizer.momentum_buffer.head.fcs.1.weight"] != nil)
    // Round trip through the encoded bytes, as a file would.
    let decoded = try SafeTensors(decoding: file.encoded(), path: "memory")
    let resumed = makeProbe()
    try resumed.restore(decoded, source: "memory")
    #expect(resumed.completedEpochs == 2)
    try trainer.train(resumed, data: data, test: [train, train], testLabels: labels) { _ in }
    for (a, b) in zip(straight.namedParameters, resumed.namedParameters) {
      #expect(a.parameter.value == b.parameter.value, "\(a.name) differs after resume")
    }
  }

  @Test func hitsRankEqualLogitsByClassIndex() {
    var hits = ProbeHits()
    // Row 0: label 2 has the top logit. Row 1: label 1 ties with class 0 → rank 1 (miss top-1, hit top-5).
    // Row 2: 6 classes, label 5 is the 6th best → misses top-5.
    let logits = Tensor(shape: [3, 6], scalars: [0, 1, 5, 2, 3, 4,
                                                 4, 4, 1, 0, 0, 0,
                                                 6, 5, 4, 3, 2, 1])
    countHits(logits: logits, labels: [2, 1, 5], into: &hits)
    #expect(hits == ProbeHits(top1: 1, top5: 2, count: 3))
  }

  @Test func stepAndCosineSchedulesArePerEpoch() {
    var rng = SplitMix64(seed: 1)
    let probe = LinearProbe(kind: .mhead, inputs: [ProbeInput(layer: .feature5, channels: 1, grid: 2)], classCount: 2,
                            optimization: ProbeOptimization(method: .sgd, learningRate: 0.01, momentum: 0.9,
                                                            weightDecay: 1e-4, nesterov: true,
                                                            schedule: .init(.step(milestones: [30, 60, 90], gamma: 0.1)),
                                                            epochs: 90), using: &rng)
    let rates = [0, 29, 30, 59, 60, 89].map { epoch -> Float in probe.beginEpoch(epoch); return probe.learningRate }
    #expect(rates.map { Double($0) }.elementsEqual([0.01, 0.01, 0.001, 0.001, 0.0001, 0.0001],
                                                   by: { abs($0 - $1) < 1e-9 }))
  }
}
