// ResNet-18/34/50 exactly as torchvision builds them (He et al. 2016, v1.5: stride on the bottleneck's 3×3),
// plus the CIFAR stem used by SimSiam's CIFAR experiments, a width multiplier for tiny test models, and mmseg's
// dilated variant (per-stage strides and dilations, contract_dilation) for FCN-D8 segmentation.
import Tensors
import Layers

/// Which ResNet, how wide, and which stem.
public struct ResNetConfig: Codable, Sendable, Equatable {
  /// 18, 34 or 50.
  public var depth: Int
  /// Scales the stage widths 64/128/256/512 (1 = torchvision). Tiny test models use 1/8 or 1/16.
  public var widthMultiplier: Double
  /// 3×3 stride-1 conv1 and no max-pool (SimSiam paper, CIFAR setting) instead of 7×7/2 + max-pool.
  public var cifarStem: Bool
  /// The last BN of every block starts with scale 0 (torchvision / MMSelfSup `zero_init_residual`).
  public var zeroInitResidual: Bool
  /// Image channels (3 for RGB; 1 for grayscale data fed without replication).
  public var inChannels: Int
  /// Stride of each stage's first block (mmseg `strides`): [1, 2, 2, 2] is torchvision's ResNet; D8 is [1, 2, 1, 1].
  public var strides: [Int]
  /// Dilation of each stage's 3×3 convs (mmseg `dilations`, padding = dilation): [1, 1, 1, 1], or D8's [1, 1, 2, 4].
  public var dilations: [Int]
  /// mmseg `contract_dilation`: a stage with dilation d > 1 gives its FIRST block dilation d/2.
  public var contractDilation: Bool

  public static let standardStrides = [1, 2, 2, 2]
  public static let standardDilations = [1, 1, 1, 1]

  public init(depth: Int, widthMultiplier: Double = 1, cifarStem: Bool = false, zeroInitResidual: Bool = false,
              inChannels: Int = 3, strides: [Int] = ResNetConfig.standardStrides,
              dilations: [Int] = ResNetConfig.standardDilations, contractDilation: Bool = false) {
    self.depth = depth
    self.widthMultiplier = widthMultiplier
    self.cifarStem = cifarStem
    self.zeroInitResidual = zeroInitResidual
    self.inChannels = inChannels
    self.strides = strides
    self.dilations = dilations
    self.contractDilation = contractDilation
  }

  /// The same network with other stage strides and dilations: parameter names and shapes do not change, so every
  /// checkpoint of the plain network loads into it.
  public func withDilation(strides: [Int], dilations: [Int], contractDilation: Bool) -> ResNetConfig {
    var config = self
    config.strides = strides
    config.dilations = dilations
    config.contractDilation = contractDilation
    return config
  }

  /// mmseg's D8 backbone (`_base_/models/fcn_r50-d8.py`): strides (1, 2, 1, 1), dilations (1, 1, 2, 4),
  /// contract_dilation: output stride 8 with the ImageNet stem, 2 with the CIFAR stem.
  public func dilatedD8() -> ResNetConfig {
    withDilation(strides: [1, 2, 1, 1], dilations: [1, 1, 2, 4], contractDilation: true)
  }

  /// Whether strides and dilations are torchvision's (nothing dilated).
  public var isStandardGeometry: Bool {
    strides == Self.standardStrides && dilations == Self.standardDilations && !contractDilation
  }

  /// Input pixels per feature5 pixel: the stem's 4 (conv1 /2, max-pool /2; 1 for the CIFAR stem) times the stage
  /// strides. 32 for torchvision's ResNet, 8 for D8.
  public var outputStride: Int { (cifarStem ? 1 : 4) * strides.reduce(1, *) }

  /// The dilation of block `block` in stage `stage` (0-based), after contract_dilation (mmseg `ResLayer`).
  public func dilation(stage: Int, block: Int) -> Int {
    let d = dilations[stage]
    return block == 0 && contractDilation && d > 1 ? d / 2 : d
  }

  public static let supportedDepths = [18, 34, 50]

  /// Block kind and blocks per stage, from torchvision's `resnet18/34/50`.
  public var architecture: (kind: ResidualBlock.Kind, blocksPerStage: [Int]) {
    switch depth {
    case 18: (.basic, [2, 2, 2, 2])
    case 34: (.basic, [3, 4, 6, 3])
    case 50: (.bottleneck, [3, 4, 6, 3])
    default: preconditionFailure("ResNet depth \(depth) is not one of \(Self.supportedDepths).")
    }
  }

  /// Channels of the stem and of the four stages' 3×3 convs: 64·w, then 64·w, 128·w, 256·w, 512·w.
  public var stemWidth: Int { scaled(64) }
  public var stageWidths: [Int] { [64, 128, 256, 512].map(scaled) }

  /// Channels of feature1 … feature5 (stem output, then layer1 … layer4 outputs).
  public var featureChannels: [Int] {
    [stemWidth] + stageWidths.map { $0 * architecture.kind.expansion }
  }

  private func scaled(_ base: Int) -> Int { max(1, Int((Double(base) * widthMultiplier).rounded())) }

  // Codable by hand: configs and checkpoint metadata written before the dilation keys existed have none of them
  // (they decode as the standard geometry), and a standard config encodes exactly as it did before.
  private enum CodingKeys: String, CodingKey {
    case depth, widthMultiplier, cifarStem, zeroInitResidual, inChannels, strides, dilations, contractDilation
  }

  public init(from decoder: any Decoder) throws {
    let container = try decoder.container(keyedBy: CodingKeys.self)
    self.init(depth: try container.decode(Int.self, forKey: .depth),
              widthMultiplier: try container.decode(Double.self, forKey: .widthMultiplier),
              cifarStem: try container.decode(Bool.self, forKey: .cifarStem),
              zeroInitResidual: try container.decode(Bool.self, forKey: .zeroInitResidual),
              inChannels: try container.decode(Int.self, forKey: .inChannels),
              strides: try container.decodeIfPresent([Int].self, forKey: .strides) ?? Self.standardStrides,
              dilations: try container.decodeIfPresent([Int].self, forKey: .dilations) ?? Self.standardDilations,
              contractDilation: try container.decodeIfPresent(Bool.self, forKey: .contractDilation) ?? false)
  }

  public func encode(to encoder: any Encoder) throws {
    var container = encoder.container(keyedBy: CodingKeys.self)
    try container.encode(depth, forKey: .depth)
    try container.encode(widthMultiplier, forKey: .widthMultiplier)
    try container.encode(cifarStem, forKey: .cifarStem)
    try container.encode(zeroInitResidual, forKey: .zeroInitResidual)
    try container.encode(inChannels, forKey: .inChannels)
    if !isStandardGeometry {
      try container.encode(strides, forKey: .strides)
      try container.encode(dilations, forKey: .dilations)
      try container.encode(contractDilation, forKey: .contractDilation)
    }
  }
}

/// A ResNet backbone without its classifier: it returns feature5 (layer4's output) and, on request, feature1 …
/// feature5 as MMSelfSup numbers them (1 = stem conv-bn-relu **before** max-pool, 2…5 = layer1…layer4).
///
/// Parameter names are torchvision's state-dict keys (`conv1.weight`, `layer1.0.downsample.0.weight`, …).
/// Initialisation is torchvision's: convs Kaiming-normal (fan_out, ReLU), BN scale 1 and shift 0.
/// With `strides`/`dilations` other than the standard ones it is mmseg's `ResNet(strides, dilations,
/// contract_dilation, style='pytorch')`: the stride sits on the first block's 3×3 conv and its downsample 1×1 conv;
/// the 3×3 convs get dilation = padding = the stage's dilation (see `ResidualBlock`).
public final class ResNet: Layer {
  public let config: ResNetConfig
  public let stem: ConvBN          // conv1 + bn1 (+ ReLU)
  public let maxPool: MaxPool2D?   // 3×3 / 2, padding 1; absent with the CIFAR stem
  public let stages: [[ResidualBlock]]  // layer1 … layer4

  public struct Cache {
    let stem: ConvBN.Cache
    let maxPool: MaxPool2D.Cache?
    let stages: [[ResidualBlock.Cache]]
  }

  public init<G: RandomNumberGenerator>(_ config: ResNetConfig, using generator: inout G) {
    self.config = config
    let (kind, blocksPerStage) = config.architecture
    if config.cifarStem {
      stem = ConvBN(inChannels: config.inChannels, outChannels: config.stemWidth, kernelSize: 3, stride: 1,
                    padding: 1, fusesReLU: true, convName: "conv1", bnName: "bn1", using: &generator)
      maxPool = nil
    } else {
      stem = ConvBN(inChannels: config.inChannels, outChannels: config.stemWidth, kernelSize: 7, stride: 2,
                    padding: 3, fusesReLU: true, convName: "conv1", bnName: "bn1", using: &generator)
      maxPool = MaxPool2D(kernelSize: 3, stride: 2, padding: 1)
    }
    // The input image needs no gradient: skip the stem's most expensive backward product.
    stem.conv.computesInputGradient = false
    precondition(config.strides.count == 4 && config.dilations.count == 4
                   && (config.strides + config.dilations).allSatisfy { $0 >= 1 },
                 "ResNet needs four positive strides and dilations, got strides \(config.strides), dilations \(config.dilations).")
    var inChannels = config.stemWidth
    var stages: [[ResidualBlock]] = []
    for (stageIndex, (width, blockCount)) in zip(config.stageWidths, blocksPerStage).enumerated() {
      var blocks: [ResidualBlock] = []
      for blockIndex in 0..<blockCount {
        let stride = blockIndex == 0 ? config.strides[stageIndex] : 1
        let block = ResidualBlock(kind: kind, inChannels: inChannels, width: width, stride: stride,
                                  dilation: config.dilation(stage: stageIndex, block: blockIndex),
                                  zeroInitResidual: config.zeroInitResidual, using: &generator)
        inChannels = block.outChannels
        blocks.append(block)
      }
      stages.append(blocks)
    }
    self.stages = stages
  }

  /// Channels of feature5, the input width of a projector or classifier.
  public var outChannels: Int { config.featureChannels[4] }

  /// Whether backward returns ∂L/∂image (off by default: it is the stem's costliest product and nothing uses it).
  public var computesInputGradient: Bool {
    get { stem.conv.computesInputGradient }
    set { stem.conv.computesInputGradient = newValue }
  }

  /// feature5 ([n, h/s, w/s, c5] with s = `config.outputStride`: 32, 8 with the CIFAR stem or D8) and the cache.
  public func forward(_ x: Tensor, mode: Mode) -> (Tensor, Cache) {
    let (features, cache) = forwardFeatures(x, mode: mode)
    return (features[4], cache)
  }

  /// feature1 … feature5 in NHWC, computing stages only up to `lastFeature` (1…5).
  public func forwardFeatures(_ x: Tensor, mode: Mode, upTo lastFeature: Int = 5) -> (features: [Tensor], cache: Cache) {
    precondition(x.rank == 4 && x.shape[3] == config.inChannels,
                 "ResNet expects NHWC input with \(config.inChannels) channels, got shape \(x.shape).")
    precondition((1...5).contains(lastFeature), "ResNet features are numbered 1…5, got \(lastFeature).")
    let (feature1, stemCache) = stem.forward(x, mode: mode)
    var features = [feature1]
    var h = feature1
    var maxPoolCache: MaxPool2D.Cache?
    if let maxPool, lastFeature > 1 {
      let (pooled, cache) = maxPool.forward(h)
      h = pooled
      maxPoolCache = cache
    }
    var stageCaches: [[ResidualBlock.Cache]] = []
    for stage in stages.prefix(lastFeature - 1) {
      var blockCaches: [ResidualBlock.Cache] = []
      for block in stage {
        let (next, cache) = block.forward(h, mode: mode)
        blockCaches.append(cache)
        h = next
      }
      stageCaches.append(blockCaches)
      features.append(h)
    }
    return (features, Cache(stem: stemCache, maxPool: maxPoolCache, stages: stageCaches))
  }

  /// feature1 … feature`lastFeature` in inference mode without keeping caches: BN folded into the convs and every
  /// intermediate freed as soon as it is used. The fast path for feature extraction and evaluation.
  public func inferFeatures(_ x: Tensor, upTo lastFeature: Int = 5) -> [Tensor] {
    precondition(x.rank == 4 && x.shape[3] == config.inChannels,
                 "ResNet expects NHWC input with \(config.inChannels) channels, got shape \(x.shape).")
    precondition((1...5).contains(lastFeature), "ResNet features are numbered 1…5, got \(lastFeature).")
    var features = [stem.infer(x)]
    var h = features[0]
    if let maxPool, lastFeature > 1 { h = maxPool.forward(h).0 }
    for stage in stages.prefix(lastFeature - 1) {
      for block in stage { h = block.infer(h) }
      features.append(h)
    }
    return features
  }

  /// feature5 in inference mode without caches (see `inferFeatures`).
  public func infer(_ x: Tensor) -> Tensor { inferFeatures(x).last! }

  /// ∂L/∂x from ∂L/∂feature5 (an empty tensor unless `computesInputGradient`); adds every parameter's gradient.
  public func backward(_ dy: Tensor, _ cache: Cache) -> Tensor {
    backward(featureGradients: [5: dy], cache)
  }

  /// ∂L/∂x when the loss reads several features (a segmentor's decode head on feature5 = layer4 and auxiliary head
  /// on feature4 = layer3): `featureGradients[k]` is ∂L/∂feature_k (1…5, same shape as the feature); each is added
  /// where its feature leaves the network. The cache must come from a forward that computed those features.
  public func backward(featureGradients: [Int: Tensor], _ cache: Cache) -> Tensor {
    // A forward `upTo: k` (a Faster R-CNN C4 trunk stops at layer3, k = 4) caches k − 1 stages: gradients may reach
    // features 1…k.
    precondition(featureGradients.keys.allSatisfy { (1...(cache.stages.count + 1)).contains($0) }
                   && !featureGradients.isEmpty,
                 "ResNet.backward takes gradients of features 1…\(cache.stages.count + 1) (the features its cache's "
                   + "forward computed), got \(featureGradients.keys.sorted()).")
    var dh: Tensor?
    func inject(_ feature: Int) {
      guard let gradient = featureGradients[feature] else { return }
      if var sum = dh {
        precondition(sum.shape == gradient.shape,
                     "ResNet.backward: ∂L/∂feature\(feature) has shape \(gradient.shape), the feature \(sum.shape).")
        sum += gradient
        dh = sum
      } else {
        dh = gradient
      }
    }
    for (stageIndex, (stage, stageCaches)) in zip(stages, cache.stages).enumerated().reversed() {
      inject(stageIndex + 2)
      guard var stageGradient = dh else { continue }  // no gradient reaches this deep yet
      for (block, blockCache) in zip(stage, stageCaches).reversed() {
        stageGradient = block.backward(stageGradient, blockCache)
      }
      dh = stageGradient
    }
    if var pooledGradient = dh, let maxPool, let maxPoolCache = cache.maxPool {
      pooledGradient = maxPool.backward(pooledGradient, maxPoolCache)
      dh = pooledGradient
    }
    inject(1)
    return stem.backward(dh!, cache.stem)
  }

  /// Copies every parameter and buffer value of `source` (same names and shapes; the geometry may differ — a
  /// checkpoint loaded into a standard ResNet moves into its dilated twin this way).
  public func copyParameters(from source: ResNet) {
    let sourceParameters = source.namedParameters
    let targetParameters = namedParameters
    precondition(sourceParameters.map(\.name) == targetParameters.map(\.name),
                 "copyParameters: the two ResNets name their tensors differently (\(source.config) vs \(config)).")
    for (from, to) in zip(sourceParameters, targetParameters) {
      precondition(from.parameter.value.shape == to.parameter.value.shape,
                   "copyParameters: \(from.name) has shape \(from.parameter.value.shape) in the source but \(to.parameter.value.shape) here.")
      to.parameter.value = from.parameter.value
    }
  }

  public var namedParameters: [NamedParameter] {
    var named = stem.namedParameters
    for (stageIndex, stage) in stages.enumerated() {
      for (blockIndex, block) in stage.enumerated() {
        named += prefixed("layer\(stageIndex + 1).\(blockIndex)", block.namedParameters)
      }
    }
    return named
  }
}
