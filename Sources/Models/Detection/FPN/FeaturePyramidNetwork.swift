// mmdet 2.x `FPN` neck (mmdet/models/necks/fpn.py) with the Mask R-CNN R50-FPN settings (PROTOCOLS §5.2): start_level
// 0, end_level −1, add_extra_convs False (extra levels by `F.max_pool2d(out, 1, stride=2)`), nearest top-down
// upsampling to the lower level's size, ConvModules without activation; MMSelfSup's benchmark config adds SyncBN
// (`neck=dict(norm_cfg=norm_cfg)`), plain mmdet has no norm.
import Tensors
import Layers

/// The feature pyramid: C2…C5 `[n, h_i, w_i, inChannels[i]]` (NHWC) → P2…P6 `[n, h_l, w_l, outChannels]`.
///
///     lateral_i = lateral_convs[i](C_i)                       (1×1 ConvModule)
///     top-down, i = last…1: lateral_{i−1} += nearest(lateral_i, size of lateral_{i−1})
///     P_i = fpn_convs[i](lateral_i)                           (3×3 ConvModule, padding 1)
///     extra levels: P_next = max_pool2d(P_last, kernel 1, stride 2)   (P6 = P5[::2, ::2])
///
/// State-dict names: `lateral_convs.{i}.conv.weight`, `lateral_convs.{i}.bn.*`, `fpn_convs.{i}.…` (the detector
/// prefixes `neck.`). Init: see `FPNConvModule` (Xavier uniform convs, BN 1/0).
public final class FeaturePyramidNetwork {
  public let inChannels: [Int]
  public let outChannels: Int
  /// mmdet `num_outs`: the input levels plus the max-pooled extra levels (5 for C2…C5 → P2…P6).
  public let outputCount: Int
  public let lateralConvs: [FPNConvModule]  // lateral_convs
  public let outputConvs: [FPNConvModule]   // fpn_convs
  private let extraLevelPool = MaxPool2D(kernelSize: 1, stride: 2)

  /// What backward needs: every ConvModule's cache, the laterals' shapes (upsampling sources) and the pools' caches.
  public struct Cache {
    let lateral: [FPNConvModule.Cache]
    let output: [FPNConvModule.Cache]
    let lateralShapes: [[Int]]
    let pools: [MaxPool2D.Cache]
  }

  /// `inChannels` of C2…C5 ([256, 512, 1024, 2048] for ResNet-50; scaled with a narrower backbone), `outChannels`
  /// (256), `outputCount` = num_outs (5), `hasNorm` = the ConvModules carry BatchNorm (MMSelfSup's SyncBN config).
  public init<G: RandomNumberGenerator>(inChannels: [Int], outChannels: Int = 256, outputCount: Int = 5,
                                        hasNorm: Bool, using generator: inout G) {
    precondition(!inChannels.isEmpty && inChannels.allSatisfy { $0 >= 1 } && outChannels >= 1
                   && outputCount >= inChannels.count,
                 "FeaturePyramidNetwork(in: \(inChannels), out: \(outChannels), outputs: \(outputCount)) needs "
                   + "positive widths and at least one output per input level.")
    self.inChannels = inChannels
    self.outChannels = outChannels
    self.outputCount = outputCount
    // mmdet builds lateral_i and fpn_i alternately in one loop; the draws here follow the same order.
    var laterals = [FPNConvModule](), outputs = [FPNConvModule]()
    for channels in inChannels {
      laterals.append(FPNConvModule(inChannels: channels, outChannels: outChannels, kernelSize: 1, padding: 0,
                                    hasNorm: hasNorm, using: &generator))
      outputs.append(FPNConvModule(inChannels: outChannels, outChannels: outChannels, kernelSize: 3, padding: 1,
                                   hasNorm: hasNorm, using: &generator))
    }
    lateralConvs = laterals
    outputConvs = outputs
  }

  /// C2…C5 → P2…P(outputCount+1), each `[n, h, w, outChannels]`; `mode` selects BN's batch or running statistics.
  public func forward(_ inputs: [Tensor], mode: Mode) -> (outputs: [Tensor], cache: Cache) {
    precondition(inputs.count == inChannels.count,
                 "FeaturePyramidNetwork expects \(inChannels.count) input levels, got \(inputs.count).")
    for (level, input) in inputs.enumerated() {
      precondition(input.rank == 4 && input.shape[3] == inChannels[level] && input.shape[0] == inputs[0].shape[0],
                   "FeaturePyramidNetwork: input level \(level) is \(input.shape), expected NHWC with "
                     + "\(inChannels[level]) channels and batch \(inputs[0].shape[0]).")
    }
    var laterals = [Tensor](), lateralCaches = [FPNConvModule.Cache]()
    for (level, input) in inputs.enumerated() {
      let (lateral, cache) = lateralConvs[level].forward(input, mode: mode)
      laterals.append(lateral)
      lateralCaches.append(cache)
    }
    let lateralShapes = laterals.map(\.shape)
    for level in stride(from: laterals.count - 1, to: 0, by: -1) {
      laterals[level - 1] = addingNearestUpsampled(laterals[level], to: laterals[level - 1])
    }
    var outputs = [Tensor](), outputCaches = [FPNConvModule.Cache]()
    for (level, lateral) in laterals.enumerated() {
      let (output, cache) = outputConvs[level].forward(lateral, mode: mode)
      outputs.append(output)
      outputCaches.append(cache)
    }
    var pools = [MaxPool2D.Cache]()
    while outputs.count < outputCount {
      let (pooled, cache) = extraLevelPool.forward(outputs[outputs.count - 1])
      outputs.append(pooled)
      pools.append(cache)
    }
    return (outputs, Cache(lateral: lateralCaches, output: outputCaches, lateralShapes: lateralShapes, pools: pools))
  }

  /// ∂L/∂C2…C5 from ∂L/∂P2…P6 (one per output, shaped like it; pass zeros for a level without loss); adds every
  /// conv's and BN's parameter gradients.
  public func backward(_ outputGradients: [Tensor], _ cache: Cache) -> [Tensor] {
    precondition(outputGradients.count == outputCount,
                 "FeaturePyramidNetwork.backward: \(outputGradients.count) output gradients for \(outputCount) outputs.")
    let levels = inChannels.count
    // Extra levels, top first: each pooled level's gradient flows into the level below it.
    var gradients = outputGradients
    for extra in stride(from: outputCount - 1, through: levels, by: -1) {
      gradients[extra - 1] += extraLevelPool.backward(gradients[extra], cache.pools[extra - levels])
    }
    // fpn_convs, then the top-down sums in reverse: lateral_i (after its sum) feeds P_i and lateral_{i−1}.
    var lateralGradients = (0..<levels).map { outputConvs[$0].backward(gradients[$0], cache.output[$0]) }
    for level in 1..<max(levels, 1) {
      lateralGradients[level] += nearestUpsampledSourceGradient(lateralGradients[level - 1],
                                                                sourceShape: cache.lateralShapes[level])
    }
    return (0..<levels).map { lateralConvs[$0].backward(lateralGradients[$0], cache.lateral[$0]) }
  }

  /// `lateral_convs.{i}.…` for every level, then `fpn_convs.{i}.…` (nn.Module registration order).
  public var namedParameters: [NamedParameter] {
    lateralConvs.enumerated().flatMap { prefixed("lateral_convs.\($0.offset)", $0.element.namedParameters) }
      + outputConvs.enumerated().flatMap { prefixed("fpn_convs.\($0.offset)", $0.element.namedParameters) }
  }

  public var parameters: [Parameter] { namedParameters.map(\.parameter) }

  public func zeroGrad() { for parameter in parameters { parameter.zeroGrad() } }
}
