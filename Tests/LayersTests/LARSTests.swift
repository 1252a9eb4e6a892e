import Testing
import Tensors
import Layers
import TestSupport

@Suite struct LARSTests {
  @Test func twoStepsMatchHandComputation() {
    // MMSelfSup LARS(lr=2, momentum=0.9, weight_decay=0.1), w = [3, 4] (‖w‖ = 5), g = [0.6, 0.8] (‖g‖ = 1):
    // step 1: local_lr = 0.001·5 / (1 + 0.1·5 + 1e-8) = 0.0033333; actual = 2·local_lr = 0.0066667;
    //   d = (g + 0.1·w)·actual = [0.9, 1.2]·0.0066667 = [0.006, 0.008]; buf = d; w = [2.994, 3.992].
    // step 2, same g: ‖w‖ = √24.9001 = 4.99; local_lr = 0.00499 / 1.499 = 0.00332889; actual = 0.00665777;
    //   d = [0.8994, 1.1992]·0.00665777 = [0.005988, 0.007984];
    //   buf = 0.9·[0.006, 0.008] + d = [0.011388, 0.015184]; w = [2.982612, 3.976816].
    let w = makeParameter([3, 4], grad: [0.6, 0.8])
    let lars = LARS([w], learningRate: 2, momentum: 0.9, weightDecay: 0.1)
    lars.step()
    expectClose(w.value, Tensor(shape: [2], scalars: [2.994, 3.992]), rtol: 1e-6, "after step 1")
    lars.step()
    expectClose(w.value, Tensor(shape: [2], scalars: [2.982612, 3.976816]), rtol: 1e-6, "after step 2")
    expectClose(lars.momentumBuffers[0]!, Tensor(shape: [2], scalars: [0.011388, 0.015184]), rtol: 1e-5, "buffer")
  }

  @Test func zeroWeightOrZeroGradientUsesUnitLocalRate() {
    // ‖w‖ = 0 (a zero-initialised bias): local_lr = 1, d = (g + 0)·2 = [2, 4], w = [−2, −4].
    let bias = makeParameter([0, 0], grad: [1, 2])
    // ‖g‖ = 0: local_lr = 1, d = (0 + 0.1·1)·2 = 0.2, w = 0.8.
    let idle = makeParameter([1, 1], grad: [0, 0])
    let lars = LARS([ParameterGroup(parameters: [bias], learningRate: 2, weightDecay: 0),
                     ParameterGroup(parameters: [idle], learningRate: 2)], weightDecay: 0.1)
    lars.step()
    #expect(bias.value.scalars == [-2, -4])
    expectClose(idle.value, Tensor(shape: [2], scalars: [0.8, 0.8]), rtol: 1e-6)
  }

  @Test func excludedGroupSkipsAdaptation() {
    // lars_exclude: local_lr = 1 even though ‖w‖, ‖g‖ > 0; d = [0.6, 0.8]·0.5, w = [2.7, 3.6].
    let w = makeParameter([3, 4], grad: [0.6, 0.8])
    let lars = LARS([ParameterGroup(parameters: [w], learningRate: 0.5, isExcludedFromLARS: true)])
    lars.step()
    expectClose(w.value, Tensor(shape: [2], scalars: [2.7, 3.6]), rtol: 1e-6)
  }

  @Test func frozenParametersAndBuffersAreUntouched() {
    let frozen = makeParameter([1, 2], grad: [3, 4], isTrainable: false)
    let buffer = Parameter(Tensor(shape: [2], scalars: [5, 6]), isBuffer: true)
    let lars = LARS([frozen, buffer], learningRate: 1.6, momentum: 0.9)
    lars.step()
    #expect(frozen.value.scalars == [1, 2])
    #expect(buffer.value.scalars == [5, 6])
    #expect(lars.momentumBuffers == [nil, nil])
  }
}
