import Testing
import Tensors
@testable import Layers
import TestSupport

/// Winograd F(2×2, 3×3) (Sources/CConvKernels/Winograd3x3.c, chosen in Conv2D+Direct.swift) for the forward and dx
/// of 3×3 stride-1 layers: against Double oracles of the convolution (the transforms change the rounding, so every
/// element is judged against Σ|terms|), a hand-computed case that is exact in float, the direct kernel and the
/// im2col paths, and the same bits under any banding or thread count.
@Suite(.enabled(if: Conv2D.cpuRunsDirectKernel, "the Winograd kernel needs AVX2 and FMA"))
struct Conv2DWinogradTests {
  /// (batch, height, width, in, out, hasBias): even sizes only (whole 2×2 tiles); 8…136 channels (16-channel output
  /// blocks, a trailing 8-channel one, both), one tile (2×2), a single tile row or column, tiles per row below, at
  /// and above the 6-tile register block, and 136 × 136 (several tile chunks per call); layers wider than
  /// `directMaximumChannels` take `wideWinogradConvolution` (the products as sgemm calls).
  static let shapes: [(Int, Int, Int, Int, Int, Bool)] = [
    (1, 2, 2, 8, 8, false), (3, 4, 6, 8, 16, true), (2, 6, 14, 16, 24, false), (2, 10, 32, 16, 16, true),
    (2, 8, 8, 64, 64, true), (3, 2, 12, 32, 8, false), (2, 4, 4, 24, 40, true), (1, 12, 2, 48, 32, false),
    (2, 6, 8, 136, 136, true), (2, 4, 6, 200, 144, true), (1, 2, 4, 8, 256, false),  // wider than 128: sgemm products
    (1, 130, 128, 8, 8, false),  // 4,160 tiles: dW in two chunks of at most `winogradWeightChunkTiles`
  ]

  private func geometry(_ conv: Conv2D, _ shape: [Int]) -> ConvGeometry {
    ConvGeometry(inputShape: shape, kernelSize: 3, stride: 1, padding: 1, dilation: 1)
  }

  @Test(arguments: shapes)
  func matchesDoubleOraclesAndTheOtherPaths(shape: (Int, Int, Int, Int, Int, Bool)) {
    let (n, h, w, cin, cout, hasBias) = shape
    var rng = SplitMix64(seed: 52)
    let conv = Conv2D(inChannels: cin, outChannels: cout, kernelSize: 3, padding: 1, hasBias: hasBias, using: &rng)
    let x = Tensor.randomNormal([n, h, w, cin], using: &rng)
    let dy = Tensor.randomNormal([n, h, w, cout], using: &rng)
    conv.directMode = .always
    conv.winogradMode = .always
    #expect(conv.usesWinograd(geometry(conv, x.shape), outputs: cout))
    #expect(conv.usesWinograd(geometry(conv, dy.shape), outputs: cin))
    let weight = conv.weight.value.scalars  // OHWI [out, 3, 3, in]
    let bias = conv.bias?.value.scalars
    conv.zeroGrad()
    let (y, cache) = conv.forward(x, mode: .training)
    let dx = conv.backward(dy, cache)

    // y against conv(x; W) + bias; dx against conv(dy; W̃), W̃[i, ky, kx, o] = W[o, 2 − ky, 2 − kx, i].
    var forward = convolutionOracle(x, outChannels: cout) { o, ky, kx, i in Double(weight[((o * 3 + ky) * 3 + kx) * cin + i]) }
    if let bias {
      for index in forward.0.indices {
        forward.0[index] += Double(bias[index % cout])
        forward.1[index] += abs(Double(bias[index % cout]))
      }
    }
    expectWithinSummationBound(y, forward.0, forward.1, "Winograd y")
    let inputGradient = convolutionOracle(dy, outChannels: cin) { i, ky, kx, o in
      Double(weight[((o * 3 + (2 - ky)) * 3 + (2 - kx)) * cin + i])
    }
    expectWithinSummationBound(dx, inputGradient.0, inputGradient.1, "Winograd dx")
    // dW by the transpose of F(2×2, 3×3) (`.always` takes every covered shape).
    #expect(conv.usesWinogradWeightGradient(geometry(conv, x.shape)))
    // The transforms mix a channel pair's 9 taps, so its rounding scales with the largest tap's Σ|terms|: on a
    // 2×2 image a corner tap sums one product but is computed from all four.
    let (dWOracle, dWMagnitude) = weightGradientOracle(x, dy, inChannels: cin, outChannels: cout)
    let pairMagnitude = dWMagnitude.indices.map { index in
      let (o, i) = (index / (9 * cin), index % cin)
      return (0..<9).map { dWMagnitude[(o * 9 + $0) * cin + i] }.max()!
    }
    expectWithinSummationBound(conv.weight.grad, dWOracle, pairMagnitude, "Winograd dW")

    for (direct, winograd) in [(Conv2D.DirectMode.always, Conv2D.WinogradMode.never), (.never, .never)] {
      conv.directMode = direct
      conv.winogradMode = winograd
      conv.zeroGrad()
      let (otherY, otherCache) = conv.forward(x, mode: .training)
      let otherDx = conv.backward(dy, otherCache)
      expectClose(y, otherY, rtol: 1e-5, atol: 1e-5, "y against direct \(direct)")
      expectClose(dx, otherDx, rtol: 1e-5, atol: 1e-5, "dx against direct \(direct)")
    }
  }

  @Test func handComputedTileIsExact() {
    // 8 → 8 channels on one 2×2 image (a single tile). Only W[0, ·, ·, 0] = K = [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
    // and W[7, ·, ·, 3] = K / 2 are non-zero, bias[7] = 1; x[·, ·, 0] = [[1, 2], [3, 4]], x[·, ·, 3] = 2·x[·, ·, 0].
    // With zero padding y[oy, ox, 0] = Σ K[ky, kx]·x[oy + ky − 1, ox + kx − 1]:
    //   (0, 0): 5·1 + 6·2 + 8·3 + 9·4 = 77    (0, 1): 4·1 + 5·2 + 7·3 + 8·4 = 67
    //   (1, 0): 2·1 + 3·2 + 5·3 + 6·4 = 47    (1, 1): 1·1 + 2·2 + 4·3 + 5·4 = 37
    // and y[·, ·, 7] = y[·, ·, 0] + 1. Every transform step is a sum or a halving of small integers, exact in float.
    var rng = SplitMix64(seed: 53)
    let conv = Conv2D(inChannels: 8, outChannels: 8, kernelSize: 3, padding: 1, hasBias: true, using: &rng)
    conv.directMode = .always
    conv.winogradMode = .always
    var weight = [Float](repeating: 0, count: 8 * 9 * 8)
    for tap in 0..<9 {
      weight[tap * 8] = Float(tap + 1)
      weight[(7 * 9 + tap) * 8 + 3] = Float(tap + 1) / 2
    }
    conv.weight.value = Tensor(shape: [8, 3, 3, 8], scalars: weight)
    conv.bias!.value = Tensor(shape: [8], scalars: [0, 0, 0, 0, 0, 0, 0, 1])
    var input = [Float](repeating: 0, count: 4 * 8)
    for pixel in 0..<4 { input[pixel * 8] = Float(pixel + 1); input[pixel * 8 + 3] = 2 * Float(pixel + 1) }
    #expect(conv.usesWinograd(geometry(conv, [1, 2, 2, 8]), outputs: 8))
    let y = conv(Tensor(shape: [1, 2, 2, 8], scalars: input))
    var expected = [Float](repeating: 0, count: 4 * 8)
    for (pixel, value) in [Float(77), 67, 47, 37].enumerated() {
      expected[pixel * 8] = value
      expected[pixel * 8 + 7] = value + 1
    }
    #expect(y == Tensor(shape: [1, 2, 2, 8], scalars: expected))
  }

  /// Banding (bands of an even number of rows for small batches, groups of images for large ones) and the thread
  /// count change who computes a tile, never how: one image alone, in a batch of 16 and of 67, on 1 and 2 threads.
  @Test(arguments: [16, 67])
  func resultDoesNotDependOnBandingOrThreads(batchSize: Int) {
    var rng = SplitMix64(seed: 54)
    let conv = Conv2D(inChannels: 16, outChannels: 24, kernelSize: 3, padding: 1, hasBias: true, using: &rng)
    conv.directMode = .always
    conv.winogradMode = .always
    let (h, w) = (14, 10)
    let batch = Tensor.randomNormal([batchSize, h, w, 16], using: &rng)
    let first = Tensor(shape: [1, h, w, 16], scalars: Array(batch.scalars[0..<(h * w * 16)]))
    let (alone, inBatchOnOne, inBatchOnTwo) = ThreadCountLock.holding {
      Threads.configure(1)
      let inBatchOnOne = conv(batch)
      Threads.configure(2)
      return (conv(first), inBatchOnOne, conv(batch))
    }
    #expect(alone.scalars == Array(inBatchOnTwo.scalars[0..<(h * w * 24)]))
    #expect(inBatchOnOne == inBatchOnTwo)
  }

  /// The wide path's sgemm products give the same bits on 1 and 2 threads, and one image alone the same as inside a
  /// batch; so do dx and the Winograd dW.
  @Test func widePathDoesNotDependOnThreads() {
    var rng = SplitMix64(seed: 56)
    let conv = Conv2D(inChannels: 160, outChannels: 144, kernelSize: 3, padding: 1, hasBias: true, using: &rng)
    conv.directMode = .always
    conv.winogradMode = .always
    let batch = Tensor.randomNormal([5, 6, 4, 160], using: &rng)
    let first = Tensor(shape: [1, 6, 4, 160], scalars: Array(batch.scalars[0..<(6 * 4 * 160)]))
    let (alone, onOne, onTwo) = ThreadCountLock.holding {
      Threads.configure(1)
      let onOne = conv(batch)
      Threads.configure(2)
      return (conv(first), onOne, conv(batch))
    }
    #expect(onOne == onTwo)
    #expect(alone.scalars == Array(onTwo.scalars[0..<(6 * 4 * 144)]))
    // dW by Winograd (groups of whole images, each group's own products) and dx, on 1 and 2 threads.
    let dy = Tensor.randomNormal([5, 6, 4, 144], using: &rng)
    let (gradientsOnOne, gradientsOnTwo) = ThreadCountLock.holding {
      [1, 2].map { threads in
        Threads.configure(threads)
        conv.zeroGrad()
        let (_, cache) = conv.forward(batch, mode: .training)
        return (conv.backward(dy, cache), conv.weight.grad)
      }.splat()
    }
    #expect(conv.usesWinogradWeightGradient(ConvGeometry(inputShape: batch.shape, kernelSize: 3, stride: 1,
                                                         padding: 1, dilation: 1)))
    #expect(gradientsOnOne.0 == gradientsOnTwo.0 && gradientsOnOne.1 == gradientsOnTwo.1)
  }

  /// Odd heights or widths and channel counts that are not multiples of 8 stay on the direct kernel even when
  /// Winograd is forced; `.automatic` follows `winogradSetting`.
  @Test func coverage() {
    var rng = SplitMix64(seed: 55)
    let conv = Conv2D(inChannels: 16, outChannels: 16, kernelSize: 3, padding: 1, using: &rng)
    conv.winogradMode = .always
    #expect(!conv.usesWinograd(geometry(conv, [2, 5, 6, 16]), outputs: 16))
    #expect(!conv.usesWinograd(geometry(conv, [2, 6, 7, 16]), outputs: 16))
    #expect(!conv.usesWinograd(geometry(conv, [2, 6, 6, 3]), outputs: 16))
    #expect(!conv.usesWinograd(geometry(conv, [2, 6, 6, 16]), outputs: 12))
    conv.winogradMode = .automatic
    #expect(conv.usesWinograd(geometry(conv, [2, 6, 6, 16]), outputs: 16) == Conv2D.winogradSetting)
  }
}

private extension Array {
  /// The two elements of a two-element array as a pair.
  func splat() -> (Element, Element) {
    precondition(count == 2, "splat() needs 2 elements, got \(count).")
    return (self[0], self[1])
  }
}
