import Foundation
import Testing
import Tensors
import Layers

@Suite struct LearningRateScheduleTests {
  @Test func cosinePerEpoch() {
    // min + 0.5·(base − min)·(1 + cos(π·e/E)), base 0.05, min 0, E = 100.
    func rate(_ epoch: Int) -> Float {
      cosineAnnealingLearningRate(base: 0.05, minimum: 0, progress: epoch, maxProgress: 100)
    }
    #expect(rate(0) == 0.05)
    #expect(abs(rate(25) - 0.0426777) < 1e-7)  // 0.025·(1 + cos(π/4))
    #expect(abs(rate(50) - 0.025) < 1e-8)
    #expect(abs(rate(100)) < 1e-9)
    #expect(abs(cosineAnnealingLearningRate(base: 1, minimum: 0.2, progress: 50, maxProgress: 100) - 0.6) < 1e-7)
  }

  @Test func stepAtMilestones() {
    // Places205: lr 0.01, ×0.1 at epochs 7, 14, 21.
    func rate(_ epoch: Int) -> Float { stepLearningRate(base: 0.01, gamma: 0.1, milestones: [7, 14, 21], progress: epoch) }
    #expect(rate(0) == 0.01)
    #expect(rate(6) == 0.01)
    #expect(abs(rate(7) - 1e-3) < 1e-10)
    #expect(abs(rate(20) - 1e-4) < 1e-11)
    #expect(abs(rate(27) - 1e-5) < 1e-12)
  }

  @Test func polyPerIteration() {
    // (0.01 − 1e-4)·(1 − t/20000)^0.9 + 1e-4: 0.0099·0.5^0.9 + 1e-4 = 0.00540528 at t = 10000.
    func rate(_ iteration: Int) -> Float {
      polyLearningRate(base: 0.01, minimum: 1e-4, power: 0.9, progress: iteration, maxProgress: 20_000)
    }
    #expect(rate(0) == 0.01)
    #expect(abs(rate(10_000) - 0.00540528) < 1e-8)
    #expect(abs(rate(20_000) - 1e-4) < 1e-10)
  }

  @Test func linearWarmup() {
    // 0.02·(1 − 0.999·(1 − i/100)): 2e-5 at i = 0, 0.01001 at i = 50, 0.02 from i = 100 on.
    func rate(_ iteration: Int) -> Float {
      linearWarmupLearningRate(0.02, ratio: 0.001, iteration: iteration, warmupIterations: 100)
    }
    #expect(abs(rate(0) - 2e-5) < 1e-10)
    #expect(abs(rate(50) - 0.01001) < 1e-8)
    #expect(rate(100) == 0.02)
    #expect(rate(5000) == 0.02)
  }

  @Test func scheduleCombinesPolicyAndWarmup() {
    // Faster R-CNN style: step at epochs 8 and 11 by epoch, linear warm-up over the first 1000 iterations.
    let schedule = LearningRateSchedule(.step(milestones: [8, 11], gamma: 0.1),
                                        warmup: LinearWarmup(iterations: 1000, ratio: 0.001))
    let early = TrainingProgress(epoch: 0, iteration: 500, totalEpochs: 12, totalIterations: 12_000)
    #expect(abs(schedule.learningRate(base: 0.02, at: early) - 0.02 * (1 - 0.999 * 0.5)) < 1e-8)
    let late = TrainingProgress(epoch: 9, iteration: 9_000, totalEpochs: 12, totalIterations: 12_000)
    #expect(abs(schedule.learningRate(base: 0.02, at: late) - 0.002) < 1e-9)
    // By iteration: poly counts iterations, not epochs.
    let poly = LearningRateSchedule(.poly(power: 1, minimum: 0), isByEpoch: false)
    #expect(poly.learningRate(base: 1, at: late) == 0.25)
  }

  @Test func fixedGroupKeepsBaseRate() {
    // SimSiam: encoder follows the cosine, the predictor (fix_lr) stays at 0.05 all run.
    let encoder = ParameterGroup(parameters: [Parameter(Tensor.zeros([2]))], learningRate: 0.05)
    let predictor = ParameterGroup(parameters: [Parameter(Tensor.zeros([2]))], learningRate: 0.05,
                                   isLearningRateFixed: true)
    let sgd = SGD([encoder, predictor], momentum: 0.9, weightDecay: 1e-4)
    let schedule = LearningRateSchedule(.cosine(minimum: 0))
    for epoch in [0, 50, 99] {
      sgd.updateLearningRates(schedule, at: TrainingProgress(epoch: epoch, totalEpochs: 100))
      #expect(sgd.parameterGroups[1].learningRate == 0.05)
      #expect(sgd.parameterGroups[0].learningRate
                == cosineAnnealingLearningRate(base: 0.05, minimum: 0, progress: epoch, maxProgress: 100))
    }
    #expect(sgd.parameterGroups[0].learningRate < 0.001)
  }

  @Test func scheduledRateDrivesTheStep() {
    // After the schedule sets lr = 0.025 (cosine at E/2), one plain step moves w by 0.025·g.
    let w = makeParameter([1], grad: [2])
    let sgd = SGD([w], learningRate: 0.05)
    sgd.updateLearningRates(LearningRateSchedule(.cosine(minimum: 0)), at: TrainingProgress(epoch: 5, totalEpochs: 10))
    sgd.step()
    expectCloseScalar(w.value.scalars[0], 1 - 0.05)
  }

  @Test func configRoundTripsThroughJSON() throws {
    let schedule = LearningRateSchedule(.poly(power: 0.9, minimum: 1e-4), isByEpoch: false,
                                        warmup: LinearWarmup(iterations: 100, ratio: 0.001))
    let data = try JSONEncoder().encode(schedule)
    #expect(try JSONDecoder().decode(LearningRateSchedule.self, from: data) == schedule)
    let cosine = try JSONDecoder().decode(LearningRateSchedule.self,
                                          from: Data(#"{"policy": {"cosine": {"minimum": 0}}, "isByEpoch": true}"#.utf8))
    #expect(cosine == LearningRateSchedule(.cosine(minimum: 0)))
  }
}

func expectCloseScalar(_ actual: Float, _ expected: Float, tolerance: Float = 1e-6,
                       sourceLocation: SourceLocation = #_sourceLocation) {
  #expect(abs(actual - expected) <= tolerance, "got \(actual), expected \(expected)", sourceLocation: sourceLocation)
}
