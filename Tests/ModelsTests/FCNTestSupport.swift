// Finite-difference helpers shared by the dilated-ResNet and FCN tests (the same method as GradientCheckTests:
// centred differences of L = Σ f(x) ⊙ dy in Double for a fixed random dy, buffers restored around every forward).
import Testing
import Tensors
import Layers
import Models
import TestSupport

/// Random γ, β and running statistics (γ ~ U(0.5, 1), β = γ·U(lowShift, highShift)), so no gradient term vanishes and
/// inference mode does not normalise with identity statistics. A positive shift keeps most pre-activations away
/// from the ReLU kink in deep composites.
func randomizeBatchNorms(_ norms: [BatchNorm], lowShift: Float = -0.5, highShift: Float = 0.5,
                         using rng: inout SplitMix64) {
  for bn in norms {
    let c = bn.channels
    bn.weight?.value = .randomUniform([c], low: 0.5, high: 1, using: &rng)
    if let bias = bn.bias, let weight = bn.weight {
      bias.value = weight.value * .randomUniform([c], low: lowShift, high: highShift, using: &rng)
    }
    bn.runningMean.value = .randomNormal([c], std: 0.5, using: &rng)
    bn.runningVar.value = .randomUniform([c], low: 0.5, high: 2, using: &rng)
  }
}

func normLayers(of block: ResidualBlock) -> [BatchNorm] {
  (block.branch + (block.downsample.map { [$0] } ?? [])).map(\.bn)
}

func normLayers(of resNet: ResNet) -> [BatchNorm] {
  [resNet.stem.bn] + resNet.stages.joined().flatMap(normLayers(of:))
}

func normLayers(of head: FCNHead) -> [BatchNorm] {
  (head.convs + (head.concatConv.map { [$0] } ?? [])).map(\.bn)
}

/// How one finite-difference check samples and judges (see `expectGradientsMatch`).
struct FiniteDifferenceSettings {
  var step: Float = 1e-3
  /// The step for rank-1 tensors (BN γ/β, biases), which move a whole channel at once.
  var vectorStep: Float = 3e-4
  var tolerance: Double = 1e-2
  var samples = 16
  /// The relative error's floor as a fraction of the tensor's largest |analytic gradient|.
  var floorFraction: Double = 0.05
  var kinkThreshold: Double = 0.02
}

/// Checks ∂L/∂x and ∂L/∂θ (the trainable parameters named in `names`, all when nil) of L = Σ forward(x) ⊙ dy.
/// `forward(x)` must be free of side effects apart from buffers (restored here); `forwardBackward(x, dy)` runs one
/// forward and the backward, adds the parameter gradients and returns ∂L/∂x.
func expectBackwardMatchesFiniteDifferences(
  parameters: [NamedParameter], input: Tensor, names: [String]? = nil,
  settings: FiniteDifferenceSettings = FiniteDifferenceSettings(), rng: inout SplitMix64,
  forward: (Tensor) -> Tensor, forwardBackward: (Tensor, Tensor) -> Tensor,
  sourceLocation: SourceLocation = #_sourceLocation
) {
  let buffers = parameters.map(\.parameter).filter(\.isBuffer)
  func restoring<T>(_ body: () -> T) -> T {
    let saved = buffers.map(\.value)
    defer { for (buffer, value) in zip(buffers, saved) { buffer.value = value } }
    return body()
  }
  let x = Parameter(input)
  let dy = Tensor.randomNormal(restoring { forward(input) }.shape, using: &rng)
  for (_, parameter) in parameters { parameter.zeroGrad() }
  x.grad = restoring { forwardBackward(input, dy) }
  func loss() -> Double { restoring { forward(x.value) }.dot(dy) }
  func check(_ parameter: Parameter, _ name: String, seed: UInt64) {
    let floor = max(1e-4, settings.floorFraction * Double(parameter.grad.scalars.lazy.map(abs).max() ?? 0))
    expectGradientsMatch(loss, wrt: parameter, named: name,
                         step: parameter.value.rank == 1 ? settings.vectorStep : settings.step,
                         tolerance: settings.tolerance, samples: settings.samples, seed: seed, scaleFloor: floor,
                         kinkThreshold: settings.kinkThreshold, sourceLocation: sourceLocation)
  }
  check(x, "x", seed: 1)
  let trainable = parameters.filter { $0.parameter.isTrainable }
  if let names {
    let available = Set(trainable.map(\.name))
    for name in names where !available.contains(name) {
      Issue.record("No trainable parameter named \(name).", sourceLocation: sourceLocation)
    }
  }
  for (index, (name, parameter)) in trainable.enumerated() where names?.contains(name) ?? true {
    check(parameter, name, seed: UInt64(index + 2))
  }
}
