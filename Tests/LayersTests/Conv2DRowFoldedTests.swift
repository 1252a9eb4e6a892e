import Testing
import Tensors
@testable import Layers
import TestSupport

/// The row-folded path (Conv2D+RowFolded.swift) against the im2col paths and against finite differences.
@Suite struct Conv2DRowFoldedTests {
  /// (kernel, padding, hasBias, in, out): stride 1, undilated — the only convolutions the path takes — with padding
  /// below, at and above k/2 and a 1-channel input like the quick config's stem.
  static let configurations: [(Int, Int, Bool, Int, Int)] = [
    (3, 1, false, 3, 4), (3, 1, true, 5, 2), (3, 0, false, 3, 4), (3, 2, true, 2, 3), (5, 2, false, 3, 4),
    (2, 1, false, 4, 3), (3, 1, false, 1, 16), (7, 3, true, 2, 2),
  ]

  /// y, dx and dW of one forward and backward with a seeded dy, under the given row-folding mode.
  private func run(_ conv: Conv2D, _ x: Tensor, folding: Conv2D.RowFoldingMode) -> (Tensor, Tensor, Tensor) {
    conv.rowFoldingMode = folding
    conv.zeroGrad()
    var rng = SplitMix64(seed: 31)
    let (y, cache) = conv.forward(x, mode: .training)
    let dx = conv.backward(.randomNormal(y.shape, using: &rng), cache)
    return (y, dx, conv.weight.grad)
  }

  @Test(arguments: configurations)
  func matchesTheIm2colPaths(configuration: (Int, Int, Bool, Int, Int)) {
    let (k, p, hasBias, cin, cout) = configuration
    var rng = SplitMix64(seed: 32)
    let conv = Conv2D(inChannels: cin, outChannels: cout, kernelSize: k, padding: p, hasBias: hasBias, using: &rng)
    let x = Tensor.randomNormal([3, 7, 6, cin], using: &rng)  // non-square, so rows and columns cannot be swapped
    for pipeline in [Conv2D.PipelineMode.never, .always] {
      conv.pipelineMode = pipeline
      let (y, dx, dW) = run(conv, x, folding: .never)
      let (foldedY, foldedDx, foldedDW) = run(conv, x, folding: .always)
      expectClose(foldedY, y, rtol: 1e-5, atol: 1e-5, "y")
      expectClose(foldedDx, dx, rtol: 1e-5, atol: 1e-5, "dx")
      expectClose(foldedDW, dW, rtol: 1e-5, atol: 1e-5, "dW")
    }
  }

  @Test(arguments: configurations)
  func backwardMatchesFiniteDifferences(configuration: (Int, Int, Bool, Int, Int)) {
    let (k, p, hasBias, cin, cout) = configuration
    var rng = SplitMix64(seed: 33)
    let conv = Conv2D(inChannels: cin, outChannels: cout, kernelSize: k, padding: p, hasBias: hasBias, using: &rng)
    conv.rowFoldingMode = .always
    let x = Parameter(.randomNormal([2, 6, 5, cin], using: &rng))
    expectLayerGradientsMatch(input: x, parameters: [("weight", conv.weight)], using: &rng,
                              forward: { conv.forward($0, mode: .training) }, backward: conv.backward)
  }

  @Test func handComputedRowWithPadding() {
    // One 1×4 row, 1 channel, kernel 3 of weights (1, 2, 3) in the middle kernel row only, padding 1:
    // y[ox] = 1·x[ox−1] + 2·x[ox] + 3·x[ox+1] with zeros outside; x = (1, 2, 3, 4) → (8, 14, 20, 11).
    var rng = SplitMix64(seed: 34)
    let conv = Conv2D(inChannels: 1, outChannels: 1, kernelSize: 3, padding: 1, using: &rng)
    conv.weight.value = Tensor(shape: [1, 3, 3, 1], scalars: [0, 0, 0, 1, 2, 3, 0, 0, 0])
    conv.rowFoldingMode = .always
    let y = conv(Tensor(shape: [1, 1, 4, 1], scalars: [1, 2, 3, 4]))
    #expect(y == Tensor(shape: [1, 1, 4, 1], scalars: [8, 14, 20, 11]))
  }

  @Test func onlyStrideOneUndilatedSmallLayersFold() {
    var rng = SplitMix64(seed: 35)
    let small = Conv2D(inChannels: 16, outChannels: 16, kernelSize: 3, padding: 1, using: &rng)
    let wide = Conv2D(inChannels: 16, outChannels: 64, kernelSize: 3, padding: 1, using: &rng)
    let strided = Conv2D(inChannels: 16, outChannels: 16, kernelSize: 3, stride: 2, padding: 1, using: &rng)
    let shape = [64, 32, 32, 16]
    let geometry = { (conv: Conv2D) in
      ConvGeometry(inputShape: shape, kernelSize: conv.kernelSize, stride: conv.stride, padding: conv.padding)
    }
    for conv in [small, wide, strided] { conv.rowFoldingMode = .automatic }
    #expect(small.usesRowFolding(geometry(small), outputs: 16) == (Conv2D.rowFoldingMaximumOutput >= 16))
    #expect(!wide.usesRowFolding(geometry(wide), outputs: 64) || Conv2D.rowFoldingMaximumOutput >= 64)
    #expect(!strided.usesRowFolding(geometry(strided), outputs: 16))
    small.rowFoldingMode = .always
    strided.rowFoldingMode = .always
    #expect(small.usesRowFolding(geometry(small), outputs: 16))
    #expect(!strided.usesRowFolding(geometry(strided), outputs: 16))
  }
}
