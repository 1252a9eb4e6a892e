import Testing
import Tensors
import Layers
import TestSupport

/// x = 0..15 on a 4×4 image, channel 0; channel 1 holds −(x + 1), all negative.
private let ramp = Tensor(shape: [1, 4, 4, 2], scalars: (0..<16).flatMap { [Float($0), -Float($0) - 1] })

@Suite struct PoolingTests {
  // MARK: Max pooling

  @Test func maxPoolHandComputedWithNegativeInfinityPadding() {
    // k3 s2 p1 on 4×4: windows rows/cols {0,1} or {1,2,3}. Channel 0 takes the bottom-right of each window:
    // 5, 7, 13, 15. Channel 1 takes the top-left: −1, −2, −5, −6 (zero padding would have given 0).
    let (y, _) = MaxPool2D(kernelSize: 3, stride: 2, padding: 1).forward(ramp)
    #expect(y == Tensor(shape: [1, 2, 2, 2], scalars: [5, -1, 7, -2, 13, -5, 15, -6]))
  }

  @Test func maxPoolBackwardAddsWhereWindowsShareTheWinner() {
    // 2×2 windows, stride 1, on a 3×3 image whose centre (9) wins all four windows.
    let x = Tensor(shape: [1, 3, 3, 1], scalars: [1, 2, 3, 4, 9, 5, 6, 7, 8])
    let pool = MaxPool2D(kernelSize: 2, stride: 1)
    let (y, cache) = pool.forward(x)
    #expect(y == Tensor(repeating: 9, shape: [1, 2, 2, 1]))
    let dx = pool.backward(Tensor(shape: [1, 2, 2, 1], scalars: [1, 2, 3, 4]), cache)
    #expect(dx == Tensor(shape: [1, 3, 3, 1], scalars: [0, 0, 0, 0, 10, 0, 0, 0, 0]))
  }

  @Test func maxPoolStrideDefaultsToKernel() {
    #expect(MaxPool2D(kernelSize: 2).stride == 2)
    let (y, _) = MaxPool2D(kernelSize: 2).forward(ramp)
    #expect(y == Tensor(shape: [1, 2, 2, 2], scalars: [5, -1, 7, -3, 13, -9, 15, -11]))
  }

  @Test(arguments: [(3, 2, 1), (2, 2, 0), (3, 1, 1)])
  func maxPoolBackwardMatchesFiniteDifferences(kernelSize: Int, stride: Int, padding: Int) {
    var rng = SplitMix64(seed: 20)
    let pool = MaxPool2D(kernelSize: kernelSize, stride: stride, padding: padding)
    let x = Parameter(.randomNormal([2, 7, 7, 3], using: &rng))
    let (y, cache) = pool.forward(x.value)
    let dy = Tensor.randomNormal(y.shape, using: &rng)
    x.grad = pool.backward(dy, cache)
    expectGradientsMatch({ pool.forward(x.value).0.dot(dy) }, wrt: x, named: "x", step: 1e-3, samples: 64)
  }

  // MARK: Average pooling

  @Test func avgPoolBorderDivisorIsKernelArea() {
    // k3 s2 p1 on 0..15: windows cover {0,1}×{0,1}, {0,1}×{1,2,3}, {1,2,3}×{0,1}, {1,2,3}×{1,2,3};
    // sums 10, 24, 51, 90, each divided by 9 (count_include_pad=True), not by the 4 or 6 pixels inside.
    let (y, _) = AvgPool2D(kernelSize: 3, stride: 2, padding: 1).forward(ramp)
    let channel0 = stride(from: 0, to: 8, by: 2).map { y.scalars[$0] }
    let channel1 = stride(from: 1, to: 8, by: 2).map { y.scalars[$0] }
    #expect(y.shape == [1, 2, 2, 2])
    expectClose(Tensor(shape: [4], scalars: channel0), Tensor(shape: [4], scalars: [10 / 9, 24 / 9, 51 / 9, 10]))
    // Channel 1 is −(x + 1): sums −(10 + 4), −(24 + 6), −(51 + 6), −(90 + 9).
    expectClose(Tensor(shape: [4], scalars: channel1), Tensor(shape: [4], scalars: [-14 / 9, -30 / 9, -57 / 9, -11]))
  }

  @Test func avgPoolBackwardHandComputed() {
    // k2 s1 on 3×3, dy = 1 everywhere: each pixel gets (windows covering it) / 4.
    let pool = AvgPool2D(kernelSize: 2, stride: 1)
    let (_, cache) = pool.forward(Tensor.zeros([1, 3, 3, 1]))
    let dx = pool.backward(Tensor(repeating: 1, shape: [1, 2, 2, 1]), cache)
    #expect(dx == Tensor(shape: [1, 3, 3, 1], scalars: [0.25, 0.5, 0.25, 0.5, 1, 0.5, 0.25, 0.5, 0.25]))
  }

  /// MMSelfSup's VOC SVM pooling (POOL_PARAMS): (kernel, stride, padding, input size, pooled size).
  @Test(arguments: [(10, 10, 4, 112, 12), (16, 8, 0, 56, 6), (13, 5, 0, 28, 4), (8, 3, 0, 14, 3), (6, 1, 0, 7, 2)])
  func vocFeaturePoolingShapes(kernelSize: Int, stride: Int, padding: Int, size: Int, pooled: Int) {
    let x = Tensor(repeating: 1, shape: [1, size, size, 2])
    let (y, _) = AvgPool2D(kernelSize: kernelSize, stride: stride, padding: padding).forward(x)
    #expect(y.shape == [1, pooled, pooled, 2])
    if padding > 0 {
      // feature1's corner window holds 6×6 ones of 10×10 taps: 0.36 with the pad counted in the divisor.
      expectClose(Tensor(shape: [1], scalars: [y.scalars[0]]), Tensor(shape: [1], scalars: [0.36]))
    } else {
      #expect(y.scalars.allSatisfy { abs($0 - 1) < 1e-6 })
    }
  }

  @Test(arguments: [(3, 2, 1), (2, 2, 0), (3, 1, 1), (4, 3, 2)])
  func avgPoolBackwardMatchesFiniteDifferences(kernelSize: Int, stride: Int, padding: Int) {
    var rng = SplitMix64(seed: 21)
    let pool = AvgPool2D(kernelSize: kernelSize, stride: stride, padding: padding)
    let x = Parameter(.randomNormal([2, 7, 7, 3], using: &rng))
    let (y, cache) = pool.forward(x.value)
    let dy = Tensor.randomNormal(y.shape, using: &rng)
    x.grad = pool.backward(dy, cache)
    expectGradientsMatch({ pool.forward(x.value).0.dot(dy) }, wrt: x, named: "x", samples: 64)
  }

  // MARK: Global and adaptive average pooling

  @Test func globalAvgPoolHandComputed() {
    // Pixels [0,1], [2,3], [4,5], [6,7]: channel means 3 and 4.
    let x = Tensor(shape: [1, 2, 2, 2], scalars: (0..<8).map(Float.init))
    #expect(globalAvgPool(x) == Tensor(shape: [1, 2], scalars: [3, 4]))
    let dx = globalAvgPoolBackward(Tensor(shape: [1, 2], scalars: [4, 8]), inputShape: [1, 2, 2, 2])
    #expect(dx == Tensor(shape: [1, 2, 2, 2], scalars: [1, 2, 1, 2, 1, 2, 1, 2]))
  }

  @Test func globalAvgPoolBackwardMatchesFiniteDifferences() {
    var rng = SplitMix64(seed: 22)
    let x = Parameter(.randomNormal([2, 5, 6, 3], using: &rng))
    let dy = Tensor.randomNormal([2, 3], using: &rng)
    x.grad = globalAvgPoolBackward(dy, inputShape: x.value.shape)
    expectGradientsMatch({ globalAvgPool(x.value).dot(dy) }, wrt: x, named: "x")
  }

  @Test func adaptiveBinsOverlapLikePyTorch() {
    // Width 5 → 3 bins: [0, 2), [1, 4), [3, 5) (start ⌊i·5/3⌋, end ⌈(i+1)·5/3⌉); x = 0..4 gives 0.5, 2, 3.5.
    let x = Tensor(shape: [1, 1, 5, 1], scalars: [0, 1, 2, 3, 4])
    #expect(adaptiveAvgPool2D(x, outputHeight: 1, outputWidth: 3) == Tensor(shape: [1, 1, 3, 1], scalars: [0.5, 2, 3.5]))
    let dx = adaptiveAvgPool2DBackward(Tensor(shape: [1, 1, 3, 1], scalars: [2, 3, 4]), inputShape: [1, 1, 5, 1])
    #expect(dx == Tensor(shape: [1, 1, 5, 1], scalars: [1, 2, 1, 3, 2]))
  }

  @Test(arguments: [(3, 2), (1, 1), (7, 7), (4, 5), (10, 3)])
  func adaptiveBackwardMatchesFiniteDifferences(outputHeight: Int, outputWidth: Int) {
    var rng = SplitMix64(seed: 23)
    let x = Parameter(.randomNormal([2, 7, 6, 3], using: &rng))
    let dy = Tensor.randomNormal([2, outputHeight, outputWidth, 3], using: &rng)
    x.grad = adaptiveAvgPool2DBackward(dy, inputShape: x.value.shape)
    expectGradientsMatch({ adaptiveAvgPool2D(x.value, outputHeight: outputHeight, outputWidth: outputWidth).dot(dy) },
                         wrt: x, named: "x")
  }

  @Test func adaptiveToOneEqualsGlobal() {
    var rng = SplitMix64(seed: 24)
    let x = Tensor.randomNormal([2, 5, 7, 3], using: &rng)
    expectClose(adaptiveAvgPool2D(x, outputHeight: 1, outputWidth: 1).reshaped([2, 3]), globalAvgPool(x))
  }
}
