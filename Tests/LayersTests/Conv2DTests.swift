import Testing
import Tensors
@testable import Layers
import TestSupport

/// Direct convolution in Double, straight from the nn.Conv2d definition (NHWC input, OHWI weight).
private func referenceConvolution(_ x: Tensor, _ conv: Conv2D) -> Tensor {
  let (n, h, w, c) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
  let (k, s, p, d, out) = (conv.kernelSize, conv.stride, conv.padding, conv.dilation, conv.outChannels)
  let oh = (h + 2 * p - d * (k - 1) - 1) / s + 1, ow = (w + 2 * p - d * (k - 1) - 1) / s + 1
  var y = Tensor.zeros([n, oh, ow, out])
  for image in 0..<n { for oy in 0..<oh { for ox in 0..<ow { for o in 0..<out {
    var total = Double(conv.bias?.value.scalars[o] ?? 0)
    for ky in 0..<k { for kx in 0..<k {
      let iy = oy * s - p + ky * d, ix = ox * s - p + kx * d
      guard iy >= 0 && iy < h && ix >= 0 && ix < w else { continue }
      for i in 0..<c { total += Double(x[[image, iy, ix, i]]) * Double(conv.weight.value[[o, ky, kx, i]]) }
    } }
    y[[image, oy, ox, o]] = Float(total)
  } } } }
  return y
}

/// (kernel, stride, padding, dilation, hasBias) sweeping the pointwise, strided-1×1 and im2col paths.
private let configurations: [(Int, Int, Int, Int, Bool)] = [
  (1, 1, 0, 1, false), (1, 1, 0, 1, true), (1, 2, 0, 1, false), (1, 1, 1, 1, true),
  (3, 1, 1, 1, false), (3, 2, 1, 1, true), (3, 1, 0, 1, false), (3, 2, 2, 1, false),
  (3, 1, 2, 2, true), (3, 2, 1, 2, false), (7, 2, 3, 1, false), (7, 1, 0, 1, true),
]

@Suite struct Conv2DTests {
  @Test func allOnesCountTapsInsideTheImage() {
    // 3×3 kernel, padding 1 on a 3×3 image with 2 channels of ones: each output is 2 × (taps inside the image),
    // i.e. 2·4 at the corners, 2·6 on the edges, 2·9 in the centre.
    var rng = SplitMix64(seed: 1)
    let conv = Conv2D(inChannels: 2, outChannels: 1, kernelSize: 3, padding: 1, using: &rng)
    conv.weight.value = Tensor(repeating: 1, shape: [1, 3, 3, 2])
    let y = conv(Tensor(repeating: 1, shape: [1, 3, 3, 2]))
    #expect(y == Tensor(shape: [1, 3, 3, 1], scalars: [8, 12, 8, 12, 18, 12, 8, 12, 8]))
  }

  @Test func handComputedStrideAndBias() {
    // x = 0..15 on a 4×4 image, 2×2 kernel of ones, stride 2, bias 0.5: sums of the four 2×2 blocks + 0.5.
    var rng = SplitMix64(seed: 2)
    let conv = Conv2D(inChannels: 1, outChannels: 1, kernelSize: 2, stride: 2, hasBias: true, using: &rng)
    conv.weight.value = Tensor(repeating: 1, shape: [1, 2, 2, 1])
    conv.bias!.value = Tensor(shape: [1], scalars: [0.5])
    let y = conv(Tensor(shape: [1, 4, 4, 1], scalars: (0..<16).map(Float.init)))
    #expect(y == Tensor(shape: [1, 2, 2, 1], scalars: [10.5, 18.5, 42.5, 50.5]))
  }

  @Test(arguments: configurations)
  func forwardMatchesDirectConvolution(configuration: (Int, Int, Int, Int, Bool)) {
    let (k, s, p, d, hasBias) = configuration
    var rng = SplitMix64(seed: 3)
    let conv = Conv2D(inChannels: 3, outChannels: 4, kernelSize: k, stride: s, padding: p, dilation: d,
                      hasBias: hasBias, using: &rng)
    let x = Tensor.randomNormal([2, 7, 7, 3], using: &rng)
    let expected = referenceConvolution(x, conv)
    expectClose(conv(x), expected, rtol: 1e-4, atol: 1e-5, "y")
    conv.maximumColumnElements = 5 * conv.kernelSize * conv.kernelSize * 3  // 5-row chunks straddle images
    expectClose(conv(x), expected, rtol: 1e-4, atol: 1e-5, "chunked y")
  }

  @Test(arguments: configurations)
  func backwardMatchesFiniteDifferences(configuration: (Int, Int, Int, Int, Bool)) {
    let (k, s, p, d, hasBias) = configuration
    var rng = SplitMix64(seed: 4)
    let conv = Conv2D(inChannels: 3, outChannels: 4, kernelSize: k, stride: s, padding: p, dilation: d,
                      hasBias: hasBias, using: &rng)
    let x = Parameter(.randomNormal([2, 7, 7, 3], using: &rng))
    expectLayerGradientsMatch(input: x, parameters: [("weight", conv.weight)] + (conv.bias.map { [("bias", $0)] } ?? []),
                              using: &rng, forward: { conv.forward($0, mode: .training) }, backward: conv.backward)
  }

  @Test(arguments: configurations)
  func chunkedBackwardMatchesSingleChunk(configuration: (Int, Int, Int, Int, Bool)) {
    let (k, s, p, d, hasBias) = configuration
    var rng = SplitMix64(seed: 5)
    let conv = Conv2D(inChannels: 3, outChannels: 4, kernelSize: k, stride: s, padding: p, dilation: d,
                      hasBias: hasBias, using: &rng)
    let x = Tensor.randomNormal([2, 7, 7, 3], using: &rng)
    let (y, cache) = conv.forward(x, mode: .training)
    let dy = Tensor.randomNormal(y.shape, using: &rng)
    let dx = conv.backward(dy, cache)
    let weightGrad = conv.weight.grad
    conv.zeroGrad()
    conv.maximumColumnElements = 5 * k * k * 3
    expectClose(conv.backward(dy, cache), dx, rtol: 1e-4, atol: 1e-5, "chunked dx")
    expectClose(conv.weight.grad, weightGrad, rtol: 1e-4, atol: 1e-5, "chunked dW")
  }

  /// y, dx, dW and dbias of one forward and backward on `x` with random dy (seeded), under `mode`.
  private func runBothPasses(_ conv: Conv2D, _ x: Tensor, mode: Conv2D.PipelineMode)
    -> (y: Tensor, dx: Tensor, weight: Tensor, bias: Tensor?) {
    conv.pipelineMode = mode
    conv.zeroGrad()
    var rng = SplitMix64(seed: 11)
    let (y, cache) = conv.forward(x, mode: .training)
    let dx = conv.backward(.randomNormal(y.shape, using: &rng), cache)
    return (y, dx, conv.weight.grad, conv.bias?.grad)
  }

  @Test(arguments: configurations)
  func pipelinedPathsMatchWholeLayerPaths(configuration: (Int, Int, Int, Int, Bool)) {
    // The per-thread pipeline (im2col chunks + single-threaded GEMMs, dx as a convolution of dy for stride 1,
    // per-image col2im otherwise, dW from partial sums) against the whole-layer loop, on 3 images so chunks
    // straddle image boundaries, and for the stem case without an input gradient.
    let (k, s, p, d, hasBias) = configuration
    var rng = SplitMix64(seed: 12)
    let conv = Conv2D(inChannels: 3, outChannels: 4, kernelSize: k, stride: s, padding: p, dilation: d,
                      hasBias: hasBias, using: &rng)
    let x = Tensor.randomNormal([3, 7, 7, 3], using: &rng)
    for computesInputGradient in [true, false] {
      conv.computesInputGradient = computesInputGradient
      let whole = runBothPasses(conv, x, mode: .never)
      let pipelined = runBothPasses(conv, x, mode: .always)
      expectClose(pipelined.y, referenceConvolution(x, conv), rtol: 1e-4, atol: 1e-5, "pipelined y")
      expectClose(pipelined.y, whole.y, rtol: 1e-4, atol: 1e-5, "y")
      #expect(pipelined.dx.shape == (computesInputGradient ? x.shape : [0]))
      expectClose(pipelined.dx, whole.dx, rtol: 1e-4, atol: 1e-5, "dx")
      expectClose(pipelined.weight, whole.weight, rtol: 1e-4, atol: 1e-5, "dW")
      if let bias = pipelined.bias, let wholeBias = whole.bias {
        expectClose(bias, wholeBias, rtol: 1e-4, atol: 1e-5, "dbias")
      }
    }
  }

  @Test(arguments: configurations)
  func pipelinedBackwardMatchesFiniteDifferences(configuration: (Int, Int, Int, Int, Bool)) {
    let (k, s, p, d, hasBias) = configuration
    var rng = SplitMix64(seed: 13)
    let conv = Conv2D(inChannels: 3, outChannels: 4, kernelSize: k, stride: s, padding: p, dilation: d,
                      hasBias: hasBias, using: &rng)
    conv.pipelineMode = .always
    let x = Parameter(.randomNormal([2, 7, 7, 3], using: &rng))
    expectLayerGradientsMatch(input: x, parameters: [("weight", conv.weight)] + (conv.bias.map { [("bias", $0)] } ?? []),
                              using: &rng, forward: { conv.forward($0, mode: .training) }, backward: conv.backward)
  }

  @Test(arguments: [(7, 2, 3), (3, 1, 1), (1, 1, 0)])
  func stemWithoutInputGradient(kernelSize: Int, stride: Int, padding: Int) {
    var rng = SplitMix64(seed: 6)
    let conv = Conv2D(inChannels: 3, outChannels: 4, kernelSize: kernelSize, stride: stride, padding: padding,
                      using: &rng)
    let x = Tensor.randomNormal([2, 7, 7, 3], using: &rng)
    let (y, cache) = conv.forward(x, mode: .training)
    let dy = Tensor.randomNormal(y.shape, using: &rng)
    _ = conv.backward(dy, cache)
    let weightGrad = conv.weight.grad
    conv.zeroGrad()
    conv.computesInputGradient = false
    let dx = conv.backward(dy, cache)
    #expect(dx.shape == [0])
    expectClose(conv.weight.grad, weightGrad, "dW without input gradient")
    expectGradientsMatch({ conv.forward(x, mode: .training).0.dot(dy) }, wrt: conv.weight, named: "weight")
  }

  @Test func backwardAccumulatesIntoGrad() {
    var rng = SplitMix64(seed: 7)
    let conv = Conv2D(inChannels: 2, outChannels: 3, kernelSize: 3, padding: 1, hasBias: true, using: &rng)
    let x = Tensor.randomNormal([2, 5, 5, 2], using: &rng)
    let (y, cache) = conv.forward(x, mode: .training)
    let dy = Tensor.randomNormal(y.shape, using: &rng)
    _ = conv.backward(dy, cache)
    let (once, biasOnce) = (conv.weight.grad, conv.bias!.grad)
    _ = conv.backward(dy, cache)
    expectClose(conv.weight.grad, 2 * once, "dW after two backwards")
    expectClose(conv.bias!.grad, 2 * biasOnce, "dbias after two backwards")
    conv.zeroGrad()
    #expect(conv.weight.grad == .zeros(conv.weight.value.shape))
  }

  @Test func frozenWeightStillGivesInputGradient() {
    var rng = SplitMix64(seed: 8)
    let conv = Conv2D(inChannels: 3, outChannels: 2, kernelSize: 3, stride: 2, padding: 1, using: &rng)
    conv.weight.isTrainable = false
    let x = Parameter(.randomNormal([2, 6, 6, 3], using: &rng))
    let (y, cache) = conv.forward(x.value, mode: .training)
    let dy = Tensor.randomNormal(y.shape, using: &rng)
    x.grad = conv.backward(dy, cache)
    #expect(conv.weight.grad == .zeros(conv.weight.value.shape))
    expectGradientsMatch({ conv.forward(x.value, mode: .training).0.dot(dy) }, wrt: x, named: "x")
  }

  @Test func namesLayoutAndInitialization() {
    var rng = SplitMix64(seed: 9)
    let conv = Conv2D(inChannels: 16, outChannels: 32, kernelSize: 3, hasBias: true, using: &rng)
    #expect(conv.namedParameters.map(\.name) == ["weight", "bias"])
    #expect(conv.weight.value.shape == [32, 3, 3, 16])
    #expect(conv.weight.exportedShape == [32, 16, 3, 3])
    // kaiming_normal_(fan_out, relu): std = √(2 / (32·9)) ≈ 0.0833 over 4608 draws (≈1% standard error).
    let values = conv.weight.value.scalars.map(Double.init)
    let std = (values.reduce(0) { $0 + $1 * $1 } / Double(values.count)).squareRoot()
    #expect(abs(std - (2.0 / 288).squareRoot()) < 0.05 * (2.0 / 288).squareRoot())
    // nn.Conv2d default bias: U(±1/√(16·9)) = U(±1/12).
    #expect(conv.bias!.value.scalars.allSatisfy { abs($0) <= 1.0 / 12 })

    let plain = Conv2D(inChannels: 16, outChannels: 32, kernelSize: 3, initialization: .pytorchDefault, using: &rng)
    #expect(plain.namedParameters.map(\.name) == ["weight"])
    let bound: Float = 1.0 / 12
    #expect(plain.weight.value.scalars.allSatisfy { abs($0) <= bound })
    #expect(plain.weight.value.scalars.contains { abs($0) > 0.9 * bound })
  }
}

@Suite struct Im2ColTests {
  @Test func unpaddedWindowsInTapOrder() {
    // x = 0..8 on a 3×3 single-channel image; 2×2 windows, stride 1.
    let x = Tensor(shape: [1, 3, 3, 1], scalars: (0..<9).map(Float.init))
    let columns = im2col(x, kernelSize: 2)
    #expect(columns == Tensor(shape: [4, 4], scalars: [0, 1, 3, 4, 1, 2, 4, 5, 3, 4, 6, 7, 4, 5, 7, 8]))
  }

  @Test func paddingGivesZerosAndChannelsStayContiguous() {
    // 2×2 image, 2 channels: pixel (0,0) = [0,1], (0,1) = [2,3], (1,0) = [4,5], (1,1) = [6,7].
    // A 3×3 window, padding 1, stride 2 gives one output pixel centred on (0,0): taps (ky, kx) read (ky−1, kx−1).
    let x = Tensor(shape: [1, 2, 2, 2], scalars: (0..<8).map(Float.init))
    let columns = im2col(x, kernelSize: 3, stride: 2, padding: 1)
    #expect(columns == Tensor(shape: [1, 18], scalars: [0, 0, 0, 0, 0, 0,
                                                        0, 0, 0, 1, 2, 3,
                                                        0, 0, 4, 5, 6, 7]))
  }

  @Test func dilationSkipsPixels() {
    // 2×2 kernel with dilation 2 on 0..8 (3×3): taps (0,0), (0,2), (2,0), (2,2).
    let x = Tensor(shape: [1, 3, 3, 1], scalars: (0..<9).map(Float.init))
    #expect(im2col(x, kernelSize: 2, dilation: 2) == Tensor(shape: [1, 4], scalars: [0, 2, 6, 8]))
  }

  @Test func col2imCountsWindowsPerPixel() {
    // All-ones columns of 2×2 windows over a 3×3 image: each pixel receives one per window covering it.
    let ones = Tensor(repeating: 1, shape: [4, 4])
    let dx = col2im(ones, inputShape: [1, 3, 3, 1], kernelSize: 2)
    #expect(dx == Tensor(shape: [1, 3, 3, 1], scalars: [1, 2, 1, 2, 4, 2, 1, 2, 1]))
  }

  @Test(arguments: [(3, 1, 1, 1), (3, 2, 1, 1), (2, 1, 0, 2), (1, 2, 0, 1)])
  func col2imIsTheAdjointOfIm2col(kernelSize: Int, stride: Int, padding: Int, dilation: Int) {
    // ⟨im2col(x), c⟩ = ⟨x, col2im(c)⟩ for random x, c, over two images with 3 channels.
    var rng = SplitMix64(seed: 10)
    let x = Tensor.randomNormal([2, 5, 5, 3], using: &rng)
    let columns = im2col(x, kernelSize: kernelSize, stride: stride, padding: padding, dilation: dilation)
    let c = Tensor.randomNormal(columns.shape, using: &rng)
    let back = col2im(c, inputShape: x.shape, kernelSize: kernelSize, stride: stride, padding: padding,
                      dilation: dilation)
    #expect(abs(columns.dot(c) - x.dot(back)) < 1e-4 * max(1, abs(columns.dot(c))))
  }
}
