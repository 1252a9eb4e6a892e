import Testing
import Tensors
import TestSupport
import Layers

@Suite struct LinearTests {
  @Test(arguments: [true, false])
  func backwardMatchesFiniteDifferences(hasBias: Bool) {
    var rng = SplitMix64(seed: 21)
    let linear = Linear(inFeatures: 4, outFeatures: 3, hasBias: hasBias, using: &rng)
    let x = Parameter(.randomNormal([2, 4], using: &rng))
    let (y, cache) = linear.forward(x.value, mode: .training)
    let dy = Tensor.randomNormal(y.shape, using: &rng)
    x.grad = linear.backward(dy, cache)

    let loss = { linear(x.value, mode: .training).dot(dy) }
    expectGradientsMatch(loss, wrt: x, named: "x")
    expectGradientsMatch(loss, wrt: linear.weight, named: "weight")
    if let bias = linear.bias { expectGradientsMatch(loss, wrt: bias, named: "bias") }
  }

  @Test func forwardIsXTimesWeightTransposedPlusBias() {
    var rng = SplitMix64(seed: 0)
    let linear = Linear(inFeatures: 2, outFeatures: 3, using: &rng)
    linear.weight.value = Tensor(shape: [3, 2], scalars: [1, 2, 3, 4, 5, 6])
    linear.bias!.value = Tensor(shape: [3], scalars: [0.5, -1, 0])
    let x = Tensor(shape: [2, 2], scalars: [1, 1, 2, -1])
    // Row [1, 1]: [3, 7, 11] + b; row [2, −1]: [0, 2, 4] + b.
    #expect(linear(x) == Tensor(shape: [2, 3], scalars: [3.5, 6, 11, 0.5, 1, 4]))
  }

  @Test func pytorchDefaultInitialisationIsUniformWithinOneOverRootFanIn() {
    var rng = SplitMix64(seed: 1)
    let linear = Linear(inFeatures: 16, outFeatures: 64, using: &rng)
    let bound: Float = 0.25  // 1/√16
    #expect(linear.weight.value.shape == [64, 16] && linear.bias!.value.shape == [64])
    #expect(linear.weight.value.scalars.allSatisfy { abs($0) <= bound })
    #expect(linear.bias!.value.scalars.allSatisfy { abs($0) <= bound })
    // U(±b) has mean |w| = b/2; 1024 draws put the sample within a few percent of 0.125.
    let meanAbs = linear.weight.value.scalars.map { abs($0) }.reduce(0, +) / 1024
    #expect(abs(meanAbs - bound / 2) < 0.01)
    #expect(linear.namedParameters.map(\.name) == ["weight", "bias"])
  }

  @Test func normalInitialisationHasZeroBiasAndTheGivenStd() {
    var rng = SplitMix64(seed: 2)
    let linear = Linear(inFeatures: 64, outFeatures: 64, initialization: .normal(std: 0.01), using: &rng)
    #expect(linear.bias!.value.scalars.allSatisfy { $0 == 0 })
    let scalars = linear.weight.value.scalars
    let std = (scalars.map { Double($0 * $0) }.reduce(0, +) / Double(scalars.count)).squareRoot()
    #expect(abs(std - 0.01) < 0.0005)
    let noBias = Linear(inFeatures: 3, outFeatures: 2, hasBias: false, using: &rng)
    #expect(noBias.namedParameters.map(\.name) == ["weight"] && noBias.bias == nil)
  }

  @Test func gradientsAccumulateAndFrozenWeightsAreSkipped() {
    var rng = SplitMix64(seed: 4)
    let linear = Linear(inFeatures: 3, outFeatures: 2, using: &rng)
    let x = Tensor.randomNormal([2, 3], using: &rng)
    let dy = Tensor.randomNormal([2, 2], using: &rng)
    let (_, cache) = linear.forward(x, mode: .training)
    _ = linear.backward(dy, cache)
    let once = linear.weight.grad
    _ = linear.backward(dy, cache)
    expectClose(linear.weight.grad, 2 * once, "weight grad after two backward calls")
    linear.zeroGrad()
    linear.weight.isTrainable = false
    let dx = linear.backward(dy, cache)
    #expect(linear.weight.grad.scalars.allSatisfy { $0 == 0 })
    #expect(dx.shape == [2, 3])
  }
}
