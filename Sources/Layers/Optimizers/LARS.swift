// Layer-wise adaptive rate scaling, exactly MMSelfSup v0.8.0 `mmselfsup/core/optimizer/optimizers.py` (LARS).
import Tensors

/// LARS (You, Gitman & Ginsburg 2017) as MMSelfSup v0.8.0 implements it (PROTOCOLS §4.2), dampening 0.
///
/// Per parameter tensor, then per scalar:
/// ```
/// local_lr = eta·‖w‖ / (‖g‖ + wd·‖w‖ + 1e-8)     (1 when ‖w‖ = 0 or ‖g‖ = 0, or the group is excluded)
/// d = (g + wd·w)·(local_lr·lr)
/// buf = m·buf + d                                 (buf = d on the first step)
/// w -= buf                                        (Nesterov: w -= d + m·buf)
/// ```
/// The linear probe of §4.2 excludes nothing (`LARS(lr=1.6, momentum=0.9, weight_decay=0.)`, no
/// `lars_exclude`); its zero-initialised bias gets local_lr = 1 from the ‖w‖ = 0 rule. Groups can opt out of
/// the adaptation with `ParameterGroup.isExcludedFromLARS`, as MMSelfSup's `paramwise_options` do for BN and bias.
public final class LARS: Optimizer {
  public var parameterGroups: [ParameterGroup]
  public let momentum: Float
  public let weightDecay: Float
  public let eta: Float
  public let isNesterov: Bool
  public private(set) var momentumBuffers: [Tensor?]
  /// Added to the denominator of local_lr (MMSelfSup `eps`).
  public static let epsilon = 1e-8

  public init(_ parameterGroups: [ParameterGroup], momentum: Float = 0, weightDecay: Float = 0,
              eta: Float = 0.001, nesterov: Bool = false) {
    precondition(momentum >= 0 && weightDecay >= 0 && eta >= 0,
                 "LARS needs momentum, weight decay and eta ≥ 0, got \(momentum), \(weightDecay) and \(eta).")
    precondition(!nesterov || momentum > 0, "Nesterov momentum needs momentum > 0, got \(momentum).")
    self.parameterGroups = parameterGroups
    self.momentum = momentum
    self.weightDecay = weightDecay
    self.eta = eta
    self.isNesterov = nesterov
    self.momentumBuffers = Array(repeating: nil, count: parameterGroups.reduce(0) { $0 + $1.parameters.count })
  }

  /// One group holding `parameters` at `learningRate`.
  public convenience init(_ parameters: [Parameter], learningRate: Float, momentum: Float = 0,
                          weightDecay: Float = 0, eta: Float = 0.001, nesterov: Bool = false) {
    self.init([ParameterGroup(parameters: parameters, learningRate: learningRate)], momentum: momentum,
              weightDecay: weightDecay, eta: eta, nesterov: nesterov)
  }

  public func restoreMomentumBuffers(_ buffers: [Tensor?]) throws {
    try validateMomentumBuffers(buffers, for: allParameters)
    momentumBuffers = buffers
  }

  /// The trust ratio of one tensor, in Double as MMSelfSup computes it from `.item()` Python floats.
  public func localLearningRate(weightNorm: Double, gradientNorm: Double, weightDecay: Float) -> Double {
    guard weightNorm != 0, gradientNorm != 0 else { return 1 }
    return Double(eta) * weightNorm / (gradientNorm + Double(weightDecay) * weightNorm + LARS.epsilon)
  }

  public func step() {
    forEachTrainableParameter(name: "LARS", defaultWeightDecay: weightDecay) { group, parameter, slot, weightDecay in
      let localRate = group.isExcludedFromLARS
        ? 1
        : localLearningRate(weightNorm: l2Norm(parameter.value), gradientNorm: l2Norm(parameter.grad),
                            weightDecay: weightDecay)
      // MMSelfSup: d_p = d_p.add(p, alpha=wd).mul(actual_lr); p.add_(-buf): the rate scales d, not the step.
      momentumUpdate(parameter, buffer: &momentumBuffers[slot], momentum: momentum, isNesterov: isNesterov,
                     weightDecay: weightDecay, scale: Float(localRate * Double(group.learningRate)),
                     learningRate: 1)
    }
  }
}

/// ‖x‖₂ accumulated in Double over fixed blocks, so the result does not depend on the thread count.
func l2Norm(_ x: Tensor) -> Double {
  let blockSize = 1 << 16
  let count = x.count
  let blocks = (count + blockSize - 1) / blockSize
  guard blocks > 0 else { return 0 }
  var partial = [Double](repeating: 0, count: blocks)
  x.scalars.withUnsafeBufferPointer { xBuffer in
    partial.withUnsafeMutableBufferPointer { partialBuffer in
      let source = xBuffer.baseAddress!, sums = partialBuffer.baseAddress!
      parallelFor(0..<blocks, minimumChunk: 1) { range in
        for block in range {
          var total = 0.0
          for i in (block * blockSize)..<min(count, (block + 1) * blockSize) {
            total += Double(source[i]) * Double(source[i])
          }
          sums[block] = total
        }
      }
    }
  }
  return partial.reduce(0, +).squareRoot()
}
