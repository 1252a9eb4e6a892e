// SimSiam (Chen & He, CVPR 2021): a ResNet encoder with an MLP projector, an MLP predictor, and the symmetric
// negative-cosine loss with stop-gradient. Layer sequences and names follow MMSelfSup v0.8.0 (PROTOCOLS §1.1).
import Tensors
import Layers

/// The projector MLP (MMSelfSup `NonLinearNeck`, names `fc0, bn0, …`): fc (no bias) → BN → ReLU, repeated, and a
/// last fc (no bias) → BN without affine parameters and without ReLU. Global average pooling happens before it.
public final class Projector: Layer {
  public let linears: [Linear]
  public let norms: [BatchNorm]

  public struct Cache {
    let linears: [Linear.Cache]
    let norms: [BatchNorm.Cache]
  }

  /// - Parameter layers: number of fc layers (3 in the ImageNet recipe, 2 in the paper's CIFAR setting).
  public init<G: RandomNumberGenerator>(inFeatures: Int, hiddenFeatures: Int, outFeatures: Int, layers: Int = 3,
                                        using generator: inout G) {
    precondition(layers >= 1, "A projector needs at least one layer, got \(layers).")
    var linears: [Linear] = []
    var norms: [BatchNorm] = []
    for index in 0..<layers {
      let isLast = index == layers - 1
      linears.append(Linear(inFeatures: index == 0 ? inFeatures : hiddenFeatures,
                            outFeatures: isLast ? outFeatures : hiddenFeatures,
                            hasBias: false, initialization: .pytorchDefault, using: &generator))
      let norm = BatchNorm(channels: isLast ? outFeatures : hiddenFeatures, isAffine: !isLast)
      norm.fusesReLU = !isLast
      norms.append(norm)
    }
    self.linears = linears
    self.norms = norms
  }

  public func forward(_ x: Tensor, mode: Mode) -> (Tensor, Cache) {
    var h = x
    var linearCaches: [Linear.Cache] = [], normCaches: [BatchNorm.Cache] = []
    for (linear, norm) in zip(linears, norms) {
      let (a, linearCache) = linear.forward(h, mode: mode)
      let (b, normCache) = norm.forward(a, mode: mode)
      linearCaches.append(linearCache)
      normCaches.append(normCache)
      h = b
    }
    return (h, Cache(linears: linearCaches, norms: normCaches))
  }

  public func backward(_ dy: Tensor, _ cache: Cache) -> Tensor {
    var dh = dy
    for index in stride(from: linears.count - 1, through: 0, by: -1) {
      dh = linears[index].backward(norms[index].backward(dh, cache.norms[index]), cache.linears[index])
    }
    return dh
  }

  public var namedParameters: [NamedParameter] {
    zip(linears, norms).enumerated().flatMap { index, pair in
      prefixed("fc\(index)", pair.0.namedParameters) + prefixed("bn\(index)", pair.1.namedParameters)
    }
  }
}

/// The predictor MLP (MMSelfSup `head.predictor`): fc0 (no bias) → bn0 → ReLU → fc1 (with bias), no output BN.
public final class Predictor: Layer {
  public let fc0: Linear, bn0: BatchNorm, fc1: Linear

  public struct Cache {
    let fc0: Linear.Cache, bn0: BatchNorm.Cache, fc1: Linear.Cache
  }

  public init<G: RandomNumberGenerator>(features: Int, hiddenFeatures: Int, using generator: inout G) {
    fc0 = Linear(inFeatures: features, outFeatures: hiddenFeatures, hasBias: false, initialization: .pytorchDefault,
                 using: &generator)
    bn0 = BatchNorm(channels: hiddenFeatures)
    bn0.fusesReLU = true
    fc1 = Linear(inFeatures: hiddenFeatures, outFeatures: features, hasBias: true, initialization: .pytorchDefault,
                 using: &generator)
  }

  public func forward(_ x: Tensor, mode: Mode) -> (Tensor, Cache) {
    let (a, fc0Cache) = fc0.forward(x, mode: mode)
    let (b, bn0Cache) = bn0.forward(a, mode: mode)
    let (y, fc1Cache) = fc1.forward(b, mode: mode)
    return (y, Cache(fc0: fc0Cache, bn0: bn0Cache, fc1: fc1Cache))
  }

  public func backward(_ dy: Tensor, _ cache: Cache) -> Tensor {
    fc0.backward(bn0.backward(fc1.backward(dy, cache.fc1), cache.bn0), cache.fc0)
  }

  public var namedParameters: [NamedParameter] {
    prefixed("fc0", fc0.namedParameters) + prefixed("bn0", bn0.namedParameters) + prefixed("fc1", fc1.namedParameters)
  }
}

/// Sizes of a SimSiam model.
public struct SimSiamConfig: Codable, Sendable, Equatable {
  public var backbone: ResNetConfig
  /// Projector hidden and output width (2048 in the paper).
  public var projectorHiddenFeatures: Int
  public var features: Int
  public var projectorLayers: Int
  /// Predictor bottleneck width (512 in the paper: features / 4).
  public var predictorHiddenFeatures: Int

  public init(backbone: ResNetConfig, projectorHiddenFeatures: Int = 2048, features: Int = 2048,
              projectorLayers: Int = 3, predictorHiddenFeatures: Int = 512) {
    self.backbone = backbone
    self.projectorHiddenFeatures = projectorHiddenFeatures
    self.features = features
    self.projectorLayers = projectorLayers
    self.predictorHiddenFeatures = predictorHiddenFeatures
  }
}

/// What one training step measured.
public struct SimSiamStepResult: Sendable {
  /// ½·(D(p1, sg(z2)) + D(p2, sg(z1))); −1 is the minimum.
  public var loss: Float
  /// Mean over dimensions of the per-dimension std of ẑ = z/‖z‖ (both views). Near 1/√d when the
  /// representation is healthy, near 0 when it has collapsed (the paper's Fig. 2 monitor).
  public var normalizedOutputStd: Float

  public init(loss: Float, normalizedOutputStd: Float) {
    self.loss = loss
    self.normalizedOutputStd = normalizedOutputStd
  }
}

/// The SimSiam model: encoder f = projector ∘ GAP ∘ backbone, shared by both views, and predictor h.
/// State-dict names are MMSelfSup's: `backbone.*`, `neck.*`, `head.predictor.*`.
public final class SimSiam {
  public let config: SimSiamConfig
  public let backbone: ResNet
  public let projector: Projector
  public let predictor: Predictor

  public init<G: RandomNumberGenerator>(_ config: SimSiamConfig, using generator: inout G) {
    self.config = config
    backbone = ResNet(config.backbone, using: &generator)
    projector = Projector(inFeatures: backbone.outChannels, hiddenFeatures: config.projectorHiddenFeatures,
                          outFeatures: config.features, layers: config.projectorLayers, using: &generator)
    predictor = Predictor(features: config.features, hiddenFeatures: config.predictorHiddenFeatures,
                          using: &generator)
  }

  public var namedParameters: [NamedParameter] {
    prefixed("backbone", backbone.namedParameters) + prefixed("neck", projector.namedParameters)
      + prefixed("head.predictor", predictor.namedParameters)
  }

  public var parameters: [Parameter] { namedParameters.map(\.parameter) }

  public func zeroGrad() { for parameter in parameters { parameter.zeroGrad() } }

  public struct EncoderCache {
    let backbone: ResNet.Cache
    let featureShape: [Int]  // [n, h, w, c] of feature5, for the pooling backward
    let projector: Projector.Cache
  }

  /// z = projector(GAP(backbone(x))): [n, features].
  public func encode(_ x: Tensor, mode: Mode) -> (Tensor, EncoderCache) {
    let (feature5, backboneCache) = backbone.forward(x, mode: mode)
    let pooled = globalAvgPool(feature5)  // [n, c5]
    let (z, projectorCache) = projector.forward(pooled, mode: mode)
    return (z, EncoderCache(backbone: backboneCache, featureShape: feature5.shape, projector: projectorCache))
  }

  public func encodeBackward(_ dz: Tensor, _ cache: EncoderCache) {
    let dPooled = projector.backward(dz, cache.projector)
    _ = backbone.backward(globalAvgPoolBackward(dPooled, inputShape: cache.featureShape), cache.backbone)
  }

  /// One SimSiam step on two views of the same images (Chen & He 2021, Algorithm 1): accumulates every
  /// parameter's gradient (call `zeroGrad()` first) and returns the loss. BN statistics are per view, since each
  /// view is its own forward call, as with MMSelfSup's SyncBN over a global batch.
  ///
  /// `stopsGradient: false` is the paper's ablation (§4.1, Fig. 2): the targets are not detached, so ∂D/∂z also
  /// flows into the encoder through the target side, and the representation collapses. For experiments only.
  public func trainingStep(_ x1: Tensor, _ x2: Tensor, stopsGradient: Bool = true) -> SimSiamStepResult {
    precondition(x1.shape == x2.shape, "SimSiam views must have the same shape, got \(x1.shape) and \(x2.shape).")
    let (z1, encoded1) = encode(x1, mode: .training)
    let (z2, encoded2) = encode(x2, mode: .training)
    let (p1, predicted1) = predictor.forward(z1, mode: .training)
    let (p2, predicted2) = predictor.forward(z2, mode: .training)

    // The targets z are constants (stop-gradient): only ∂D/∂p flows back, through the predictor.
    let (loss1, dp1) = negativeCosineSimilarity(p1, target: z2)
    let (loss2, dp2) = negativeCosineSimilarity(p2, target: z1)
    let std = (normalizedStd(z1) + normalizedStd(z2)) / 2

    var dz1 = predictor.backward(0.5 * dp1, predicted1)
    var dz2 = predictor.backward(0.5 * dp2, predicted2)
    if !stopsGradient {
      // D(p, z) = −mean(p̂·ẑ) is symmetric in its arguments, so ∂D/∂z is the same function with the roles swapped.
      // z1 is the target of the second term and z2 of the first: those gradients add to the predictor paths.
      dz1 += 0.5 * negativeCosineSimilarity(z1, target: p2).gradient
      dz2 += 0.5 * negativeCosineSimilarity(z2, target: p1).gradient
    }
    encodeBackward(dz1, encoded1)
    encodeBackward(dz2, encoded2)
    return SimSiamStepResult(loss: 0.5 * (loss1 + loss2), normalizedOutputStd: std)
  }
}

/// Mean over columns of the std (population) of the rows of z after L2-normalising each row. z: [n, d].
func normalizedStd(_ z: Tensor) -> Float {
  let (n, d) = (z.shape[0], z.shape[1])
  guard n > 1 else { return 0 }
  var sum = [Double](repeating: 0, count: d), sumSquares = [Double](repeating: 0, count: d)
  z.scalars.withUnsafeBufferPointer { zs in
    for i in 0..<n {
      var norm = 0.0
      for j in 0..<d { norm += Double(zs[i * d + j]) * Double(zs[i * d + j]) }
      let scale = 1 / max(norm.squareRoot(), 1e-12)
      for j in 0..<d {
        let v = Double(zs[i * d + j]) * scale
        sum[j] += v
        sumSquares[j] += v * v
      }
    }
  }
  var total = 0.0
  for j in 0..<d {
    let mean = sum[j] / Double(n)
    total += max(sumSquares[j] / Double(n) - mean * mean, 0).squareRoot()
  }
  return Float(total / Double(d))
}
