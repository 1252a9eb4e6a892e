import Foundation
import Testing
import Tensors
import TestSupport
@testable import Layers

/// A non-trivial BN: random γ, β and running statistics, so no term of the gradient vanishes by accident.
private func makeBatchNorm(channels: Int, isAffine: Bool, fusesReLU: Bool, rng: inout SplitMix64) -> BatchNorm {
  let bn = BatchNorm(channels: channels, isAffine: isAffine)
  bn.fusesReLU = fusesReLU
  if let weight = bn.weight { weight.value = .randomUniform([channels], low: 0.5, high: 1.5, using: &rng) }
  if let bias = bn.bias { bias.value = .randomUniform([channels], low: -0.5, high: 0.5, using: &rng) }
  bn.runningMean.value = .randomNormal([channels], std: 0.5, using: &rng)
  bn.runningVar.value = .randomUniform([channels], low: 0.5, high: 2, using: &rng)
  return bn
}

/// Runs `forward` and puts the running statistics back, so a gradient check's loss has no side effects.
private func forwardWithoutSideEffects(_ bn: BatchNorm, _ x: Tensor, mode: Mode) -> Tensor {
  let saved = (bn.runningMean.value, bn.runningVar.value, bn.numBatchesTracked.value)
  defer { (bn.runningMean.value, bn.runningVar.value, bn.numBatchesTracked.value) = saved }
  return bn.forward(x, mode: mode).0
}

/// Double-precision reference of training-mode BN forward and backward on rows [m, c].
private func referenceTrainingBatchNorm(x: [Float], dy: [Float], m: Int, c: Int, gamma: [Float], beta: [Float],
                                        epsilon: Double)
  -> (y: [Float], dx: [Float], mean: [Double], variance: [Double]) {
  var y = [Float](repeating: 0, count: m * c), dx = y
  var means = [Double](repeating: 0, count: c), variances = means
  for ch in 0..<c {
    var mean = 0.0
    for r in 0..<m { mean += Double(x[r * c + ch]) }
    mean /= Double(m)
    var variance = 0.0
    for r in 0..<m { variance += (Double(x[r * c + ch]) - mean) * (Double(x[r * c + ch]) - mean) }
    variance /= Double(m)
    let invStd = 1 / (variance + epsilon).squareRoot()
    var sumDy = 0.0, sumDyXHat = 0.0
    for r in 0..<m {
      let xHat = (Double(x[r * c + ch]) - mean) * invStd
      y[r * c + ch] = Float(Double(gamma[ch]) * xHat + Double(beta[ch]))
      sumDy += Double(dy[r * c + ch])
      sumDyXHat += Double(dy[r * c + ch]) * xHat
    }
    for r in 0..<m {
      let xHat = (Double(x[r * c + ch]) - mean) * invStd
      let g = Double(dy[r * c + ch]) - sumDy / Double(m) - xHat * sumDyXHat / Double(m)
      dx[r * c + ch] = Float(Double(gamma[ch]) * invStd * g)
    }
    means[ch] = mean
    variances[ch] = variance
  }
  return (y, dx, means, variances)
}

@Suite struct BatchNormTests {
  static let shapes: [[Int]] = [[4, 3], [2, 3, 3, 3]]  // BatchNorm1d [n, c]; BatchNorm2d NHWC [n, h, w, c]

  @Test(arguments: shapes, [true, false])
  func trainingBackwardMatchesFiniteDifferences(shape: [Int], isAffine: Bool) {
    checkGradients(shape: shape, isAffine: isAffine, fusesReLU: false, mode: .training)
  }

  @Test(arguments: shapes, [true, false])
  func trainingBackwardWithFusedReLUMatchesFiniteDifferences(shape: [Int], isAffine: Bool) {
    checkGradients(shape: shape, isAffine: isAffine, fusesReLU: true, mode: .training)
  }

  @Test(arguments: shapes, [true, false])
  func inferenceBackwardMatchesFiniteDifferences(shape: [Int], isAffine: Bool) {
    checkGradients(shape: shape, isAffine: isAffine, fusesReLU: false, mode: .inference)
  }

  @Test(arguments: shapes, [true, false])
  func inferenceBackwardWithFusedReLUMatchesFiniteDifferences(shape: [Int], isAffine: Bool) {
    checkGradients(shape: shape, isAffine: isAffine, fusesReLU: true, mode: .inference)
  }

  private func checkGradients(shape: [Int], isAffine: Bool, fusesReLU: Bool, mode: Mode,
                              sourceLocation: SourceLocation = #_sourceLocation) {
    var rng = SplitMix64(seed: 11)
    let channels = shape.last!
    let bn = makeBatchNorm(channels: channels, isAffine: isAffine, fusesReLU: fusesReLU, rng: &rng)
    let x = Parameter(.randomNormal(shape, mean: 0.3, std: 1.2, using: &rng))
    if fusesReLU {
      // Keep every pre-activation γx̂ + β clear of the ReLU kink: a step of h in β (or h·x̂ in γ) moves all of a
      // channel's pre-activations at once, and one crossing inside ±h biases the slope without being detected.
      bn.fusesReLU = false
      while forwardWithoutSideEffects(bn, x.value, mode: mode).scalars.contains(where: { abs($0) < 0.05 }) {
        x.value = .randomNormal(shape, mean: 0.3, std: 1.2, using: &rng)
      }
      bn.fusesReLU = true
    }
    let dy = Tensor.randomNormal(shape, using: &rng)
    let savedStatistics = (bn.runningMean.value, bn.runningVar.value)
    let (_, cache) = bn.forward(x.value, mode: mode)
    (bn.runningMean.value, bn.runningVar.value) = savedStatistics
    x.grad = bn.backward(dy, cache)

    let loss = { forwardWithoutSideEffects(bn, x.value, mode: mode).dot(dy) }
    expectGradientsMatch(loss, wrt: x, named: "x", sourceLocation: sourceLocation)
    if let weight = bn.weight, let bias = bn.bias {
      expectGradientsMatch(loss, wrt: weight, named: "weight", sourceLocation: sourceLocation)
      expectGradientsMatch(loss, wrt: bias, named: "bias", sourceLocation: sourceLocation)
    }
  }

  @Test func runningStatisticsAfterOneTrainingStepUseUnbiasedVariance() {
    // Channel 0 = [1, 3, 5, 7]: mean 4, biased var 5, unbiased var 20/3.
    // Channel 1 = [2, 6, 10, 2]: mean 5, biased var 11, unbiased var 44/3.
    // torch.nn.BatchNorm1d(2) after one step (momentum 0.1): running_mean = 0.1·mean,
    // running_var = 0.9 + 0.1·unbiased var.
    let x = Tensor(shape: [4, 2], scalars: [1, 2, 3, 6, 5, 10, 7, 2])
    let bn = BatchNorm(channels: 2)
    let (y, _) = bn.forward(x, mode: .training)
    expectClose(bn.runningMean.value, Tensor(shape: [2], scalars: [0.4, 0.5]), "running_mean")
    expectClose(bn.runningVar.value, Tensor(shape: [2], scalars: [0.9 + 2 / 3.0, 0.9 + 4.4 / 3.0]), "running_var")
    #expect(bn.numBatchesTracked.value.scalars == [1])
    // y = (x − mean)/√(biased var + ε), γ = 1, β = 0.
    let expected: [Float] = [1, 2, 3, 6, 5, 10, 7, 2].enumerated().map { i, v in
      i % 2 == 0 ? (v - 4) / (5 + 1e-5).squareRoot() : (v - 5) / (11 + 1e-5).squareRoot()
    }
    expectClose(y, Tensor(shape: [4, 2], scalars: expected), rtol: 1e-5, atol: 1e-6, "y")
  }

  @Test func batchNorm2DReducesOverBatchAndSpace() {
    // NHWC [2, 1, 2, 1]: the four values of the single channel are [1, 3, 5, 7] (mean 4, unbiased var 20/3).
    let x = Tensor(shape: [2, 1, 2, 1], scalars: [1, 3, 5, 7])
    let bn = BatchNorm(channels: 1, momentum: 0.5)
    _ = bn.forward(x, mode: .training)
    expectClose(bn.runningMean.value, Tensor(shape: [1], scalars: [2]), "running_mean")
    expectClose(bn.runningVar.value, Tensor(shape: [1], scalars: [0.5 + 10 / 3.0]), "running_var")
  }

  @Test func numBatchesTrackedCountsTrainingStepsOnly() {
    let bn = BatchNorm(channels: 2)
    let x = Tensor(shape: [2, 2], scalars: [1, 2, 3, 5])
    _ = bn.forward(x, mode: .training)
    _ = bn.forward(x, mode: .training)
    _ = bn.forward(x, mode: .inference)
    #expect(bn.numBatchesTracked.value.scalars == [2])
    #expect(bn.numBatchesTracked.value.shape == [])
    #expect(bn.numBatchesTracked.storageType == .int64)
    #expect(bn.numBatchesTracked.isBuffer)
  }

  @Test func inferenceUsesRunningStatistics() {
    let bn = BatchNorm(channels: 2)
    bn.runningMean.value = Tensor(shape: [2], scalars: [1, -2])
    bn.runningVar.value = Tensor(shape: [2], scalars: [4 - 1e-5, 0.25 - 1e-5])  // σ = 2 and 0.5
    bn.weight!.value = Tensor(shape: [2], scalars: [3, 1])
    bn.bias!.value = Tensor(shape: [2], scalars: [0.5, 0])
    let x = Tensor(shape: [2, 2], scalars: [5, -2, 1, -1])
    let (y, _) = bn.forward(x, mode: .inference)
    // ch0: 3·(x − 1)/2 + 0.5 → [6.5, 0.5]; ch1: (x + 2)/0.5 → [0, 2].
    expectClose(y, Tensor(shape: [2, 2], scalars: [6.5, 0, 0.5, 2]), rtol: 1e-5, atol: 1e-5, "y")
    #expect(bn.runningMean.value.scalars == [1, -2])
    #expect(bn.numBatchesTracked.value.scalars == [0])

    let (scale, shift) = bn.foldedScaleShift()
    let folded = Tensor(shape: [2, 2], scalars: (0..<4).map { x.scalars[$0] * scale[$0 % 2] + shift[$0 % 2] })
    expectClose(folded, y, rtol: 1e-6, atol: 1e-6, "folded")
  }

  @Test(arguments: [Mode.training, .inference])
  func fusedReLUEqualsReLUOfOutput(mode: Mode) {
    var rng = SplitMix64(seed: 3)
    let plain = makeBatchNorm(channels: 3, isAffine: true, fusesReLU: false, rng: &rng)
    let fused = BatchNorm(channels: 3)
    fused.fusesReLU = true
    fused.weight!.value = plain.weight!.value
    fused.bias!.value = plain.bias!.value
    fused.runningMean.value = plain.runningMean.value
    fused.runningVar.value = plain.runningVar.value
    let x = Tensor.randomNormal([2, 2, 2, 3], using: &rng)
    #expect(fused(x, mode: mode) == relu(plain(x, mode: mode)))
  }

  @Test func namedParametersFollowStateDictOrder() {
    #expect(BatchNorm(channels: 4).namedParameters.map(\.name)
            == ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"])
    let plain = BatchNorm(channels: 4, isAffine: false)
    #expect(plain.namedParameters.map(\.name) == ["running_mean", "running_var", "num_batches_tracked"])
    #expect(plain.weight == nil && plain.bias == nil)
    let bn = BatchNorm(channels: 4)
    #expect(bn.weight!.value.scalars == [1, 1, 1, 1] && bn.bias!.value.scalars == [0, 0, 0, 0])
    #expect(bn.runningMean.value.scalars == [0, 0, 0, 0] && bn.runningVar.value.scalars == [1, 1, 1, 1])
    #expect(bn.runningMean.isBuffer && bn.runningVar.isBuffer && !bn.weight!.isBuffer)
  }

  @Test func varianceIsAccurateWhenTheMeanIsLarge() {
    // One-pass Σx² − (Σx)²/m in Float would lose the variance of 1 under a mean of 10⁴.
    let x = Tensor(shape: [4, 1], scalars: [10_001, 9_999, 10_001, 9_999])
    let bn = BatchNorm(channels: 1, momentum: 1)
    let (y, _) = bn.forward(x, mode: .training)
    expectClose(bn.runningMean.value, Tensor(shape: [1], scalars: [10_000]), "running_mean")
    expectClose(bn.runningVar.value, Tensor(shape: [1], scalars: [4 / 3.0]), rtol: 1e-6, "running_var")
    expectClose(y, Tensor(shape: [4, 1], scalars: [1, -1, 1, -1]), rtol: 1e-4, atol: 1e-5, "y")
  }

  /// Large enough for several row groups and Float blocks (and threads): checked against a Double reference.
  @Test func manyRowsMatchDoubleReference() {
    var rng = SplitMix64(seed: 5)
    let (m, c) = (8 * 32 * 32, 5)
    let bn = makeBatchNorm(channels: c, isAffine: true, fusesReLU: false, rng: &rng)
    bn.runningMean.value = .zeros([c])
    bn.runningVar.value = Tensor(repeating: 1, shape: [c])
    let x = Tensor.randomNormal([8, 32, 32, c], mean: 2, std: 3, using: &rng)
    let dy = Tensor.randomNormal(x.shape, using: &rng)
    let (y, cache) = bn.forward(x, mode: .training)
    let dx = bn.backward(dy, cache)
    let reference = referenceTrainingBatchNorm(x: x.scalars, dy: dy.scalars, m: m, c: c,
                                               gamma: bn.weight!.value.scalars, beta: bn.bias!.value.scalars,
                                               epsilon: 1e-5)
    expectClose(y, Tensor(shape: x.shape, scalars: reference.y), rtol: 1e-4, atol: 1e-4, "y")
    expectClose(dx, Tensor(shape: x.shape, scalars: reference.dx), rtol: 1e-3, atol: 1e-6, "dx")
    let expectedMean = reference.mean.map { Float(0.1 * $0) }
    let expectedVar = reference.variance.map { Float(0.9 + 0.1 * $0 * Double(m) / Double(m - 1)) }
    expectClose(bn.runningMean.value, Tensor(shape: [c], scalars: expectedMean), rtol: 1e-5, atol: 1e-6, "mean")
    expectClose(bn.runningVar.value, Tensor(shape: [c], scalars: expectedVar), rtol: 1e-5, atol: 1e-6, "var")
  }

  @Test func backwardAccumulatesAndSkipsFrozenParameters() {
    var rng = SplitMix64(seed: 9)
    let bn = makeBatchNorm(channels: 3, isAffine: true, fusesReLU: false, rng: &rng)
    let x = Tensor.randomNormal([4, 3], using: &rng)
    let dy = Tensor.randomNormal([4, 3], using: &rng)
    let (_, cache) = bn.forward(x, mode: .training)
    _ = bn.backward(dy, cache)
    let once = bn.bias!.grad
    _ = bn.backward(dy, cache)
    expectClose(bn.bias!.grad, 2 * once, "bias grad after two backward calls")
    bn.zeroGrad()
    bn.weight!.isTrainable = false
    bn.bias!.isTrainable = false
    _ = bn.backward(dy, cache)
    #expect(bn.weight!.grad.scalars.allSatisfy { $0 == 0 } && bn.bias!.grad.scalars.allSatisfy { $0 == 0 })
  }
}
