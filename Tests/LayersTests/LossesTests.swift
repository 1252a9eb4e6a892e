import Foundation
import Testing
import Tensors
import TestSupport
import Layers

@Suite struct LossesTests {
  // MARK: - Cross-entropy

  @Test(arguments: [[3, 4], [2, 2, 2, 3]])
  func crossEntropyGradientMatchesFiniteDifferences(shape: [Int]) {
    var rng = SplitMix64(seed: 40)
    let logits = Parameter(.randomNormal(shape, std: 2, using: &rng))
    let classes = shape.last!
    let positions = logits.value.count / classes
    var labels = (0..<positions).map { $0 % classes }
    labels[1] = -100  // ignored
    logits.grad = crossEntropy(logits: logits.value, labels: labels).gradient
    // The ignored position gets no gradient.
    #expect((classes..<2 * classes).allSatisfy { logits.grad.scalars[$0] == 0 })
    expectGradientsMatch({ Double(crossEntropy(logits: logits.value, labels: labels).loss) },
                         wrt: logits, named: "logits", step: 1e-2)
  }

  @Test func crossEntropyOfUniformLogitsIsLogClasses() {
    let (loss, gradient) = crossEntropy(logits: Tensor(repeating: 0.7, shape: [2, 5]), labels: [1, 4])
    #expect(abs(loss - Float(log(5.0))) < 1e-6)
    // (softmax − onehot)/n = (0.2 − [j = label])/2
    #expect(abs(gradient[[0, 0]] - 0.1) < 1e-7 && abs(gradient[[0, 1]] + 0.4) < 1e-7)
  }

  @Test func crossEntropyHandValueAndStability() {
    // logits [0, ln 3], label 1: p = 3/4, loss = log(4/3). Shifting by 1000 must not overflow.
    let x = Tensor(shape: [1, 2], scalars: [1000, 1000 + Float(log(3.0))])
    let (loss, _) = crossEntropy(logits: x, labels: [1])
    #expect(abs(loss - Float(log(4.0 / 3.0))) < 1e-4)
  }

  @Test func crossEntropyAveragesOverNonIgnoredPositionsOnly() {
    var rng = SplitMix64(seed: 41)
    let logits = Tensor.randomNormal([4, 3], using: &rng)
    let full = crossEntropy(logits: logits, labels: [2, 7, 0, 1], ignoreIndex: 7)
    let kept = Tensor(shape: [3, 3], scalars: Array(logits.scalars[0..<3] + logits.scalars[6..<12]))
    let reference = crossEntropy(logits: kept, labels: [2, 0, 1])
    #expect(abs(full.loss - reference.loss) < 1e-6)
    #expect(crossEntropy(logits: logits, labels: [-100, -100, -100, -100]).loss.isNaN)  // 0/0, as PyTorch
  }

  // MARK: - Negative cosine similarity

  @Test func negativeCosineGradientMatchesFiniteDifferences() {
    var rng = SplitMix64(seed: 42)
    let p = Parameter(.randomNormal([3, 4], using: &rng))
    let z = Tensor.randomNormal([3, 4], using: &rng)
    p.grad = negativeCosineSimilarity(p.value, target: z).gradient
    expectGradientsMatch({ Double(negativeCosineSimilarity(p.value, target: z).loss) }, wrt: p, named: "p",
                         step: 1e-2)
  }

  @Test func negativeCosineTakesNoGradientThroughTheTarget() {
    var rng = SplitMix64(seed: 43)
    let p = Tensor.randomNormal([2, 4], using: &rng)
    var z = Tensor.randomNormal([2, 4], using: &rng)
    let (_, gradient) = negativeCosineSimilarity(p, target: z)
    #expect(gradient.shape == p.shape)  // the only gradient returned is ∂L/∂p
    // The loss does depend on z, so a gradient w.r.t. z would be non-zero: the function stops it on purpose.
    let h: Float = 1e-2
    var largest = 0.0
    for i in 0..<z.count {
      let original = z.scalars[i]
      z.scalars[i] = original + h
      let plus = Double(negativeCosineSimilarity(p, target: z).loss)
      z.scalars[i] = original - h
      let minus = Double(negativeCosineSimilarity(p, target: z).loss)
      z.scalars[i] = original
      largest = max(largest, abs(plus - minus) / (2 * Double(h)))
    }
    #expect(largest > 1e-2)
    // And ∂L/∂p is that of a constant target: unchanged when z is replaced by a copy.
    #expect(negativeCosineSimilarity(p, target: Tensor(shape: z.shape, scalars: z.scalars)).gradient == gradient)
  }

  @Test func negativeCosineHandValues() {
    let p = Tensor(shape: [2, 3], scalars: [1, 2, 3, 0, 1, 0])
    // Parallel rows (z = 2.5·p): cosine 1, loss −1, and a zero gradient (a maximum).
    let parallel = negativeCosineSimilarity(p, target: 2.5 * p)
    #expect(abs(parallel.loss + 1) < 1e-6)
    #expect(parallel.gradient.scalars.allSatisfy { abs($0) < 1e-6 })
    // Antiparallel → +1; orthogonal rows → 0.
    #expect(abs(negativeCosineSimilarity(p, target: -1 * p).loss - 1) < 1e-6)
    let orthogonal = Tensor(shape: [2, 3], scalars: [3, 0, -1, 1, 0, 0])
    #expect(abs(negativeCosineSimilarity(p, target: orthogonal).loss) < 1e-6)
    // F.normalize clamps the norm at 1e-12: a zero prediction gives loss 0, not NaN.
    let zero = negativeCosineSimilarity(Tensor.zeros([2, 3]), target: p)
    #expect(zero.loss == 0 && zero.gradient.scalars.allSatisfy { $0.isFinite })
  }

  // MARK: - Smooth L1

  @Test func smoothL1HandValues() {
    let x = Tensor(shape: [3], scalars: [0.5, 2, -3])
    let target = Tensor.zeros([3])
    // β = 1: 0.5·0.25 = 0.125, 2 − 0.5 = 1.5, 3 − 0.5 = 2.5 → sum 4.125, mean 1.375.
    let mean = smoothL1(x, target: target)
    #expect(abs(mean.loss - 1.375) < 1e-6)
    #expect(mean.gradient == Tensor(shape: [3], scalars: [0.5 / 3, 1 / 3.0, -1 / 3.0]))
    #expect(abs(smoothL1(x, target: target, reduction: .sum).loss - 4.125) < 1e-6)
    // β = 0 is L1: 0.5 + 2 + 3.
    let l1 = smoothL1(x, target: target, beta: 0, reduction: .sum)
    #expect(abs(l1.loss - 5.5) < 1e-6)
    #expect(l1.gradient == Tensor(shape: [3], scalars: [1, 1, -1]))
  }

  @Test(arguments: [(Float(1), Reduction.mean), (Float(0.5), .sum), (Float(0), .mean)])
  func smoothL1GradientMatchesFiniteDifferences(beta: Float, reduction: Reduction) {
    var rng = SplitMix64(seed: 44)
    let x = Parameter(.randomNormal([2, 5], std: 1.5, using: &rng))
    let target = Tensor.randomNormal([2, 5], using: &rng)
    x.grad = smoothL1(x.value, target: target, beta: beta, reduction: reduction).gradient
    expectGradientsMatch({ Double(smoothL1(x.value, target: target, beta: beta, reduction: reduction).loss) },
                         wrt: x, named: "x", step: 1e-3)
  }

  // MARK: - Binary cross-entropy with logits

  @Test func binaryCrossEntropyHandValuesAndStability() {
    // x = 0: log 2 whatever the target; x = 100, t = 1: ≈ 0; x = −100, t = 1: ≈ 100 (no overflow).
    let logits = Tensor(shape: [3], scalars: [0, 100, -100])
    let targets = Tensor(shape: [3], scalars: [1, 1, 1])
    let sum = binaryCrossEntropyWithLogits(logits, targets: targets, reduction: .sum)
    #expect(abs(sum.loss - (Float(log(2.0)) + 100)) < 1e-4)
    #expect(sum.gradient.scalars.allSatisfy { $0.isFinite })
    expectClose(sum.gradient, Tensor(shape: [3], scalars: [-0.5, 0, -1]), atol: 1e-6, "gradient")
    let weighted = binaryCrossEntropyWithLogits(logits, targets: targets,
                                                weights: Tensor(shape: [3], scalars: [2, 1, 0]))
    #expect(abs(weighted.loss - 2 * Float(log(2.0)) / 3) < 1e-6)
  }

  @Test(arguments: [Reduction.mean, .sum], [false, true])
  func binaryCrossEntropyGradientMatchesFiniteDifferences(reduction: Reduction, isWeighted: Bool) {
    var rng = SplitMix64(seed: 45)
    let logits = Parameter(.randomNormal([2, 3, 3, 1], std: 2, using: &rng))
    let targets = Tensor.randomUniform([2, 3, 3, 1], low: 0, high: 1, using: &rng)
    let weights = isWeighted ? Tensor.randomUniform([2, 3, 3, 1], low: 0, high: 2, using: &rng) : nil
    logits.grad = binaryCrossEntropyWithLogits(logits.value, targets: targets, weights: weights,
                                               reduction: reduction).gradient
    let loss = {
      Double(binaryCrossEntropyWithLogits(logits.value, targets: targets, weights: weights, reduction: reduction).loss)
    }
    expectGradientsMatch(loss, wrt: logits, named: "logits", step: 1e-2)
  }
}
