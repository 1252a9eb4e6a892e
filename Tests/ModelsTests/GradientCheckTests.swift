// Finite-difference gradient checks of the model composites (HOUSE_STYLE D9; cs231n eval_numerical_gradient_array):
// ConvBN, ResidualBlock, tiny whole ResNets, Projector, Predictor, and the SimSiam step with its stop-gradient.
import Testing
import Tensors
import Layers
import Models
import TestSupport

// MARK: - Helpers

/// How far BatchNorm shifts put pre-activations from the ReLU kink.
private enum Shift {
  /// γ ~ U(0.5, 1.5), β ~ U(−0.5, 0.5): about half of every channel is clipped, so the ReLU masks matter.
  case centred
  /// γ ~ U(0.5, 1), β = γ·U(2, 3): the kink sits 2–3 standard deviations below each channel's mean. A parameter step
  /// in a whole network moves thousands of pre-activations at once; this keeps the ReLU crossings it causes rare
  /// (each one biases the difference quotient by O(h) without tripping the kink detector). Masks are still exercised
  /// by the tails and by the block-level tests.
  case mostlyPositive
}

/// Random γ, β and running statistics, so no gradient term vanishes by accident and inference mode does not
/// normalise with the identity statistics.
private func randomize(_ norms: [BatchNorm], _ shift: Shift = .centred, using rng: inout SplitMix64) {
  for bn in norms {
    let c = bn.channels
    switch shift {
    case .centred:
      bn.weight?.value = .randomUniform([c], low: 0.5, high: 1.5, using: &rng)
      bn.bias?.value = .randomUniform([c], low: -0.5, high: 0.5, using: &rng)
    case .mostlyPositive:
      bn.weight?.value = .randomUniform([c], low: 0.5, high: 1, using: &rng)
      if let bias = bn.bias, let weight = bn.weight {
        bias.value = weight.value * .randomUniform([c], low: 2, high: 3, using: &rng)
      }
    }
    bn.runningMean.value = .randomNormal([c], std: 0.5, using: &rng)
    bn.runningVar.value = .randomUniform([c], low: 0.5, high: 2, using: &rng)
  }
}

private func batchNorms(of block: ResidualBlock) -> [BatchNorm] {
  (block.branch + (block.downsample.map { [$0] } ?? [])).map(\.bn)
}

private func batchNorms(of resNet: ResNet) -> [BatchNorm] {
  [resNet.stem.bn] + resNet.stages.joined().flatMap(batchNorms(of:))
}

/// Runs `body`, then puts back every buffer (BN running statistics, counters) among `parameters`, so a
/// training-mode forward inside a gradient check's loss has no side effects.
private func restoringBuffers<T>(_ parameters: [Parameter], _ body: () -> T) -> T {
  let buffers = parameters.filter(\.isBuffer)
  let saved = buffers.map(\.value)
  defer { for (buffer, value) in zip(buffers, saved) { buffer.value = value } }
  return body()
}

/// How one check samples and differentiates: the step, the relative-error tolerance and coordinates per tensor.
private struct CheckSettings {
  var step: Float
  var tolerance: Double
  var samples: Int
  /// The relative error's denominator floor as a fraction of the tensor's largest |analytic gradient| (0: the
  /// checker's fixed 1e-4). Deep composites have an absolute Float32 noise floor on the numeric slope.
  var floorFraction: Double = 0
  /// The step for rank-1 tensors (BN γ/β, biases): a step in β moves a whole channel's pre-activations at once, so it
  /// crosses the ReLU kink far more often than a step in one conv weight; nil: `step`.
  var vectorStep: Float? = nil
  /// Steps for particular tensors, by name ("x" for the input).
  var namedSteps: [String: Float] = [:]
  /// Relative disagreement between the slopes over ±h and ±h/2 above which a coordinate counts as a kink.
  var kinkThreshold: Double = 0.1

  /// One ConvBN (the fused-ReLU inputs are kept ≥ 0.05 from 0, so no kink lies within a step): h = 1e-2 keeps the
  /// Float32 rounding of L (~1e-6 over 72 outputs) below 1e-3 of the slopes, and 4e-3 sits under the 5e-3 relative
  /// error a gradient scaled by 1.01 produces.
  static let convBN = CheckSettings(step: 1e-2, tolerance: 4e-3, samples: 32, floorFraction: 0.02)
  /// A block, the projector, the predictor: 2–3 ReLU sites with hundreds of pre-activations, of which a few always sit
  /// within a step of 0, so kinks cannot be drawn away. h = 1e-3 (3e-4 for γ/β, which move a whole channel) makes
  /// crossings rare; at that step the rounding noise is ~1e-3 of the gradient scale, hence the floor of 5% of the
  /// tensor's largest gradient, the kink threshold of 2% and the tolerance of 1%.
  static let composite = CheckSettings(step: 1e-3, tolerance: 1e-2, samples: 24, floorFraction: 0.05,
                                       vectorStep: 3e-4, kinkThreshold: 0.02)
  /// A whole ResNet or SimSiam: 20–50 BN layers amplify Float32 rounding to a floor of ~1e-3 relative at h = 1e-2,
  /// and one step moves thousands of pre-activations, some across the ReLU and max-pool kinks, by amounts that bias
  /// single coordinates of the stem by a few per cent. 5e-2 still fails a missing or doubled fan-out add, a wrong
  /// cache or a wrong stride anywhere in the network. (Scale errors of 1% are caught by the smaller composites.)
  static let network = CheckSettings(step: 1e-2, tolerance: 0.1, samples: 12, floorFraction: 0.05,
                                     vectorStep: 3e-3)

  func scaleFloor(_ parameter: Parameter) -> Double {
    max(1e-4, floorFraction * Double(parameter.grad.scalars.lazy.map(abs).max() ?? 0))
  }

  /// `expectGradientsMatch` on one tensor with these settings.
  func expectMatch(_ loss: () -> Double, _ parameter: Parameter, named name: String, seed: UInt64,
                   sourceLocation: SourceLocation = #_sourceLocation) {
    let h = namedSteps[name] ?? (parameter.value.rank == 1 ? vectorStep ?? step : step)
    expectGradientsMatch(loss, wrt: parameter, named: name, step: h, tolerance: tolerance, samples: samples,
                         seed: seed, scaleFloor: scaleFloor(parameter), kinkThreshold: kinkThreshold,
                         sourceLocation: sourceLocation)
  }
}

/// Checks the backward pass of `layer` against centred differences of L = Σ layer(x) ⊙ dy (Double, fixed random dy):
/// w.r.t. `x` when `checksInput`, and w.r.t. every trainable parameter whose name is in `names` (all when nil).
/// The analytic gradients come from one forward/backward with the buffers restored afterwards.
private func checkLayer<L: Layer>(
  _ layer: L, input: Tensor, mode: Mode, checksInput: Bool = true, names: [String]? = nil,
  settings: CheckSettings, rng: inout SplitMix64, sourceLocation: SourceLocation = #_sourceLocation
) {
  let x = Parameter(input)
  let (y, cache) = restoringBuffers(layer.parameters) { layer.forward(x.value, mode: mode) }
  let dy = Tensor.randomNormal(y.shape, using: &rng)
  layer.zeroGrad()
  let dx = layer.backward(dy, cache)
  let loss = { restoringBuffers(layer.parameters) { layer.forward(x.value, mode: mode).0 }.dot(dy) }
  if checksInput {
    x.grad = dx
    settings.expectMatch(loss, x, named: "x", seed: 1, sourceLocation: sourceLocation)
  }
  let trainable = layer.namedParameters.filter { $0.parameter.isTrainable }
  if let names {
    let available = Set(trainable.map(\.name))
    for name in names where !available.contains(name) {
      Issue.record("No trainable parameter named \(name).", sourceLocation: sourceLocation)
    }
  }
  for (index, (name, parameter)) in trainable.enumerated() where names?.contains(name) ?? true {
    settings.expectMatch(loss, parameter, named: name, seed: UInt64(index + 2), sourceLocation: sourceLocation)
  }
}

/// D(p, z) = −mean_i p̂_i·ẑ_i of `negativeCosineSimilarity`, accumulated and returned in Double: the library rounds
/// the loss to Float, whose 6e-8 relative rounding divided by 2h would dominate the finite differences.
private func negativeCosine(_ p: Tensor, _ z: Tensor) -> Double {
  let (n, d) = (p.shape[0], p.shape[1])
  var total = 0.0
  for row in 0..<n {
    var pp = 0.0, zz = 0.0, pz = 0.0
    for j in 0..<d {
      let (pj, zj) = (Double(p.scalars[row * d + j]), Double(z.scalars[row * d + j]))
      pp += pj * pj
      zz += zj * zj
      pz += pj * zj
    }
    total += pz / (max(pp.squareRoot(), 1e-12) * max(zz.squareRoot(), 1e-12))
  }
  return -total / Double(n)
}

/// The centred difference (L(θᵢ + h) − L(θᵢ − h)) / 2h, with θᵢ restored afterwards.
private func centralDifference(_ loss: () -> Double, _ parameter: Parameter, at index: Int, step h: Float) -> Double {
  let original = parameter.value.scalars[index]
  defer { parameter.value.scalars[index] = original }
  parameter.value.scalars[index] = original + h
  let plus = loss()
  parameter.value.scalars[index] = original - h
  let minus = loss()
  return (plus - minus) / (2 * Double(h))
}

// MARK: - Tests

@Suite struct GradientCheckTests {
  // MARK: ConvBN

  @Test(arguments: [false, true], [Mode.training, Mode.inference])
  func convBNBackwardMatchesFiniteDifferences(fusesReLU: Bool, mode: Mode) {
    var rng = SplitMix64(seed: 21)
    let unit = ConvBN(inChannels: 3, outChannels: 4, kernelSize: 3, stride: 2, padding: 1, fusesReLU: fusesReLU,
                      convName: "conv1", bnName: "bn1", using: &rng)
    randomize([unit.bn], using: &rng)
    // [2, 5, 5, 3] → [2, 3, 3, 4]: 18 rows per BN channel.
    var x = Tensor.randomNormal([2, 5, 5, 3], using: &rng)
    if fusesReLU {
      // Keep every pre-activation γx̂ + β at least 0.05 from the ReLU kink: a step in β (or γ) moves a whole
      // channel at once, and a single crossing inside ±h biases the slope by less than the kink detector sees.
      unit.bn.fusesReLU = false
      while restoringBuffers(unit.parameters, { unit(x, mode: mode) }).scalars.contains(where: { abs($0) < 0.05 }) {
        x = .randomNormal([2, 5, 5, 3], using: &rng)
      }
      unit.bn.fusesReLU = true
    }
    checkLayer(unit, input: x, mode: mode, settings: .convBN,
               rng: &rng)
  }

  // MARK: ResidualBlock

  /// (kind, inChannels, width, stride, input): without a projection the block keeps its width and resolution; with
  /// one, stride 2 and a width change go through `downsample`. Every BN sees ≥ 18 rows per channel.
  static let blockCases: [(ResidualBlock.Kind, Int, Int, Int, [Int])] = [
    (.basic, 4, 4, 1, [2, 4, 4, 4]),
    (.basic, 3, 4, 2, [2, 5, 5, 3]),
    (.bottleneck, 16, 4, 1, [2, 4, 4, 16]),
    (.bottleneck, 8, 4, 2, [2, 5, 5, 8]),
  ]

  @Test(arguments: 0..<4, [Mode.training, Mode.inference])
  func residualBlockBackwardMatchesFiniteDifferences(caseIndex: Int, mode: Mode) {
    let (kind, inChannels, width, stride, shape) = Self.blockCases[caseIndex]
    var rng = SplitMix64(seed: 31 + UInt64(caseIndex))
    let block = ResidualBlock(kind: kind, inChannels: inChannels, width: width, stride: stride,
                              zeroInitResidual: false, using: &rng)
    #expect((block.downsample != nil) == (stride != 1 || inChannels != width * kind.expansion))
    randomize(batchNorms(of: block), using: &rng)
    let x = Tensor.randomUniform(shape, low: 0, high: 2, using: &rng)  // a block's input is a ReLU output
    checkLayer(block, input: x, mode: mode, settings: .composite, rng: &rng)
  }

  // MARK: ResNet

  @Test func resNet18CIFARStemBackwardMatchesFiniteDifferences() {
    var rng = SplitMix64(seed: 41)
    let resNet = ResNet(ResNetConfig(depth: 18, widthMultiplier: 1.0 / 16, cifarStem: true), using: &rng)
    resNet.computesInputGradient = true
    randomize(batchNorms(of: resNet), .mostlyPositive, using: &rng)
    // [2, 16, 16, 3]: layer4's BNs see 2·2·2 = 8 rows per channel (at 8×8 they would see 2, where BN's output
    // is ±γ + β whatever the input, and the check would test almost nothing).
    let x = Tensor.randomNormal([2, 16, 16, 3], using: &rng)
    let names = ["conv1.weight", "bn1.weight", "bn1.bias", "layer1.0.conv1.weight", "layer1.1.bn2.bias",
                 "layer2.0.downsample.0.weight", "layer2.0.downsample.1.weight", "layer2.1.conv1.weight",
                 "layer3.0.conv2.weight", "layer3.1.bn1.weight", "layer4.0.downsample.1.bias",
                 "layer4.1.conv2.weight", "layer4.1.bn2.weight"]
    checkLayer(resNet, input: x, mode: .training, names: names,
               settings: .network, rng: &rng)
  }

  @Test func resNet50ImageNetStemBackwardMatchesFiniteDifferences() {
    var rng = SplitMix64(seed: 51)
    let resNet = ResNet(ResNetConfig(depth: 50, widthMultiplier: 1.0 / 32, cifarStem: false), using: &rng)
    resNet.computesInputGradient = true
    randomize(batchNorms(of: resNet), .mostlyPositive, using: &rng)
    // [2, 64, 64, 3]: stem 32×32, max-pool 16×16, …, layer4 2×2, so layer4's BNs see 8 rows per channel.
    // A step in a stem weight moves all 2048 max-pool windows; the windows whose two largest values are within the
    // step switch their argmax (a kink the ±h/±h/2 test rarely sees), so the stem weight takes a 10× smaller step.
    var settings = CheckSettings.network
    settings.namedSteps = ["conv1.weight": 1e-3]
    let x = Tensor.randomNormal([2, 64, 64, 3], using: &rng)
    let names = ["conv1.weight", "bn1.weight", "layer1.0.conv1.weight", "layer1.0.downsample.0.weight",
                 "layer1.2.bn3.weight", "layer2.0.conv2.weight", "layer2.3.bn1.bias", "layer3.0.downsample.1.weight",
                 "layer3.5.conv3.weight", "layer4.0.conv2.weight", "layer4.2.bn3.bias", "layer4.2.conv1.weight"]
    checkLayer(resNet, input: x, mode: .training, names: names, settings: settings, rng: &rng)
  }

  // MARK: Projector and predictor

  @Test(arguments: [3, 2])
  func projectorBackwardMatchesFiniteDifferences(layers: Int) {
    var rng = SplitMix64(seed: 61 + UInt64(layers))
    let projector = Projector(inFeatures: 6, hiddenFeatures: 8, outFeatures: 5, layers: layers, using: &rng)
    randomize(projector.norms, using: &rng)
    let x = Tensor.randomNormal([8, 6], using: &rng)  // 8 rows per BN1d channel
    checkLayer(projector, input: x, mode: .training,
               settings: .composite, rng: &rng)
  }

  @Test func predictorBackwardMatchesFiniteDifferences() {
    var rng = SplitMix64(seed: 71)
    let predictor = Predictor(features: 6, hiddenFeatures: 4, using: &rng)
    randomize([predictor.bn0], using: &rng)
    let x = Tensor.randomNormal([8, 6], using: &rng)
    checkLayer(predictor, input: x, mode: .training,
               settings: .composite, rng: &rng)
  }

  // MARK: SimSiam

  /// A tiny SimSiam (CIFAR setting: ResNet-18 stem without max-pool, 2-layer projector) and two views of 8 images.
  /// Batch 8: BN1d in the projector and predictor normalises over the batch, and with 2 rows its output would be ±1
  /// whatever the input; the 8×8 views leave layer4 at 1×1, so its BNs also see 8 rows.
  private static func makeSimSiam(rng: inout SplitMix64) -> (model: SimSiam, x1: Tensor, x2: Tensor) {
    let config = SimSiamConfig(backbone: ResNetConfig(depth: 18, widthMultiplier: 1.0 / 16, cifarStem: true),
                               projectorHiddenFeatures: 16, features: 12, projectorLayers: 2,
                               predictorHiddenFeatures: 6)
    let model = SimSiam(config, using: &rng)
    randomize(batchNorms(of: model.backbone) + model.projector.norms + [model.predictor.bn0], .mostlyPositive,
              using: &rng)
    let x1 = Tensor.randomNormal([8, 8, 8, 3], using: &rng)
    let x2 = Tensor.randomNormal([8, 8, 8, 3], using: &rng)
    return (model, x1, x2)
  }

  /// Parameters from every depth of the backbone, the projector (neck) and the predictor (head).
  static let simSiamBackboneNames = ["backbone.conv1.weight", "backbone.bn1.weight", "backbone.layer1.0.conv2.weight",
                                     "backbone.layer2.0.downsample.0.weight", "backbone.layer3.1.bn1.weight",
                                     "backbone.layer4.0.downsample.0.weight", "backbone.layer4.1.bn2.weight"]
  static let simSiamNeckNames = ["neck.fc0.weight", "neck.bn0.weight", "neck.fc1.weight"]
  static let simSiamHeadNames = ["head.predictor.fc0.weight", "head.predictor.bn0.weight",
                                 "head.predictor.fc1.weight", "head.predictor.fc1.bias"]

  /// ½·(D(p1(θ), z2) + D(p2(θ), z1)) with the targets either held fixed (stop-gradient) or recomputed from θ.
  private static func simSiamLoss(_ model: SimSiam, _ x1: Tensor, _ x2: Tensor, targets: (z1: Tensor, z2: Tensor)?)
    -> Double {
    restoringBuffers(model.parameters) {
      let z1 = model.encode(x1, mode: .training).0
      let z2 = model.encode(x2, mode: .training).0
      let p1 = model.predictor(z1, mode: .training)
      let p2 = model.predictor(z2, mode: .training)
      let (target1, target2) = targets ?? (z1, z2)
      return 0.5 * (negativeCosine(p1, target2) + negativeCosine(p2, target1))
    }
  }

  @Test func simSiamTrainingStepMatchesFiniteDifferencesOfStopGradientLoss() {
    var rng = SplitMix64(seed: 81)
    let (model, x1, x2) = Self.makeSimSiam(rng: &rng)
    // sg(z): the targets are computed once from the current parameters and then held fixed.
    let targets = restoringBuffers(model.parameters) {
      (z1: model.encode(x1, mode: .training).0, z2: model.encode(x2, mode: .training).0)
    }
    model.zeroGrad()
    let result = restoringBuffers(model.parameters) { model.trainingStep(x1, x2) }
    let loss = { Self.simSiamLoss(model, x1, x2, targets: targets) }
    #expect(abs(Double(result.loss) - loss()) < 1e-6, "trainingStep loss \(result.loss) vs \(loss())")

    let named = Dictionary(uniqueKeysWithValues: model.namedParameters.map { ($0.name, $0.parameter) })
    var settings = CheckSettings.network
    settings.samples = 8
    for (index, name) in (Self.simSiamBackboneNames + Self.simSiamNeckNames + Self.simSiamHeadNames).enumerated() {
      guard let parameter = named[name] else { Issue.record("No parameter named \(name)."); continue }
      settings.expectMatch(loss, parameter, named: name, seed: UInt64(index))
    }
  }

  /// The paper's ablation switch: `trainingStep(stopsGradient: false)` must give the full gradient of the loss whose
  /// targets move with θ.
  @Test func simSiamStepWithoutStopGradientMatchesFiniteDifferencesOfTheFullLoss() {
    var rng = SplitMix64(seed: 81)
    let (model, x1, x2) = Self.makeSimSiam(rng: &rng)
    model.zeroGrad()
    _ = restoringBuffers(model.parameters) { model.trainingStep(x1, x2, stopsGradient: false) }
    let loss = { Self.simSiamLoss(model, x1, x2, targets: nil) }
    let named = Dictionary(uniqueKeysWithValues: model.namedParameters.map { ($0.name, $0.parameter) })
    var settings = CheckSettings.network
    settings.samples = 8
    for (index, name) in (Self.simSiamBackboneNames + Self.simSiamNeckNames + Self.simSiamHeadNames).enumerated() {
      guard let parameter = named[name] else { Issue.record("No parameter named \(name)."); continue }
      settings.expectMatch(loss, parameter, named: name, seed: UInt64(index))
    }
  }

  @Test func simSiamLossWithoutStopGradientHasOtherEncoderGradients() {
    var rng = SplitMix64(seed: 81)
    let (model, x1, x2) = Self.makeSimSiam(rng: &rng)
    model.zeroGrad()
    _ = restoringBuffers(model.parameters) { model.trainingStep(x1, x2) }
    // Without sg the targets move with θ: the encoder's numeric gradient picks up ∂D/∂z·∂z/∂θ as well.
    let lossWithoutStopGradient = { Self.simSiamLoss(model, x1, x2, targets: nil) }
    let named = Dictionary(uniqueKeysWithValues: model.namedParameters.map { ($0.name, $0.parameter) })
    var compared = 0, disagreeing = 0
    for (index, name) in (Self.simSiamBackboneNames + Self.simSiamNeckNames).enumerated() {
      guard let parameter = named[name] else { Issue.record("No parameter named \(name)."); continue }
      var sampler = SplitMix64(seed: UInt64(index))
      for _ in 0..<8 {
        let i = Int.random(in: 0..<parameter.value.count, using: &sampler)
        let numeric = centralDifference(lossWithoutStopGradient, parameter, at: i, step: 1e-2)
        let analytic = Double(parameter.grad.scalars[i])
        let error = abs(numeric - analytic) / max(abs(numeric) + abs(analytic), 1e-6)
        compared += 1
        if error > 0.2 { disagreeing += 1 }  // twice the `.network` tolerance
      }
    }
    #expect(disagreeing >= compared / 4,
            "Only \(disagreeing) of \(compared) encoder coordinates differ without the stop-gradient.")
    // The predictor does not feed the targets, so its gradient is the same with or without sg.
    var settings = CheckSettings.network
    settings.samples = 8
    for (index, name) in Self.simSiamHeadNames.enumerated() {
      guard let parameter = named[name] else { Issue.record("No parameter named \(name)."); continue }
      settings.expectMatch(lossWithoutStopGradient, parameter, named: name, seed: UInt64(index))
    }
  }
}
