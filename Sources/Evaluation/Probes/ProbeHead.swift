// One frozen-backbone linear probe head (PROTOCOLS §4.1, §4.2): MMSelfSup's MultiClsHead branch
// (pooled stage map → BatchNorm2d(C, affine=False, momentum 0.1) → flatten → Linear) or ClsHead (GAP → Linear).
//
// Heads read pooled features flattened in PyTorch's NCHW order, [n, c·g·g] (what FeaturePooling and the feature
// cache produce). MultiClsHead normalises the *pooled map* per channel (statistics over n·g·g values), so the
// head unflattens to NHWC [n, g, g, c] for BatchNorm and flattens again for the Linear layer.
import Layers
import Tensors

/// [n, c·g·g] in NCHW order → [n, g, g, c] (the inverse of `nhwcToFlatNCHW`).
public func flatNCHWToNHWC(_ x: Tensor, channels c: Int, grid g: Int) -> Tensor {
  precondition(x.rank == 2 && x.shape[1] == c * g * g,
               "flatNCHWToNHWC expects [n, \(c * g * g)] for \(c) channels on a \(g)×\(g) grid, got \(x.shape).")
  let n = x.shape[0], plane = g * g
  return Tensor(uninitializedShape: [n, g, g, c]) { output in
    x.scalars.withUnsafeBufferPointer { input in
      let (source, target) = (input.baseAddress!, output.baseAddress!)
      parallelFor(0..<n, minimumChunk: max(1, 65_536 / max(c * plane, 1))) { range in
        for image in range {
          let from = source + image * plane * c, to = target + image * plane * c
          for channel in 0..<c {
            for position in 0..<plane { to[position * c + channel] = from[channel * plane + position] }
          }
        }
      }
    }
  }
}

/// A probe head for one feature layer: `[BN(affine=False)] → Linear(dim → classes)`, weights N(0, std²), bias 0.
public final class ProbeHead {
  public let layer: FeatureLayer
  /// Channels and grid side of the pooled map the flat input came from (grid 1 for `avgpool`).
  public let channels: Int
  public let grid: Int
  public let norm: BatchNorm?
  public let linear: Linear

  public struct Cache {
    let norm: BatchNorm.Cache?
    let linear: Linear.Cache
  }

  /// - Parameters:
  ///   - usesBatchNorm: MultiClsHead's `norm_cfg=dict(type='SyncBN', momentum=0.1, affine=False)`; ClsHead has none.
  public init<G: RandomNumberGenerator>(layer: FeatureLayer, channels: Int, grid: Int, classCount: Int,
                                        usesBatchNorm: Bool, batchNormMomentum: Float = 0.1, initStd: Float = 0.01,
                                        using generator: inout G) {
    precondition(channels > 0 && grid > 0 && classCount > 0,
                 "A probe head needs positive channels, grid and classes, got \(channels), \(grid), \(classCount).")
    self.layer = layer
    self.channels = channels
    self.grid = grid
    norm = usesBatchNorm ? BatchNorm(channels: channels, momentum: batchNormMomentum, isAffine: false) : nil
    linear = Linear(inFeatures: channels * grid * grid, outFeatures: classCount,
                    initialization: .normal(std: initStd), using: &generator)
  }

  public var inputDimension: Int { channels * grid * grid }
  public var classCount: Int { linear.outFeatures }

  /// Logits [n, classes] from pooled flat features [n, c·g·g]. `.training` normalises with batch statistics
  /// and moves the running ones; `.inference` uses the running statistics.
  public func forward(_ x: Tensor, mode: Mode) -> (Tensor, Cache) {
    precondition(x.rank == 2 && x.shape[1] == inputDimension,
                 "The \(layer.rawValue) probe expects features [n, \(inputDimension)], got \(x.shape).")
    guard let norm else {
      let (logits, linearCache) = linear.forward(x, mode: mode)
      return (logits, Cache(norm: nil, linear: linearCache))
    }
    let map = grid == 1 ? x : flatNCHWToNHWC(x, channels: channels, grid: grid)  // [n, g, g, c] or [n, c]
    let (normalised, normCache) = norm.forward(map, mode: mode)
    let flat = grid == 1 ? normalised : nhwcToFlatNCHW(normalised)  // [n, c·g·g]
    let (logits, linearCache) = linear.forward(flat, mode: mode)
    return (logits, Cache(norm: normCache, linear: linearCache))
  }

  /// Adds ∂L/∂W, ∂L/∂b into the Linear layer's gradients and returns ∂L/∂x [n, c·g·g].
  public func backward(_ dLogits: Tensor, _ cache: Cache) -> Tensor {
    let dFlat = linear.backward(dLogits, cache.linear)
    guard let norm, let normCache = cache.norm else { return dFlat }
    let dMap = grid == 1 ? dFlat : flatNCHWToNHWC(dFlat, channels: channels, grid: grid)
    let dInput = norm.backward(dMap, normCache)
    return grid == 1 ? dInput : nhwcToFlatNCHW(dInput)
  }

  /// Parameters and buffers under MMSelfSup's names inside the head: `norms.<i>.*` and `fcs.<i>.*` for a
  /// multi-head branch `i`, `fc_cls.*` for the AvgPool head.
  public func namedParameters(branch: Int?) -> [NamedParameter] {
    guard let branch else { return prefixed("fc_cls", linear.namedParameters) }
    return (norm.map { prefixed("norms.\(branch)", $0.namedParameters) } ?? [])
      + prefixed("fcs.\(branch)", linear.namedParameters)
  }

  /// The trainable parameters (the Linear weight and bias).
  public var trainableParameters: [Parameter] { linear.parameters }
}

// MARK: - Pooling with a backward pass (for the composite gradient check pool → BN → Linear → CE)

/// The pooling step of a probe branch with its backward: `FeaturePooling.pooledFlat` for training on a frozen
/// backbone needs no gradient, but the head's gradient check runs through it.
public struct ProbePooling {
  public let rule: FeaturePooling
  public let layer: FeatureLayer

  public init(rule: FeaturePooling, layer: FeatureLayer) {
    self.rule = rule
    self.layer = layer
  }

  public struct Cache {
    let inputShape: [Int]
    let avgPool: AvgPool2D.Cache?
  }

  /// Stage map [n, h, w, c] → pooled flat [n, c·g·g] (NCHW order), as `FeaturePooling.pooledFlat`.
  public func forward(_ x: Tensor) -> (Tensor, Cache) {
    if layer == .avgpool || rule == .adaptive {
      return (rule.pooledFlat(x, layer: layer), Cache(inputShape: x.shape, avgPool: nil))
    }
    let (kernel, stride, padding) = FeaturePooling.specifiedKernels[layer.stageIndex]
    let (pooled, cache) = AvgPool2D(kernelSize: kernel, stride: stride, padding: padding).forward(x)
    return (nhwcToFlatNCHW(pooled), Cache(inputShape: x.shape, avgPool: cache))
  }

  /// ∂L/∂x [n, h, w, c] from ∂L/∂pooled-flat.
  public func backward(_ dy: Tensor, _ cache: Cache) -> Tensor {
    let c = cache.inputShape[3]
    if layer == .avgpool { return globalAvgPoolBackward(dy, inputShape: cache.inputShape) }
    let grid = FeaturePooling.gridSizes[layer.stageIndex]
    let dPooled = flatNCHWToNHWC(dy, channels: c, grid: grid)
    if let avgPool = cache.avgPool {
      let (kernel, stride, padding) = FeaturePooling.specifiedKernels[layer.stageIndex]
      return AvgPool2D(kernelSize: kernel, stride: stride, padding: padding).backward(dPooled, avgPool)
    }
    return adaptiveAvgPool2DBackward(dPooled, inputShape: cache.inputShape)
  }
}
