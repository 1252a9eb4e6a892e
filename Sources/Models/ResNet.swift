// ResNet-18/34/50 exactly as torchvision builds them (He et al. 2016, v1.5: stride on the bottleneck's 3×3),
// plus the CIFAR stem used by SimSiam's CIFAR experiments and a width multiplier for tiny test models.
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

  public init(depth: Int, widthMultiplier: Double = 1, cifarStem: Bool = false, zeroInitResidual: Bool = false,
              inChannels: Int = 3) {
    self.depth = depth
    self.widthMultiplier = widthMultiplier
    self.cifarStem = cifarStem
    self.zeroInitResidual = zeroInitResidual
    self.inChannels = inChannels
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
}

/// A ResNet backbone without its classifier: it returns feature5 (layer4's output) and, on request, feature1 …
/// feature5 as MMSelfSup numbers them (1 = stem conv-bn-relu **before** max-pool, 2…5 = layer1…layer4).
///
/// Parameter names are torchvision's state-dict keys (`conv1.weight`, `layer1.0.downsample.0.weight`, …).
/// Initialisation is torchvision's: convs Kaiming-normal (fan_out, ReLU), BN scale 1 and shift 0.
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
    var inChannels = config.stemWidth
    var stages: [[ResidualBlock]] = []
    for (stageIndex, (width, blockCount)) in zip(config.stageWidths, blocksPerStage).enumerated() {
      var blocks: [ResidualBlock] = []
      for blockIndex in 0..<blockCount {
        let stride = (stageIndex > 0 && blockIndex == 0) ? 2 : 1
        let block = ResidualBlock(kind: kind, inChannels: inChannels, width: width, stride: stride,
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

  /// feature5 ([n, h/32, w/32, c5], or h/8 with the CIFAR stem) and the cache for backward.
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
    precondition(cache.stages.count == 4, "ResNet.backward needs a cache from a forward through all four stages.")
    var dh = dy
    for (stage, stageCaches) in zip(stages, cache.stages).reversed() {
      for (block, blockCache) in zip(stage, stageCaches).reversed() {
        dh = block.backward(dh, blockCache)
      }
    }
    if let maxPool, let maxPoolCache = cache.maxPool {
      dh = maxPool.backward(dh, maxPoolCache)
    }
    return stem.backward(dh, cache.stem)
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
