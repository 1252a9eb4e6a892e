import Testing
import Tensors
@testable import Layers
import TestSupport

/// The direct 3×3 kernels (Conv2D+Direct.swift, Sources/CConvKernels: forward, dx, dW) against the im2col paths, a
/// hand-computed case and finite differences; and that every shape they do not cover falls back to the im2col paths.
@Suite(.enabled(if: Conv2D.cpuRunsDirectKernel, "the direct kernel needs AVX2 and FMA"))
struct Conv2DDirectTests {
  /// (batch, height, width, in, out, hasBias): channels 8…64 (16-channel blocks, a trailing 8-channel block, both),
  /// a 1×1 image (every tap but the centre in the padding), odd and non-square sizes, widths below, at and above the
  /// kernel's 6-pixel blocks, 64 input channels (one chunk), 48 (a partial one) and 136 (three), several images per dW call and
  /// one image in bands.
  static let shapes: [(Int, Int, Int, Int, Int, Bool)] = [
    (2, 1, 1, 8, 8, false), (3, 5, 7, 8, 16, true), (2, 6, 13, 16, 24, false), (2, 9, 32, 16, 16, true),
    (2, 8, 9, 64, 64, true), (3, 3, 1, 32, 8, false), (2, 4, 4, 24, 40, true), (4, 7, 6, 48, 32, false),
    (1, 48, 40, 32, 16, false),  // dW in two bands of rows (an image exceeds `directWeightBandFloats`)
    (2, 5, 6, 136, 8, true),  // three input-channel chunks of the forward (64, 64, 8), dx with 136 outputs
    (3, 6, 7, 1, 16, false), (2, 5, 9, 3, 8, true),  // 1- and 3-channel stems: forward and dW direct, dx im2col
  ]

  /// y, dx and dW of one forward and backward with a seeded dy.
  private func run(_ conv: Conv2D, _ x: Tensor) -> (Tensor, Tensor, Tensor) {
    conv.zeroGrad()
    var rng = SplitMix64(seed: 41)
    let (y, cache) = conv.forward(x, mode: .training)
    let dx = conv.backward(.randomNormal(y.shape, using: &rng), cache)
    return (y, dx, conv.weight.grad)
  }

  private func geometry(_ conv: Conv2D, _ shape: [Int]) -> ConvGeometry {
    ConvGeometry(inputShape: shape, kernelSize: conv.kernelSize, stride: conv.stride, padding: conv.padding,
                 dilation: conv.dilation)
  }

  @Test(arguments: shapes)
  func matchesTheIm2colPaths(shape: (Int, Int, Int, Int, Int, Bool)) {
    let (n, h, w, cin, cout, hasBias) = shape
    var rng = SplitMix64(seed: 42)
    let conv = Conv2D(inChannels: cin, outChannels: cout, kernelSize: 3, padding: 1, hasBias: hasBias, using: &rng)
    let x = Tensor.randomNormal([n, h, w, cin], using: &rng)
    conv.directMode = .always
    conv.winogradMode = .never  // the direct kernel itself (Conv2DWinogradTests cover Winograd)
    // The forward over x and dW take the kernel, and dx over dy (cout channels in, cin out) when cin % 8 = 0.
    #expect(conv.usesDirectConvolution(geometry(conv, x.shape), outputs: cout))
    #expect(conv.usesDirectConvolution(geometry(conv, [n, h, w, cout]), outputs: cin) == (cin % 8 == 0))
    #expect(conv.usesDirectWeightGradient(geometry(conv, x.shape)))
    let (directY, directDx, directDW) = run(conv, x)
    // dW sums n·h·w products (up to 576 here) of either sign: float32 rounding of any summation order is then a
    // fraction of Σ|terms|, not of the (much smaller) sum, so each element is judged against its Double oracle
    // with a bound of 1e-5·Σ|terms| — as is the im2col path, which must pass the same bound.
    var seeded = SplitMix64(seed: 41)
    let dy = Tensor.randomNormal(directY.shape, using: &seeded)  // run(_:_:)'s dy
    let (oracle, magnitude) = weightGradientOracle(x, dy, inChannels: cin, outChannels: cout)
    expectWithinSummationBound(directDW, oracle, magnitude, "direct dW")
    for pipeline in [Conv2D.PipelineMode.never, .always] {
      conv.directMode = .never
      conv.pipelineMode = pipeline
      let (y, dx, dW) = run(conv, x)
      expectClose(directY, y, rtol: 1e-5, atol: 1e-5, "y")
      expectClose(directDx, dx, rtol: 1e-5, atol: 1e-5, "dx")
      expectWithinSummationBound(dW, oracle, magnitude, "im2col dW")
    }
  }

  @Test func handComputedForwardAndGradients() {
    // 8 → 16 channels on one 2×3 image. Only W[0, ·, ·, 0] = K and W[15, ·, ·, 7] = −2·K are non-zero, with
    // K = [[0, 1, 0], [2, 3, 0], [0, 0, 4]] (rows ky), bias[15] = 0.5; x[·, ·, 0] = [[1, 2, 3], [4, 5, 6]] and
    // x[·, ·, 7] = −x[·, ·, 0]. With zero padding, y[oy, ox, 0] = Σ K[ky, kx]·x[oy + ky − 1, ox + kx − 1, 0]:
    //   (0, 0): 3·1 + 4·5 = 23   (0, 1): 2·1 + 3·2 + 4·6 = 32   (0, 2): 2·2 + 3·3 = 13
    //   (1, 0): 1·1 + 3·4 = 13   (1, 1): 1·2 + 2·4 + 3·5 = 25   (1, 2): 1·3 + 2·5 + 3·6 = 31
    // and y[·, ·, 15] = −2·(−1)·… = 2·y[·, ·, 0] + 0.5, every other channel 0.
    var rng = SplitMix64(seed: 43)
    let conv = Conv2D(inChannels: 8, outChannels: 16, kernelSize: 3, padding: 1, hasBias: true, using: &rng)
    conv.directMode = .always
    conv.winogradMode = .never  // the direct kernel itself (Conv2DWinogradTests cover Winograd)
    let kernel: [Float] = [0, 1, 0, 2, 3, 0, 0, 0, 4]
    var weight = [Float](repeating: 0, count: 16 * 9 * 8)
    for tap in 0..<9 {
      weight[tap * 8] = kernel[tap]                    // W[0, ky, kx, 0]
      weight[(15 * 9 + tap) * 8 + 7] = -2 * kernel[tap]  // W[15, ky, kx, 7]
    }
    conv.weight.value = Tensor(shape: [16, 3, 3, 8], scalars: weight)
    var bias = [Float](repeating: 0, count: 16)
    bias[15] = 0.5
    conv.bias!.value = Tensor(shape: [16], scalars: bias)
    var input = [Float](repeating: 0, count: 6 * 8)
    for pixel in 0..<6 { input[pixel * 8] = Float(pixel + 1); input[pixel * 8 + 7] = -Float(pixel + 1) }
    let (y, cache) = conv.forward(Tensor(shape: [1, 2, 3, 8], scalars: input), mode: .training)
    var expected = [Float](repeating: 0, count: 6 * 16)
    for (pixel, value) in [Float(23), 32, 13, 13, 25, 31].enumerated() {
      expected[pixel * 16] = value
      expected[pixel * 16 + 15] = 2 * value + 0.5
    }
    #expect(y == Tensor(shape: [1, 2, 3, 16], scalars: expected))

    // dy = 1 at (0, 0, channel 0) only: dx[iy, ix, 0] = K[iy + 1, ix + 1] inside the window, i.e. 3 at (0, 0) and
    // 4 at (1, 1) (taps (1, 1) and (2, 2)); nothing reaches channel 7 (its only weights belong to output 15).
    var gradient = [Float](repeating: 0, count: 6 * 16)
    gradient[0] = 1
    conv.zeroGrad()
    let dx = conv.backward(Tensor(shape: [1, 2, 3, 16], scalars: gradient), cache)
    var expectedDx = [Float](repeating: 0, count: 6 * 8)
    expectedDx[0] = 3
    expectedDx[4 * 8] = 4
    #expect(dx == Tensor(shape: [1, 2, 3, 8], scalars: expectedDx))
    // dW[0, ky, kx, 0] = Σ over output pixels of dy·x[oy + ky − 1, ox + kx − 1, 0] = x at (ky − 1, kx − 1) for the
    // single dy at (0, 0): 1 at (1, 1), 2 at (1, 2), 4 at (2, 1), 5 at (2, 2); W[0, ·, ·, 7] the same negated.
    var expectedDW = [Float](repeating: 0, count: 16 * 9 * 8)
    for (tap, value) in [(4, Float(1)), (5, 2), (7, 4), (8, 5)] {
      expectedDW[tap * 8] = value
      expectedDW[tap * 8 + 7] = -value
    }
    #expect(conv.weight.grad == Tensor(shape: [16, 3, 3, 8], scalars: expectedDW))
  }

  @Test(arguments: [(2, 5, 7, 8, 16, true), (1, 4, 3, 16, 8, false)])
  func backwardMatchesFiniteDifferences(shape: (Int, Int, Int, Int, Int, Bool)) {
    let (n, h, w, cin, cout, hasBias) = shape
    var rng = SplitMix64(seed: 44)
    let conv = Conv2D(inChannels: cin, outChannels: cout, kernelSize: 3, padding: 1, hasBias: hasBias, using: &rng)
    conv.directMode = .always
    conv.winogradMode = .never  // the direct kernel itself (Conv2DWinogradTests cover Winograd)
    let x = Parameter(.randomNormal([n, h, w, cin], using: &rng))
    expectLayerGradientsMatch(input: x, parameters: [("weight", conv.weight)] + (conv.bias.map { [("bias", $0)] } ?? []),
                              using: &rng, forward: { conv.forward($0, mode: .training) }, backward: conv.backward)
  }

  /// The banding (whole images for large batches, bands of rows for small ones) and the thread count change who
  /// computes an output, never how: the same image alone (bands of rows), inside a batch of 16 (one image a call) and
  /// of 67 (groups of 8 images a call, the last one short), on 1 and 2 threads, gives the same bits.
  @Test(arguments: [16, 67])
  func resultDoesNotDependOnBandingOrThreads(batchSize: Int) {
    var rng = SplitMix64(seed: 45)
    let conv = Conv2D(inChannels: 16, outChannels: 16, kernelSize: 3, padding: 1, hasBias: true, using: &rng)
    conv.directMode = .always
    conv.winogradMode = .never  // the direct kernel itself (Conv2DWinogradTests cover Winograd)
    let batch = Tensor.randomNormal([batchSize, 11, 10, 16], using: &rng)
    let first = Tensor(shape: [1, 11, 10, 16], scalars: Array(batch.scalars[0..<(11 * 10 * 16)]))
    let (alone, inBatchOnOne, inBatchOnTwo) = ThreadCountLock.holding {
      Threads.configure(1)
      let inBatchOnOne = conv(batch)
      Threads.configure(2)
      return (conv(first), inBatchOnOne, conv(batch))
    }
    #expect(alone.scalars == Array(inBatchOnTwo.scalars[0..<(11 * 10 * 16)]))
    #expect(inBatchOnOne == inBatchOnTwo)
  }

  /// Every shape outside 3×3 / stride 1 / padding 1 / dilation 1 / outputs a multiple of 8 takes the im2col paths
  /// (for dx, whose outputs are the layer's inputs: in % 8 ≠ 0; 12 → 12 channels is neither), even when the kernel is
  /// forced, and gives exactly their result; `.automatic` also leaves wide layers
  /// (> `directMaximumChannels`, 128) to the GEMM unless Winograd takes them.
  @Test func uncoveredShapesFallBackToIm2col() {
    var rng = SplitMix64(seed: 46)
    // (in, out, kernel, stride, padding, dilation)
    let uncovered: [(Int, Int, Int, Int, Int, Int)] = [
      (16, 16, 3, 2, 1, 1), (16, 16, 5, 1, 2, 1), (16, 16, 3, 1, 0, 1), (16, 16, 3, 1, 2, 2), (12, 12, 3, 1, 1, 1),
      (16, 16, 1, 1, 0, 1),
    ]
    for (cin, cout, k, s, p, d) in uncovered {
      let conv = Conv2D(inChannels: cin, outChannels: cout, kernelSize: k, stride: s, padding: p, dilation: d,
                        using: &rng)
      let x = Tensor.randomNormal([2, 9, 8, cin], using: &rng)
      let g = geometry(conv, x.shape)
      conv.directMode = .always
      conv.winogradMode = .never  // the direct kernel itself (Conv2DWinogradTests cover Winograd)
      #expect(!conv.usesDirectConvolution(g, outputs: cout), "in \(cin) out \(cout) k \(k) s \(s) p \(p) d \(d)")
      // Both runs under the thread-count lock: a test changing the count in between would change the GEMMs' split
      // and with it the rounding of the im2col paths themselves.
      let ((forcedY, forcedDx, forcedDW), (y, dx, dW)) = ThreadCountLock.holding {
        let forced = run(conv, x)
        conv.directMode = .never
        return (forced, run(conv, x))
      }
      #expect(forcedY == y && forcedDx == dx && forcedDW == dW, "in \(cin) out \(cout) k \(k) s \(s) p \(p) d \(d)")
    }
    let wide = Conv2D(inChannels: 512, outChannels: 512, kernelSize: 3, padding: 1, using: &rng)
    let wideGeometry = geometry(wide, [2, 4, 4, 512])
    wide.directMode = .automatic
    // `.automatic` sends wide layers to Winograd only (even sizes; its products are sgemm calls), never to the direct
    // kernel, and leaves their dW to the GEMM.
    #expect(!wide.usesDirectConvolution(geometry(wide, [2, 9, 9, 512]), outputs: 512))
    #expect(!wide.usesDirectConvolution(wideGeometry, outputs: 512))  // 4×4: below wideWinogradMinimumPixels
    #expect(wide.usesDirectConvolution(geometry(wide, [2, 8, 8, 512]), outputs: 512) == Conv2D.winogradSetting)
    #expect(!wide.usesDirectWeightGradient(wideGeometry))
    wide.directMode = .always
    #expect(wide.usesDirectConvolution(wideGeometry, outputs: 512) && wide.usesDirectWeightGradient(wideGeometry))
  }

  /// `.automatic` (with the defaults): forward and dx on the kernel up to `directMaximumChannels`, dW only up to
  /// in·out = `directWeightGradientMaximumProduct` (the quick config's 16- and 32-channel layers).
  @Test func automaticCoverage() {
    guard Conv2D.directConvolutionEnabled && Conv2D.directWeightGradientSetting else { return }
    var rng = SplitMix64(seed: 47)
    for (channels, weightGradient) in [(16, true), (32, true), (64, false), (128, false)] {
      let conv = Conv2D(inChannels: channels, outChannels: channels, kernelSize: 3, padding: 1, using: &rng)
      let g = geometry(conv, [4, 8, 8, channels])
      #expect(conv.usesDirectConvolution(g, outputs: channels), "\(channels) channels")
      #expect(conv.usesDirectWeightGradient(g) == weightGradient, "\(channels) channels")
    }
  }
}
