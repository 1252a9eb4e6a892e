import Foundation
import Testing
import Layers
import Tensors
import TestSupport
@testable import Evaluation

/// The probe head: gradient of pool → BN → Linear → CE, BN statistics in training vs test, layout helpers.
@Suite struct ProbeHeadTests {
  /// Softmax cross-entropy averaged over rows, in Double (F.cross_entropy, reduction='mean').
  static func crossEntropyDouble(_ logits: Tensor, _ labels: [Int]) -> Double {
    let classes = logits.shape[1]
    var total = 0.0
    for (row, label) in labels.enumerated() {
      let values = (0..<classes).map { Double(logits.scalars[row * classes + $0]) }
      let top = values.max()!
      total += Foundation.log(values.map { Foundation.exp($0 - top) }.reduce(0, +)) + top - values[label]
    }
    return total / Double(labels.count)
  }

  /// Checks ∂CE/∂W, ∂CE/∂b and ∂CE/∂x through pooling of `layer` on a [2, side, side, 3] map.
  func checkComposite(layer: FeatureLayer, rule: FeaturePooling, side: Int, usesBatchNorm: Bool) {
    var rng = SplitMix64(seed: 11)
    let channels = 3, classes = 4
    let grid = layer == .avgpool ? 1 : FeaturePooling.gridSizes[layer.stageIndex]
    let input = Parameter(.randomNormal([2, side, side, channels], std: 1, using: &rng))
    let head = ProbeHead(layer: layer, channels: channels, grid: grid, classCount: classes,
                         usesBatchNorm: usesBatchNorm, initStd: 0.5, using: &rng)
    head.linear.bias!.value = .randomNormal([classes], std: 0.3, using: &rng)
    let pooling = ProbePooling(rule: rule, layer: layer)
    let labels = [1, 3]

    func loss() -> Double {
      let (flat, _) = pooling.forward(input.value)
      let (logits, _) = head.forward(flat, mode: .training)
      return Self.crossEntropyDouble(logits, labels)
    }
    head.linear.zeroGrad()
    let (flat, poolCache) = pooling.forward(input.value)
    #expect(flat.shape == [2, channels * grid * grid])
    let (logits, headCache) = head.forward(flat, mode: .training)
    let (_, dLogits) = crossEntropy(logits: logits, labels: labels)
    let dFlat = head.backward(dLogits, headCache)
    input.grad = pooling.backward(dFlat, poolCache)
    expectGradientsMatch(loss, wrt: head.linear.weight, named: "\(layer) fc.weight", step: 1e-2, tolerance: 2e-2)
    expectGradientsMatch(loss, wrt: head.linear.bias!, named: "\(layer) fc.bias", step: 1e-2, tolerance: 2e-2)
    expectGradientsMatch(loss, wrt: input, named: "\(layer) input", step: 1e-2, tolerance: 3e-2, scaleFloor: 1e-3)
  }

  @Test func gradientThroughSpecifiedPoolBatchNormLinearCrossEntropy() {
    // feature5's MMSelfSup kernel: AvgPool2d(6, 1) on a 7×7 map → 2×2 grid.
    checkComposite(layer: .feature5, rule: .specified, side: 7, usesBatchNorm: true)
  }

  @Test func gradientThroughAdaptivePoolBatchNormLinearCrossEntropy() {
    // feature4: adaptive 5×5 → 3×3 grid (overlapping bins).
    checkComposite(layer: .feature4, rule: .adaptive, side: 5, usesBatchNorm: true)
  }

  @Test func gradientThroughGlobalPoolLinearCrossEntropy() {
    checkComposite(layer: .avgpool, rule: .adaptive, side: 4, usesBatchNorm: false)
  }

  @Test func batchNormUsesBatchStatisticsInTrainingAndRunningOnesAtTest() {
    var rng = SplitMix64(seed: 3)
    // One channel on a 2×2 grid, two images: values 1…8 (NCHW flat = the 4 positions of each image).
    let head = ProbeHead(layer: .feature5, channels: 1, grid: 2, classCount: 1, usesBatchNorm: true, using: &rng)
    head.linear.weight.value = Tensor(shape: [1, 4], scalars: [1, 0, 0, 0])  // logit = normalised position 0
    let x = Tensor(shape: [2, 4], scalars: [1, 2, 3, 4, 5, 6, 7, 8])
    let (training, _) = head.forward(x, mode: .training)
    // Batch mean 4.5, biased variance Σ(v − 4.5)²/8 = 5.25; image 0 position 0: (1 − 4.5)/√(5.25 + 1e-5).
    #expect(abs(training.scalars[0] - Float(-3.5 / (5.25 + 1e-5).squareRoot())) < 1e-5)
    // Running statistics moved by momentum 0.1 towards mean 4.5 and unbiased variance 5.25 · 8/7 = 6.
    #expect(abs(head.norm!.runningMean.value.scalars[0] - 0.45) < 1e-6)
    #expect(abs(head.norm!.runningVar.value.scalars[0] - (0.9 + 0.1 * 6)) < 1e-5)
    let (test, _) = head.forward(x, mode: .inference)
    #expect(abs(test.scalars[1] - Float((5 - 0.45) / (1.5 + 1e-5).squareRoot())) < 1e-5)
  }

  @Test func flatNCHWRoundTripsWithNHWC() {
    var rng = SplitMix64(seed: 5)
    let x = Tensor.randomNormal([2, 3, 3, 4], std: 1, using: &rng)
    let flat = nhwcToFlatNCHW(x)
    #expect(flatNCHWToNHWC(flat, channels: 4, grid: 3) == x)
    // Element (image 1, h 2, w 0, c 3) sits at channel-major index 3·9 + 2·3 + 0 in row 1.
    #expect(flat.scalars[36 + 27 + 6] == x.scalars[36 + (2 * 3 + 0) * 4 + 3])
  }

  @Test func headNamesFollowMMSelfSup() {
    var rng = SplitMix64(seed: 1)
    let optimization = ProbeOptimization(method: .sgd, learningRate: 0.01, momentum: 0.9, weightDecay: 1e-4,
                                         nesterov: true, schedule: .init(.step(milestones: [30, 60], gamma: 0.1)),
                                         epochs: 90)
    let mhead = LinearProbe(kind: .mhead, inputs: [ProbeInput(layer: .feature1, channels: 2, grid: 12),
                                                   ProbeInput(layer: .feature5, channels: 4, grid: 2)],
                            classCount: 3, optimization: optimization, using: &rng)
    #expect(mhead.namedParameters.map(\.name) == [
      "head.norms.0.running_mean", "head.norms.0.running_var", "head.norms.0.num_batches_tracked",
      "head.fcs.0.weight", "head.fcs.0.bias",
      "head.norms.1.running_mean", "head.norms.1.running_var", "head.norms.1.num_batches_tracked",
      "head.fcs.1.weight", "head.fcs.1.bias",
    ])
    #expect(mhead.heads[0].linear.weight.value.shape == [3, 288])
    let avgpool = LinearProbe(kind: .avgpool, inputs: [ProbeInput(layer: .avgpool, channels: 8, grid: 1)],
                              classCount: 3, optimization: optimization, using: &rng)
    #expect(avgpool.namedParameters.map(\.name) == ["head.fc_cls.weight", "head.fc_cls.bias"])
    // N(0, 0.01²) weights, zero bias.
    let weights = mhead.heads[0].linear.weight.value.scalars
    let std = (weights.map { Double($0 * $0) }.reduce(0, +) / Double(weights.count)).squareRoot()
    #expect(abs(std - 0.01) < 0.002)
    #expect(mhead.heads[0].linear.bias!.value.scalars.allSatisfy { $0 == 0 })
  }
}
