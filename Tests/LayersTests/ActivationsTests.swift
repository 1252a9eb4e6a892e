import Testing
import Tensors
import TestSupport
import Layers

@Suite struct ActivationsTests {
  @Test func reluAndItsBackwardOnHandValues() {
    let x = Tensor(shape: [2, 2], scalars: [-1, 0, 2, -3])
    let y = relu(x)
    #expect(y == Tensor(shape: [2, 2], scalars: [0, 0, 2, 0]))
    let dy = Tensor(shape: [2, 2], scalars: [5, 6, 7, 8])
    #expect(reluBackward(dy, output: y) == Tensor(shape: [2, 2], scalars: [0, 0, 7, 0]))
  }

  @Test func reluBackwardMatchesFiniteDifferences() {
    var rng = SplitMix64(seed: 30)
    let x = Parameter(.randomNormal([2, 3, 3, 2], using: &rng))
    let dy = Tensor.randomNormal(x.value.shape, using: &rng)
    x.grad = reluBackward(dy, output: relu(x.value))
    expectGradientsMatch({ relu(x.value).dot(dy) }, wrt: x, named: "x")
  }

  @Test func addReLUBackwardMatchesFiniteDifferencesForBothInputs() {
    var rng = SplitMix64(seed: 31)
    let a = Parameter(.randomNormal([2, 3, 3, 2], using: &rng))
    let b = Parameter(.randomNormal([2, 3, 3, 2], using: &rng))
    let dy = Tensor.randomNormal(a.value.shape, using: &rng)
    let y = addReLU(a.value, b.value)
    #expect(y == relu(a.value + b.value))
    // a and b both feed the sum: each receives the same masked gradient.
    a.grad = reluBackward(dy, output: y)
    b.grad = a.grad
    let loss = { addReLU(a.value, b.value).dot(dy) }
    expectGradientsMatch(loss, wrt: a, named: "a")
    expectGradientsMatch(loss, wrt: b, named: "b")
  }

  @Test func dropoutIsIdentityInInference() {
    var rng = SplitMix64(seed: 32)
    let x = Tensor.randomNormal([2, 5], using: &rng)
    let before = rng
    let (y, mask) = dropout(x, probability: 0.5, mode: .inference, using: &rng)
    #expect(y == x)
    #expect(rng == before)
    #expect(dropoutBackward(x, mask: mask) == x)
  }

  @Test func dropoutZeroesAboutPAndScalesTheRestByOneOverOneMinusP() {
    var rng = SplitMix64(seed: 33)
    let x = Tensor(repeating: 2, shape: [4, 32, 32, 4])  // 16 384 elements, several RNG blocks
    let (y, mask) = dropout(x, probability: 0.25, mode: .training, using: &rng)
    // F.dropout: kept values are x / (1 − p) = 2 / 0.75.
    #expect(y.scalars.allSatisfy { $0 == 0 || abs($0 - 2 / 0.75) < 1e-6 })
    let dropped = Double(y.scalars.filter { $0 == 0 }.count) / Double(y.count)
    #expect(abs(dropped - 0.25) < 0.02)
    #expect(mask.shape == x.shape)
    // The same generator state gives the same mask; the next draw gives another.
    var replay = SplitMix64(seed: 33)
    #expect(dropout(x, probability: 0.25, mode: .training, using: &replay).mask == mask)
    #expect(dropout(x, probability: 0.25, mode: .training, using: &replay).mask != mask)
    var allDropped = SplitMix64(seed: 1)
    #expect(dropout(x, probability: 1, mode: .training, using: &allDropped).0.scalars.allSatisfy { $0 == 0 })
  }

  @Test func dropoutBackwardMatchesFiniteDifferences() {
    var rng = SplitMix64(seed: 34)
    let x = Parameter(.randomNormal([2, 3, 3, 2], using: &rng))
    let dy = Tensor.randomNormal(x.value.shape, using: &rng)
    let start = rng
    let (_, mask) = dropout(x.value, probability: 0.3, mode: .training, using: &rng)
    x.grad = dropoutBackward(dy, mask: mask)
    let loss = { () -> Double in
      var replay = start  // the same mask every evaluation
      return dropout(x.value, probability: 0.3, mode: .training, using: &replay).0.dot(dy)
    }
    expectGradientsMatch(loss, wrt: x, named: "x")
  }
}
