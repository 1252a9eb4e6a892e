import Testing
import Tensors
import Layers
import TestSupport

/// A parameter holding `values` with gradient `grad`.
func makeParameter(_ values: [Float], grad: [Float], isTrainable: Bool = true) -> Parameter {
  let parameter = Parameter(Tensor(shape: [values.count], scalars: values), isTrainable: isTrainable)
  parameter.grad = Tensor(shape: [grad.count], scalars: grad)
  return parameter
}

@Suite struct SGDTests {
  @Test func twoNesterovStepsWithWeightDecayMatchHandComputation() {
    // torch.optim.SGD([w], lr=0.1, momentum=0.9, weight_decay=0.1, nesterov=True), w = [1, -2]:
    // step 1, g = [0.5, 0.25]: d = g + 0.1·w = [0.6, 0.05]; buf = d = [0.6, 0.05];
    //   d = d + 0.9·buf = [1.14, 0.095]; w = w − 0.1·d = [0.886, −2.0095].
    // step 2, g = [−1, 0.5]: d = g + 0.1·w = [−0.9114, 0.29905];
    //   buf = 0.9·[0.6, 0.05] + d = [−0.3714, 0.34405]; d = d + 0.9·buf = [−1.24566, 0.608695];
    //   w = [0.886 + 0.124566, −2.0095 − 0.0608695] = [1.010566, −2.0703695].
    let w = makeParameter([1, -2], grad: [0.5, 0.25])
    let sgd = SGD([w], learningRate: 0.1, momentum: 0.9, weightDecay: 0.1, nesterov: true)
    sgd.step()
    expectClose(w.value, Tensor(shape: [2], scalars: [0.886, -2.0095]), rtol: 1e-6, "after step 1")
    expectClose(sgd.momentumBuffers[0]!, Tensor(shape: [2], scalars: [0.6, 0.05]), rtol: 1e-6, "buffer 1")
    w.grad = Tensor(shape: [2], scalars: [-1, 0.5])
    sgd.step()
    expectClose(w.value, Tensor(shape: [2], scalars: [1.010566, -2.0703695]), rtol: 1e-6, "after step 2")
    expectClose(sgd.momentumBuffers[0]!, Tensor(shape: [2], scalars: [-0.3714, 0.34405]), rtol: 1e-5, "buffer 2")
  }

  @Test func twoHeavyBallStepsMatchHandComputation() {
    // Same as above without Nesterov: step 1: d = buf = [0.6, 0.05], w = [0.94, −2.005].
    // step 2, g = [−1, 0.5]: d = [−1 + 0.094, 0.5 − 0.2005] = [−0.906, 0.2995];
    //   buf = [0.54 − 0.906, 0.045 + 0.2995] = [−0.366, 0.3445]; w = [0.9766, −2.03945].
    let w = makeParameter([1, -2], grad: [0.5, 0.25])
    let sgd = SGD([w], learningRate: 0.1, momentum: 0.9, weightDecay: 0.1)
    sgd.step()
    expectClose(w.value, Tensor(shape: [2], scalars: [0.94, -2.005]), rtol: 1e-6, "after step 1")
    w.grad = Tensor(shape: [2], scalars: [-1, 0.5])
    sgd.step()
    expectClose(w.value, Tensor(shape: [2], scalars: [0.9766, -2.03945]), rtol: 1e-6, "after step 2")
  }

  @Test func plainStepWithoutMomentumKeepsNoBuffer() {
    // d = g + 0.5·w = [1 + 1, −1 + 0.5]; w = [2, 1] − 0.25·[2, −0.5] = [1.5, 1.125].
    let w = makeParameter([2, 1], grad: [1, -1])
    let sgd = SGD([w], learningRate: 0.25, weightDecay: 0.5)
    sgd.step()
    #expect(w.value.scalars == [1.5, 1.125])
    #expect(sgd.momentumBuffers == [nil])
  }

  @Test func frozenParametersAndBuffersAreUntouched() {
    let frozen = makeParameter([1, 2], grad: [3, 4], isTrainable: false)
    let buffer = Parameter(Tensor(shape: [2], scalars: [5, 6]), isBuffer: true)
    let trained = makeParameter([1, 1], grad: [1, 1])
    let sgd = SGD([frozen, buffer, trained], learningRate: 0.1, momentum: 0.9, weightDecay: 0.1)
    sgd.step()
    sgd.step()
    #expect(frozen.value.scalars == [1, 2])
    #expect(buffer.value.scalars == [5, 6])
    #expect(trained.value.scalars != [1, 1])
    #expect(sgd.momentumBuffers[0] == nil && sgd.momentumBuffers[1] == nil && sgd.momentumBuffers[2] != nil)
  }

  @Test func restoredMomentumResumesExactly() throws {
    var rng = SplitMix64(seed: 3)
    let grads = (0..<3).map { _ in Tensor.randomNormal([4, 3], using: &rng) }
    let start = Tensor.randomNormal([4, 3], using: &rng)
    func run(_ sgd: SGD, _ w: Parameter, steps: Range<Int>) {
      for step in steps {
        w.grad = grads[step]
        sgd.step()
      }
    }
    let reference = Parameter(start)
    let straight = SGD([reference], learningRate: 0.05, momentum: 0.9, weightDecay: 1e-4)
    run(straight, reference, steps: 0..<3)

    let resumed = Parameter(start)
    let first = SGD([resumed], learningRate: 0.05, momentum: 0.9, weightDecay: 1e-4)
    run(first, resumed, steps: 0..<1)
    let second = SGD([resumed], learningRate: 0.05, momentum: 0.9, weightDecay: 1e-4)
    try second.restoreMomentumBuffers(first.momentumBuffers)
    run(second, resumed, steps: 1..<3)
    #expect(resumed.value == reference.value)
  }

  @Test func restoringMismatchedMomentumThrows() {
    let sgd = SGD([makeParameter([1, 2], grad: [0, 0])], learningRate: 0.1, momentum: 0.9)
    #expect(throws: OptimizerError.momentumBufferCountMismatch(expected: 1, found: 2)) {
      try sgd.restoreMomentumBuffers([nil, nil])
    }
    #expect(throws: OptimizerError.momentumBufferShapeMismatch(index: 0, expected: [2], found: [3])) {
      try sgd.restoreMomentumBuffers([Tensor.zeros([3])])
    }
  }

  @Test func largeParameterMatchesScalarFormula() {
    // Exercises the multi-threaded path (more scalars than one parallelFor chunk).
    var rng = SplitMix64(seed: 11)
    let start = Tensor.randomNormal([70_001], using: &rng)
    let grad = Tensor.randomNormal([70_001], using: &rng)
    let w = Parameter(start)
    w.grad = grad
    let sgd = SGD([w], learningRate: 0.1, momentum: 0.9, weightDecay: 0.01, nesterov: true)
    sgd.step()
    let expected = start.zipped(with: grad) { w, g in
      let d = g + 0.01 * w
      return w - 0.1 * (d + 0.9 * d)
    }
    expectClose(w.value, expected, rtol: 1e-6, atol: 1e-7)
  }
}
