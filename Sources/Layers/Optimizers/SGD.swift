// Stochastic gradient descent with momentum, weight decay and Nesterov: exactly torch.optim.SGD (dampening 0).
import Tensors

/// SGD as `torch.optim.SGD(params, lr, momentum, dampening=0, weight_decay, nesterov)`.
///
/// Per scalar, with g the gradient and w the weight:
/// ```
/// d = g + wd·w
/// buf = d                 on a parameter's first step
/// buf = momentum·buf + d  afterwards
/// d = d + momentum·buf    (Nesterov)   or   d = buf
/// w -= lr·d
/// ```
/// Without momentum there is no buffer and `d = g + wd·w`.
public final class SGD: Optimizer {
  public var parameterGroups: [ParameterGroup]
  public let momentum: Float
  public let weightDecay: Float
  public let isNesterov: Bool
  public private(set) var momentumBuffers: [Tensor?]

  public init(_ parameterGroups: [ParameterGroup], momentum: Float = 0, weightDecay: Float = 0,
              nesterov: Bool = false) {
    precondition(momentum >= 0 && weightDecay >= 0,
                 "SGD needs momentum ≥ 0 and weight decay ≥ 0, got \(momentum) and \(weightDecay).")
    precondition(!nesterov || momentum > 0, "Nesterov momentum needs momentum > 0, got \(momentum).")
    self.parameterGroups = parameterGroups
    self.momentum = momentum
    self.weightDecay = weightDecay
    self.isNesterov = nesterov
    self.momentumBuffers = Array(repeating: nil, count: parameterGroups.reduce(0) { $0 + $1.parameters.count })
  }

  /// One group holding `parameters` at `learningRate`.
  public convenience init(_ parameters: [Parameter], learningRate: Float, momentum: Float = 0,
                          weightDecay: Float = 0, nesterov: Bool = false) {
    self.init([ParameterGroup(parameters: parameters, learningRate: learningRate)], momentum: momentum,
              weightDecay: weightDecay, nesterov: nesterov)
  }

  public func restoreMomentumBuffers(_ buffers: [Tensor?]) throws {
    try validateMomentumBuffers(buffers, for: allParameters)
    momentumBuffers = buffers
  }

  public func step() {
    forEachTrainableParameter(name: "SGD", defaultWeightDecay: weightDecay) { group, parameter, slot, weightDecay in
      momentumUpdate(parameter, buffer: &momentumBuffers[slot], momentum: momentum, isNesterov: isNesterov,
                     weightDecay: weightDecay, scale: 1, learningRate: group.learningRate)
    }
  }
}
