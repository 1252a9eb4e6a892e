// Learning-rate schedules as pure functions, with mmcv 1.x LrUpdaterHook semantics (mmcv/runner/hooks/lr_updater.py).
import Foundation

/// Where training is: the inputs every schedule reads. Counters are 0-based and count *completed* units, as
/// mmcv's `runner.epoch` and `runner.iter` do when the LR hook runs before an epoch or iteration.
public struct TrainingProgress: Sendable, Equatable {
  public var epoch: Int
  /// Global iteration over the whole run (not within the epoch).
  public var iteration: Int
  public var totalEpochs: Int
  public var totalIterations: Int

  public init(epoch: Int, iteration: Int = 0, totalEpochs: Int, totalIterations: Int = 0) {
    self.epoch = epoch
    self.iteration = iteration
    self.totalEpochs = totalEpochs
    self.totalIterations = totalIterations
  }
}

/// A learning-rate policy, whether it advances per epoch or per iteration, and an optional linear warm-up.
///
/// Encoded as JSON like `{"policy": {"cosine": {"minimum": 0}}, "isByEpoch": true}`.
public struct LearningRateSchedule: Codable, Sendable, Equatable {
  public enum Policy: Codable, Sendable, Equatable {
    /// The base rate throughout (mmcv `policy='fixed'`).
    case constant
    /// mmcv `CosineAnnealing(min_lr=minimum)`.
    case cosine(minimum: Float)
    /// mmcv `step=milestones, gamma=gamma`: multiplied by gamma at each milestone reached.
    case step(milestones: [Int], gamma: Float)
    /// mmcv `Poly(power=power, min_lr=minimum)`.
    case poly(power: Float, minimum: Float)
  }

  public var policy: Policy
  /// True: progress counts epochs (mmcv's default `by_epoch=True`); false: iterations.
  public var isByEpoch: Bool
  public var warmup: LinearWarmup?

  public init(_ policy: Policy, isByEpoch: Bool = true, warmup: LinearWarmup? = nil) {
    self.policy = policy
    self.isByEpoch = isByEpoch
    self.warmup = warmup
  }

  /// The rate for a group whose initial rate is `base` at `progress`: the policy, then the warm-up (which
  /// always counts iterations, as mmcv's does).
  public func learningRate(base: Float, at progress: TrainingProgress) -> Float {
    let current = isByEpoch ? progress.epoch : progress.iteration
    let total = isByEpoch ? progress.totalEpochs : progress.totalIterations
    let regular: Float = switch policy {
    case .constant: base
    case let .cosine(minimum):
      cosineAnnealingLearningRate(base: base, minimum: minimum, progress: current, maxProgress: total)
    case let .step(milestones, gamma):
      stepLearningRate(base: base, gamma: gamma, milestones: milestones, progress: current)
    case let .poly(power, minimum):
      polyLearningRate(base: base, minimum: minimum, power: power, progress: current, maxProgress: total)
    }
    guard let warmup else { return regular }
    return linearWarmupLearningRate(regular, ratio: warmup.ratio, iteration: progress.iteration,
                                    warmupIterations: warmup.iterations)
  }
}

/// mmcv `warmup='linear', warmup_iters=iterations, warmup_ratio=ratio`.
public struct LinearWarmup: Codable, Sendable, Equatable {
  public var iterations: Int
  public var ratio: Float

  public init(iterations: Int, ratio: Float) {
    self.iterations = iterations
    self.ratio = ratio
  }
}

// MARK: - The policies (computed in Double like mmcv's Python floats, returned as Float)

/// mmcv `annealing_cos(base, min, e/E)`: `min + 0.5·(base − min)·(1 + cos(π·e/E))`.
///
/// Per epoch with `by_epoch=True`: epoch 0 runs at `base`, and the rate never reaches `min` (E is not run).
public func cosineAnnealingLearningRate(base: Float, minimum: Float, progress: Int, maxProgress: Int) -> Float {
  precondition(maxProgress > 0, "Cosine annealing needs a positive length, got \(maxProgress).")
  let factor = Double(progress) / Double(maxProgress)
  return Float(Double(minimum) + (Double(base) - Double(minimum)) / 2 * (cos(Double.pi * factor) + 1))
}

/// mmcv `StepLrUpdaterHook`: `base·gamma^k`, with k the number of milestones ≤ `progress`.
public func stepLearningRate(base: Float, gamma: Float, milestones: [Int], progress: Int) -> Float {
  let reached = milestones.filter { progress >= $0 }.count
  return Float(Double(base) * pow(Double(gamma), Double(reached)))
}

/// mmcv `PolyLrUpdaterHook`: `(base − min)·(1 − t/T)^power + min`.
public func polyLearningRate(base: Float, minimum: Float, power: Float, progress: Int, maxProgress: Int) -> Float {
  precondition(maxProgress > 0, "The poly schedule needs a positive length, got \(maxProgress).")
  let coefficient = pow(1 - Double(progress) / Double(maxProgress), Double(power))
  return Float((Double(base) - Double(minimum)) * coefficient + Double(minimum))
}

/// mmcv linear warm-up: `lr·(1 − (1 − ratio)·(1 − i/W))` for iterations i < W, then `lr` unchanged.
public func linearWarmupLearningRate(_ learningRate: Float, ratio: Float, iteration: Int,
                                     warmupIterations: Int) -> Float {
  guard iteration < warmupIterations else { return learningRate }
  let k = (1 - Double(iteration) / Double(warmupIterations)) * (1 - Double(ratio))
  return Float(Double(learningRate) * (1 - k))
}
