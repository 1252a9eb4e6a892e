// A short SimSiam run on generated images: checks on any machine, in seconds, that the engine trains end to end
// (the loss falls toward −1) without collapsing (the normalised output std stays near 1/√d).
import Tensors
import Layers
import Models
import Foundation

/// Settings of the synthetic smoke run.
public struct SyntheticSmokeRunConfig: Sendable {
  public var steps = 30
  public var batchSize = 32
  public var imageSize = 16
  public var seed: UInt64 = 0
  public var learningRate: Float = 0.1
  /// False runs the paper's no-stop-gradient ablation, which collapses.
  public var stopsGradient = true
  public init() {}

  /// A ResNet-18 (CIFAR stem) at 1/8 width with a 64-wide projector and a 16-wide predictor bottleneck.
  public var model: SimSiamConfig {
    SimSiamConfig(backbone: ResNetConfig(depth: 18, widthMultiplier: 1.0 / 8, cifarStem: true),
                  projectorHiddenFeatures: 64, features: 64, projectorLayers: 3, predictorHiddenFeatures: 16)
  }
}

/// One step's measurements.
public struct SmokeStep: Sendable {
  public var step: Int
  public var loss: Float
  public var normalizedOutputStd: Float
  public var seconds: Double
}

/// Runs SimSiam on pairs of views of generated images: each image is a smooth random pattern, and its two views
/// are independently flipped and noised copies. Returns the per-step measurements.
public func runSyntheticSmoke(_ config: SyntheticSmokeRunConfig, onStep: (SmokeStep) -> Void = { _ in }) -> [SmokeStep] {
  var rng = SplitMix64(seed: config.seed)
  let model = SimSiam(config.model, using: &rng)
  let predictorParameters = model.predictor.parameters
  let predictorIDs = Set(predictorParameters.map(ObjectIdentifier.init))
  let encoderParameters = model.parameters.filter { !predictorIDs.contains(ObjectIdentifier($0)) }
  // SimSiam's recipe: SGD, momentum 0.9, weight decay on every parameter, the predictor at a fixed LR.
  let sgd = SGD([ParameterGroup(parameters: encoderParameters, learningRate: config.learningRate),
                 ParameterGroup(parameters: predictorParameters, learningRate: config.learningRate,
                                isLearningRateFixed: true)],
                momentum: 0.9, weightDecay: 1e-4)
  let clock = ContinuousClock()
  var steps: [SmokeStep] = []
  for step in 0..<config.steps {
    let images = makePatterns(count: config.batchSize, size: config.imageSize, using: &rng)
    let view1 = augment(images, using: &rng), view2 = augment(images, using: &rng)
    sgd.updateLearningRates { base in cosineAnnealingLearningRate(base: base, minimum: 0, progress: step, maxProgress: config.steps) }
    var result = SimSiamStepResult(loss: 0, normalizedOutputStd: 0)
    let elapsed = clock.measure {
      sgd.zeroGrad()
      result = model.trainingStep(view1, view2, stopsGradient: config.stopsGradient)
      sgd.step()
    }
    let record = SmokeStep(step: step, loss: result.loss, normalizedOutputStd: result.normalizedOutputStd,
                           seconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18)
    steps.append(record)
    onStep(record)
  }
  return steps
}

/// Smooth random RGB patterns, [n, size, size, 3]: a sum of four random plane waves per channel.
private func makePatterns(count: Int, size: Int, using rng: inout SplitMix64) -> Tensor {
  var images = Tensor.zeros([count, size, size, 3])
  for n in 0..<count {
    for c in 0..<3 {
      for _ in 0..<4 {
        let (fx, fy) = (rng.nextNormal() * 0.6, rng.nextNormal() * 0.6)
        let (phase, amplitude) = (rng.nextUniform() * 6.283, rng.nextNormal())
        for y in 0..<size {
          for x in 0..<size {
            let angle = fx * Float(x) + fy * Float(y) + phase
            images.scalars[((n * size + y) * size + x) * 3 + c] += amplitude * cosine(angle)
          }
        }
      }
    }
  }
  return images
}

/// A view: random horizontal flip plus Gaussian noise of std 0.3.
private func augment(_ images: Tensor, using rng: inout SplitMix64) -> Tensor {
  let (count, size) = (images.shape[0], images.shape[1])
  var view = images
  for n in 0..<count {
    let flips = rng.nextUniform() < 0.5
    for y in 0..<size {
      for x in 0..<size {
        for c in 0..<3 {
          let source = ((n * size + y) * size + (flips ? size - 1 - x : x)) * 3 + c
          view.scalars[((n * size + y) * size + x) * 3 + c] = images.scalars[source] + 0.3 * rng.nextNormal()
        }
      }
    }
  }
  return view
}

private func cosine(_ x: Float) -> Float { Float(Foundation.cos(Double(x))) }
