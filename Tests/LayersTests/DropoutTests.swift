// Dropout2D (nn.Dropout2d on NHWC): whole (sample, channel) planes dropped, kept ones scaled by 1/(1 − p), identity
// in inference, reproducible draws, backward through the same mask. (That the mask semantics equal F.dropout2d's
// is checked against PyTorch in ModelsTests/FCNParityTests, whose masks come from F.dropout2d.)
import Testing
import Tensors
import TestSupport
import Layers

@Suite struct DropoutTests {
  /// x[i, y, x, c] = 1 + index: hand-checkable outputs.
  private static let x = Tensor(shape: [2, 2, 3, 4], scalars: (0..<48).map { Float($0 + 1) })

  @Test func explicitMaskZeroesWholePlanesAndScalesTheRest() {
    let dropout = Dropout2D(probability: 0.2)
    let keep = Tensor(shape: [2, 4], scalars: [1, 0, 1, 1,
                                               0, 1, 1, 0])
    let mask = dropout.mask(keeping: keep)
    #expect(mask.scalars == [1.25, 0, 1.25, 1.25, 0, 1.25, 1.25, 0])
    let y = dropout.forward(Self.x, mask: mask)
    for i in 0..<2 {
      for pixel in 0..<6 {
        for c in 0..<4 {
          let index = (i * 6 + pixel) * 4 + c
          let expected = keep.scalars[i * 4 + c] == 1 ? Float(index + 1) * 1.25 : 0
          #expect(y.scalars[index] == expected, "y[\(i), pixel \(pixel), \(c)]")
        }
      }
    }
    // Backward: the same planes, the same scale.
    let dy = Tensor(repeating: 2, shape: Self.x.shape)
    let dx = dropout.backward(dy, mask: mask)
    #expect(dx.scalars == (0..<48).map { index in keep.scalars[(index / 24) * 4 + index % 4] == 1 ? 2.5 : 0 })
  }

  @Test func inferenceAndZeroProbabilityAreTheIdentity() {
    var rng = SplitMix64(seed: 1)
    let (y, mask) = Dropout2D(probability: 0.5).forward(Self.x, mode: .inference, using: &rng)
    #expect(y == Self.x && mask.shape == [0])
    #expect(rng == SplitMix64(seed: 1), "inference draws nothing")
    let (y0, mask0) = Dropout2D(probability: 0).forward(Self.x, mode: .training, using: &rng)
    #expect(y0 == Self.x && mask0.shape == [0])
    #expect(Dropout2D(probability: 0.5).backward(Self.x, mask: mask) == Self.x)
  }

  @Test func drawsAreReproducibleAndSampleMajor() {
    let dropout = Dropout2D(probability: 0.3)
    var a = SplitMix64(seed: 7), b = SplitMix64(seed: 7)
    let (ya, maskA) = dropout.forward(Self.x, mode: .training, using: &a)
    let (yb, maskB) = dropout.forward(Self.x, mode: .training, using: &b)
    #expect(ya == yb && maskA == maskB && a == b)
    #expect(maskA.shape == [2, 4])
    // One uniform per (sample, channel), sample-major: the mask is what those draws say.
    var replay = SplitMix64(seed: 7)
    let expected = (0..<8).map { _ -> Float in replay.nextUniform() < 0.3 ? 0 : 1 / (1 - Float(0.3)) }
    #expect(maskA.scalars == expected)
  }

  @Test func dropRateAndMeanArePreserved() {
    let dropout = Dropout2D(probability: 0.1)
    var rng = SplitMix64(seed: 11)
    let mask = dropout.drawMask(samples: 200, channels: 100, using: &rng)
    let dropped = mask.scalars.filter { $0 == 0 }.count
    // 20 000 Bernoulli(0.1) draws: mean 2000, standard deviation 42.
    #expect(abs(dropped - 2000) < 200, "dropped \(dropped) of 20000")
    #expect(abs(mask.scalars.reduce(0, +) / 20_000 - 1) < 0.02, "E[mask] = 1")
  }

  @Test func backwardMatchesFiniteDifferences() {
    var rng = SplitMix64(seed: 5)
    let dropout = Dropout2D(probability: 0.25)
    let input = Parameter(.randomNormal([2, 3, 3, 5], using: &rng))
    let mask = dropout.drawMask(samples: 2, channels: 5, using: &rng)
    #expect(mask.scalars.contains(0) && mask.scalars.contains(4.0 / 3))
    let dy = Tensor.randomNormal(input.value.shape, using: &rng)
    input.grad = dropout.backward(dy, mask: mask)
    expectGradientsMatch({ dropout.forward(input.value, mask: mask).dot(dy) }, wrt: input, named: "x")
  }
}
