// What SGD and LARS share: parameter groups (torch.optim param_groups), per-epoch LR updates, momentum state.
import Tensors

/// A set of parameters that share a learning rate, like one entry of `torch.optim.Optimizer.param_groups`.
///
/// `baseLearningRate` is mmcv's `initial_lr`: schedules scale it into `learningRate`. A group with
/// `isLearningRateFixed` keeps its base rate whatever the schedule says, as MMSelfSup's
/// `SimSiamHook(fix_pred_lr=True)` and the official `--fix-pred-lr` do for the SimSiam predictor.
public struct ParameterGroup {
  public var parameters: [Parameter]
  public let baseLearningRate: Float
  /// The rate the next `step()` uses.
  public var learningRate: Float
  public var isLearningRateFixed: Bool
  /// Overrides the optimiser's weight decay for this group (mmcv `paramwise_cfg`); nil uses the optimiser's.
  public var weightDecay: Float?
  /// LARS only: use local_lr = 1 for this group (MMSelfSup's `lars_exclude`, usually set for BN and bias).
  public var isExcludedFromLARS: Bool

  public init(parameters: [Parameter], learningRate: Float, isLearningRateFixed: Bool = false,
              weightDecay: Float? = nil, isExcludedFromLARS: Bool = false) {
    self.parameters = parameters
    self.baseLearningRate = learningRate
    self.learningRate = learningRate
    self.isLearningRateFixed = isLearningRateFixed
    self.weightDecay = weightDecay
    self.isExcludedFromLARS = isExcludedFromLARS
  }
}

/// An optimiser over parameter groups. Parameters with `isTrainable == false` and buffers are never touched.
public protocol Optimizer: AnyObject {
  var parameterGroups: [ParameterGroup] { get set }
  /// One momentum buffer per parameter, indexed over all groups in order; nil before a parameter's first
  /// step (and always for frozen parameters, buffers, or without momentum).
  var momentumBuffers: [Tensor?] { get }
  /// Replaces the momentum state, e.g. from a checkpoint, so a resumed run continues exactly.
  func restoreMomentumBuffers(_ buffers: [Tensor?]) throws
  /// Applies one update from the gradients accumulated in each parameter's `grad`.
  func step()
}

extension Optimizer {
  /// Every parameter of every group, in the order `momentumBuffers` is indexed.
  public var allParameters: [Parameter] { parameterGroups.flatMap(\.parameters) }

  /// Sets each group's rate to `schedule(baseLearningRate)`; fixed groups go back to their base rate.
  ///
  /// This is mmcv's LrUpdaterHook followed by MMSelfSup's SimSiamHook (priority HIGH, so after the LR hook),
  /// which resets the `fix_lr` groups to their initial rate before every epoch.
  public func updateLearningRates(_ schedule: (_ baseLearningRate: Float) -> Float) {
    for index in parameterGroups.indices {
      let base = parameterGroups[index].baseLearningRate
      parameterGroups[index].learningRate = parameterGroups[index].isLearningRateFixed ? base : schedule(base)
    }
  }

  /// Sets each group's rate from `schedule` at `progress`; fixed groups keep their base rate.
  public func updateLearningRates(_ schedule: LearningRateSchedule, at progress: TrainingProgress) {
    updateLearningRates { schedule.learningRate(base: $0, at: progress) }
  }

  /// Zeroes the gradient of every parameter in every group.
  public func zeroGrad() { for parameter in allParameters { parameter.zeroGrad() } }
}

/// Restored optimiser state that does not fit the optimiser's parameters.
public enum OptimizerError: Error, CustomStringConvertible, Equatable {
  /// The saved state has a different number of momentum buffers than the optimiser has parameters.
  case momentumBufferCountMismatch(expected: Int, found: Int)
  /// The saved momentum buffer for parameter `index` has the wrong shape.
  case momentumBufferShapeMismatch(index: Int, expected: [Int], found: [Int])

  public var description: String {
    switch self {
    case let .momentumBufferCountMismatch(expected, found):
      "The saved optimiser state has \(found) momentum buffers, but the optimiser holds \(expected) parameters. "
        + "Was the checkpoint written for another architecture or another parameter grouping?"
    case let .momentumBufferShapeMismatch(index, expected, found):
      "The saved momentum buffer for parameter \(index) has shape \(found), expected \(expected). "
        + "Was the checkpoint written for another architecture?"
    }
  }
}

extension Optimizer {
  /// Calls `body(group, parameter, slot, weightDecay)` for every trainable, non-buffer parameter, where `slot`
  /// indexes `momentumBuffers` (one slot per parameter of every group, in order) and `weightDecay` is the group's
  /// own or `defaultWeightDecay`. Shared by SGD and LARS, whose updates differ only inside `body`.
  func forEachTrainableParameter(name: String, defaultWeightDecay: Float,
                                 _ body: (ParameterGroup, Parameter, Int, Float) -> Void) {
    precondition(momentumBuffers.count == allParameters.count,
                 "\(name) has \(momentumBuffers.count) momentum slots for \(allParameters.count) parameters; "
                   + "parameters were added to a group after the optimiser was made.")
    var slot = 0
    for group in parameterGroups {
      let weightDecay = group.weightDecay ?? defaultWeightDecay
      for parameter in group.parameters {
        defer { slot += 1 }
        guard parameter.isTrainable, !parameter.isBuffer else { continue }
        precondition(parameter.grad.shape == parameter.value.shape,
                     "\(name): gradient shape \(parameter.grad.shape) differs from value shape "
                       + "\(parameter.value.shape).")
        body(group, parameter, slot, weightDecay)
      }
    }
  }
}

/// Checks restored buffers against `parameters`: the count, then each non-nil buffer's shape.
func validateMomentumBuffers(_ buffers: [Tensor?], for parameters: [Parameter]) throws {
  guard buffers.count == parameters.count else {
    throw OptimizerError.momentumBufferCountMismatch(expected: parameters.count, found: buffers.count)
  }
  for (index, (buffer, parameter)) in zip(buffers, parameters).enumerated() {
    if let buffer, buffer.shape != parameter.value.shape {
      throw OptimizerError.momentumBufferShapeMismatch(index: index, expected: parameter.value.shape,
                                                       found: buffer.shape)
    }
  }
}

/// Applies one momentum-SGD update to `parameter` on all cores; the kernel SGD and LARS share.
///
/// Per scalar: `d = (g + wd·w)·scale`; with momentum, `buf = d` on the first step (`buffer == nil`), else
/// `buf = m·buf + d`, then `d = d + m·buf` (Nesterov) or `d = buf`; finally `w -= learningRate·d`.
/// `buffer` is updated in place (it stays nil without momentum).
func momentumUpdate(_ parameter: Parameter, buffer: inout Tensor?, momentum: Float, isNesterov: Bool,
                    weightDecay: Float, scale: Float, learningRate: Float) {
  let count = parameter.value.count
  guard count > 0 else { return }
  let isFirstStep = buffer == nil
  if momentum != 0 && isFirstStep { buffer = Tensor(uninitializedShape: parameter.value.shape) { _ in } }
  parameter.value.scalars.withUnsafeMutableBufferPointer { wBuffer in
    parameter.grad.scalars.withUnsafeBufferPointer { gBuffer in
      let w = wBuffer.baseAddress!, g = gBuffer.baseAddress!
      func run(_ buf: UnsafeMutablePointer<Float>?) {
        parallelFor(0..<count, minimumChunk: 1 << 15) { range in
          for i in range {
            var d = (g[i] + weightDecay * w[i]) * scale
            if let buf {
              let b = isFirstStep ? d : momentum * buf[i] + d
              buf[i] = b
              d = isNesterov ? d + momentum * b : b
            }
            w[i] -= learningRate * d
          }
        }
      }
      if momentum != 0 {
        buffer!.scalars.withUnsafeMutableBufferPointer { run($0.baseAddress!) }
      } else {
        run(nil)
      }
    }
  }
}
