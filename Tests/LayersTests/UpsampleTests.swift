import Testing
import Tensors
import Layers
import TestSupport

/// A 2×2 image with two channels: channel 0 = [[0, 4], [8, 12]] (linear, 8·row + 4·col),
/// channel 1 = [[0, 0], [0, 16]] (the bilinear cross term, 16·row·col).
private let twoByTwo = Tensor(shape: [1, 2, 2, 2], scalars: [0, 0, 4, 0, 8, 0, 12, 16])

/// The 4×4 upsample of `twoByTwo` when the 1-D source positions (in input pixels) are `a`:
/// channel 0 = 8·a[i] + 4·a[j], channel 1 = 16·a[i]·a[j].
private func expectedUpsample(_ a: [Float]) -> Tensor {
  var scalars: [Float] = []
  for i in 0..<4 { for j in 0..<4 { scalars += [8 * a[i] + 4 * a[j], 16 * a[i] * a[j]] } }
  return Tensor(shape: [1, 4, 4, 2], scalars: scalars)
}

@Suite struct UpsampleTests {
  @Test func halfPixelCentresWithoutAlignCorners() {
    // F.interpolate(size=4, align_corners=False): src = (dst + 0.5)·(2/4) − 0.5 = −0.25, 0.25, 0.75, 1.25,
    // clamped to 0 below and to the last pixel above: positions 0, 0.25, 0.75, 1.
    let y = bilinearResize(twoByTwo, height: 4, width: 4, alignCorners: false)
    expectClose(y, expectedUpsample([0, 0.25, 0.75, 1]))
    #expect(y[[0, 1, 1, 0]] == 3 && y[[0, 3, 3, 1]] == 16)
  }

  @Test func cornersMapOntoCornersWithAlignCorners() {
    // align_corners=True: src = dst·(2 − 1)/(4 − 1) = 0, 1/3, 2/3, 1.
    let y = bilinearResize(twoByTwo, height: 4, width: 4, alignCorners: true)
    expectClose(y, expectedUpsample([0, 1.0 / 3, 2.0 / 3, 1]))
  }

  @Test(arguments: [false, true])
  func sameSizeIsIdentity(alignCorners: Bool) {
    var rng = SplitMix64(seed: 30)
    let x = Tensor.randomNormal([2, 5, 4, 3], using: &rng)
    expectClose(bilinearResize(x, height: 5, width: 4, alignCorners: alignCorners), x)
  }

  @Test func downsampleWithoutAlignCornersAveragesPixelPairs() {
    // 4 → 2 with align_corners=False: src = (dst + 0.5)·2 − 0.5 = 0.5, 2.5: the mean of pixels (0,1) and (2,3).
    let x = Tensor(shape: [1, 1, 4, 1], scalars: [0, 2, 4, 10])
    #expect(bilinearResize(x, height: 1, width: 2, alignCorners: false) == Tensor(shape: [1, 1, 2, 1], scalars: [1, 7]))
  }

  @Test(arguments: [(false, 4, 4), (true, 4, 4), (false, 3, 7), (true, 3, 7), (false, 9, 2), (true, 9, 2), (true, 1, 3)])
  func backwardMatchesFiniteDifferences(alignCorners: Bool, height: Int, width: Int) {
    var rng = SplitMix64(seed: 31)
    let x = Parameter(.randomNormal([2, 5, 6, 3], using: &rng))
    let dy = Tensor.randomNormal([2, height, width, 3], using: &rng)
    x.grad = bilinearResizeBackward(dy, inputShape: x.value.shape, alignCorners: alignCorners)
    let loss = { bilinearResize(x.value, height: height, width: width, alignCorners: alignCorners).dot(dy) }
    expectGradientsMatch(loss, wrt: x, named: "x", samples: 64)
  }
}
