// The box head of Mask R-CNN R50-FPN as MMSelfSup configures it: mmdet 2.x `Shared4Conv1FCBBoxHead(norm_cfg=SyncBN)`.
// Reference: mmdet 2.x roi_heads/bbox_heads/convfc_bbox_head.py (`ConvFCBBoxHead._add_conv_fc_branch`,
// `_forward_shared`, `_forward_cls_reg`, its init_cfg: Xavier uniform for `shared_fcs`, bias 0), bbox_head.py
// (`fc_cls` N(0, 0.01²), `fc_reg` N(0, 0.001²), biases 0) and mmcv 1.x cnn/bricks/conv_module.py (`ConvModule`:
// conv 3×3 padding 1, bias only without norm, then norm, then ReLU; `kaiming_init` = kaiming_normal fan_out relu,
// bias 0; norm weight 1, bias 0). Forward and backward side by side.
import Tensors
import Layers

/// The shape of a `ConvFCBoxHead`: shared convs, shared fcs, then `fc_cls` / `fc_reg`.
public struct ConvFCBoxHeadConfig: Sendable, Equatable {
  /// Foreground classes (80 for COCO): `fc_cls` has `classCount + 1` outputs (background LAST), `fc_reg` 4 per class.
  public var classCount: Int
  /// Channels of the pooled roi features (the FPN's `out_channels`, 256).
  public var inChannels: Int
  /// `roi_feat_size`: the pooled grid side (7).
  public var roiSize: Int
  /// `num_shared_convs` 3×3 ConvModules of `convChannels` each (4 and 256).
  public var convCount: Int
  public var convChannels: Int
  /// `num_shared_fcs` fully connected layers of `fcChannels` each, every one followed by a ReLU (1 and 1024).
  public var fcCount: Int
  public var fcChannels: Int
  /// `norm_cfg`: a BatchNorm (SyncBN on one process) after each conv, whose conv then has no bias; without it the
  /// convs have biases (mmcv's `bias='auto'`).
  public var usesNorm: Bool

  public init(classCount: Int, inChannels: Int = 256, roiSize: Int = 7, convCount: Int = 4, convChannels: Int = 256,
              fcCount: Int = 1, fcChannels: Int = 1024, usesNorm: Bool = true) {
    self.classCount = classCount
    self.inChannels = inChannels
    self.roiSize = roiSize
    self.convCount = convCount
    self.convChannels = convChannels
    self.fcCount = fcCount
    self.fcChannels = fcChannels
    self.usesNorm = usesNorm
  }

  /// MMSelfSup's `bbox_head=dict(type='Shared4Conv1FCBBoxHead', norm_cfg=SyncBN)` on mmdet's
  /// mask_rcnn_r50_fpn.py (in_channels 256, fc_out_channels 1024, roi_feat_size 7).
  public static func shared4Conv1FC(classCount: Int, inChannels: Int = 256, usesNorm: Bool = true)
    -> ConvFCBoxHeadConfig {
    ConvFCBoxHeadConfig(classCount: classCount, inChannels: inChannels, usesNorm: usesNorm)
  }

  /// Features entering the first fc: the last conv's (or the input's) channels × roi area, flattened as NCHW.
  var flattenedFeatures: Int { (convCount > 0 ? convChannels : inChannels) * roiSize * roiSize }
}

/// mmdet `ConvFCBBoxHead` with shared convs and fcs only (`Shared4Conv1FCBBoxHead`, `Shared2FCBBoxHead`), on pooled
/// NHWC roi features `[k, S, S, inChannels]`.
///
/// State-dict names (under `roi_head.bbox_head.` in the detector), in PyTorch's order (`fc_cls` / `fc_reg` are
/// registered by `BBoxHead.__init__` first and only re-assigned later): `fc_cls.{weight,bias}` `[classCount + 1,
/// fcChannels]`, `fc_reg.{weight,bias}` `[4·classCount, fcChannels]`, `shared_convs.{i}.conv.weight` (OIHW in
/// the state dict), `shared_convs.{i}.bn.{weight,bias,running_mean,running_var,num_batches_tracked}` (with norm) or
/// `shared_convs.{i}.conv.bias` (without), `shared_fcs.{i}.{weight,bias}` (`shared_fcs.0.weight` is
/// `[fcChannels, C·S·S]` over PyTorch's (c, h, w) flattening).
public final class ConvFCBoxHead {
  public let config: ConvFCBoxHeadConfig
  /// `shared_convs.{i}.conv`: 3×3, padding 1.
  public let convs: [Conv2D]
  /// `shared_convs.{i}.bn` with the ReLU fused; empty without norm.
  public let norms: [BatchNorm]
  /// `shared_fcs.{i}`, each followed by a ReLU.
  public let sharedFCs: [Linear]
  /// `fc_cls`: fcChannels → classCount + 1 logits.
  public let classifier: Linear
  /// `fc_reg`: fcChannels → 4·classCount deltas (dx, dy, dw, dh per class, in BoxCoder.roiHead units).
  public let regressor: Linear

  /// What backward needs: every layer's cache, the ReLU outputs (for their masks) and the last conv output's shape.
  public struct Cache {
    let convs: [Conv2D.Cache]
    let norms: [BatchNorm.Cache]
    let convOutputs: [Tensor]     // without norm: each conv's ReLU output [k, S, S, convChannels]; else empty
    let spatialShape: [Int]       // [k, S, S, c] entering the flatten
    let fcs: [Linear.Cache]
    let fcOutputs: [Tensor]       // each shared fc's ReLU output [k, fcChannels]
    let classifier: Linear.Cache
    let regressor: Linear.Cache
  }

  /// A head initialised as mmdet's `init_weights` (the distributions; torch's random stream is not reproduced), drawn
  /// from `generator` in this order: each conv's weight
  /// (kaiming normal, fan_out, ReLU gain; bias 0), each shared fc's weight (Xavier uniform, bound √(6 / (in + out)),
  /// bias 0), fc_cls's weight N(0, 0.01²), fc_reg's N(0, 0.001²) (biases 0). BatchNorms start at γ 1, β 0.
  public init<G: RandomNumberGenerator>(config: ConvFCBoxHeadConfig, using generator: inout G) {
    precondition(config.classCount >= 1 && config.inChannels >= 1 && config.roiSize >= 1 && config.convCount >= 0
                   && config.convChannels >= 1 && config.fcCount >= 1 && config.fcChannels >= 1,
                 "ConvFCBoxHead needs ≥ 1 class, positive sizes, ≥ 0 convs and ≥ 1 shared fc, got \(config).")
    self.config = config
    convs = (0..<config.convCount).map { index in
      let conv = Conv2D(inChannels: index == 0 ? config.inChannels : config.convChannels,
                        outChannels: config.convChannels, kernelSize: 3, padding: 1, hasBias: !config.usesNorm,
                        initialization: .kaimingNormalFanOut, using: &generator)
      conv.bias?.value = .zeros([config.convChannels])
      return conv
    }
    norms = config.usesNorm
      ? (0..<config.convCount).map { _ in
        let norm = BatchNorm(channels: config.convChannels)
        norm.fusesReLU = true
        return norm
      }
      : []
    sharedFCs = (0..<config.fcCount).map { index in
      let inFeatures = index == 0 ? config.flattenedFeatures : config.fcChannels
      let bound = (6 / Float(inFeatures + config.fcChannels)).squareRoot()
      // Built with a zero bias, then its weight redrawn from Xavier's uniform (Linear has no Xavier scheme).
      let fc = Linear(inFeatures: inFeatures, outFeatures: config.fcChannels, initialization: .normal(std: 1),
                      using: &generator)
      fc.weight.value = .randomUniform([config.fcChannels, inFeatures], low: -bound, high: bound, using: &generator)
      return fc
    }
    classifier = Linear(inFeatures: config.fcChannels, outFeatures: config.classCount + 1,
                        initialization: .normal(std: 0.01), using: &generator)
    regressor = Linear(inFeatures: config.fcChannels, outFeatures: 4 * config.classCount,
                       initialization: .normal(std: 0.001), using: &generator)
  }

  /// Class logits `[k, classCount + 1]` and box deltas `[k, 4·classCount]` for pooled roi features `pooled`
  /// `[k, S, S, inChannels]` (`MultiLevelROIExtractor.mmdetBox`'s output). In `.training` the norms use the batch
  /// statistics of these k rois (SyncBN on one process) and update their running statistics.
  public func forward(_ pooled: Tensor, mode: Mode) -> (classLogits: Tensor, boxDeltas: Tensor, cache: Cache) {
    checkInput(pooled)
    var h = pooled
    var convCaches: [Conv2D.Cache] = [], normCaches: [BatchNorm.Cache] = [], convOutputs: [Tensor] = []
    for (index, conv) in convs.enumerated() {
      let (convolved, convCache) = conv.forward(h, mode: mode)
      convCaches.append(convCache)
      if config.usesNorm {
        let (normalized, normCache) = norms[index].forward(convolved, mode: mode)  // BN + fused ReLU
        normCaches.append(normCache)
        h = normalized
      } else {
        h = relu(convolved)
        convOutputs.append(h)
      }
    }
    let spatialShape = h.shape
    var flat = flattenChannelsFirst(h)  // [k, c·S·S], PyTorch's x.flatten(1) of NCHW
    var fcCaches: [Linear.Cache] = [], fcOutputs: [Tensor] = []
    for fc in sharedFCs {
      let (projected, fcCache) = fc.forward(flat, mode: mode)
      fcCaches.append(fcCache)
      flat = relu(projected)
      fcOutputs.append(flat)
    }
    let (classLogits, classifierCache) = classifier.forward(flat, mode: mode)
    let (boxDeltas, regressorCache) = regressor.forward(flat, mode: mode)
    return (classLogits, boxDeltas,
            Cache(convs: convCaches, norms: normCaches, convOutputs: convOutputs, spatialShape: spatialShape,
                  fcs: fcCaches, fcOutputs: fcOutputs, classifier: classifierCache, regressor: regressorCache))
  }

  /// ∂L/∂pooled `[k, S, S, inChannels]` from ∂L/∂classLogits and ∂L/∂boxDeltas; adds every head parameter's gradient.
  public func backward(classLogitGradient: Tensor, boxDeltaGradient: Tensor, _ cache: Cache) -> Tensor {
    var dFlat = classifier.backward(classLogitGradient, cache.classifier)  // [k, fcChannels]
    dFlat += regressor.backward(boxDeltaGradient, cache.regressor)
    for index in sharedFCs.indices.reversed() {
      dFlat = sharedFCs[index].backward(reluBackward(dFlat, output: cache.fcOutputs[index]), cache.fcs[index])
    }
    var dh = unflattenChannelsFirst(dFlat, spatialShape: cache.spatialShape)  // [k, S, S, c]
    for index in convs.indices.reversed() {
      let dConvolved = config.usesNorm
        ? norms[index].backward(dh, cache.norms[index])
        : reluBackward(dh, output: cache.convOutputs[index])
      dh = convs[index].backward(dConvolved, cache.convs[index])
    }
    return dh
  }

  /// Inference without caches (each BatchNorm folded into its conv): equal to `forward(pooled, mode: .inference)`
  /// up to rounding.
  public func infer(_ pooled: Tensor) -> (classLogits: Tensor, boxDeltas: Tensor) {
    checkInput(pooled)
    var h = pooled
    for (index, conv) in convs.enumerated() {
      let (scale, shift) = config.usesNorm
        ? norms[index].foldedScaleShift()
        : ([Float](repeating: 1, count: config.convChannels), [Float](repeating: 0, count: config.convChannels))
      h = conv.forwardFolded(h, scale: scale, shift: shift, appliesReLU: true)
    }
    var flat = flattenChannelsFirst(h)
    for fc in sharedFCs { flat = relu(fc.forward(flat, mode: .inference).0) }
    return (classifier.forward(flat, mode: .inference).0, regressor.forward(flat, mode: .inference).0)
  }

  /// Test-time logits and deltas for `rois` `[k, 5]` on the pyramid `features` (finest first), pooled by
  /// `extractor` `chunk` rois at a time so 1000 proposals never hold their pooled features and conv activations at
  /// once (like `C4ROIHead.infer`). Every op is per roi in inference mode, so chunking changes nothing.
  public func infer(features: [Tensor], rois: Tensor, extractor: MultiLevelROIExtractor = .mmdetBox,
                    chunk: Int = 128) -> (classLogits: Tensor, boxDeltas: Tensor) {
    precondition(chunk > 0, "ConvFCBoxHead.infer needs a positive chunk size, got \(chunk).")
    precondition(extractor.outputSize == config.roiSize,
                 "ConvFCBoxHead.infer: the extractor pools \(extractor.outputSize)×\(extractor.outputSize) but the "
                   + "head expects \(config.roiSize)×\(config.roiSize).")
    let k = rois.shape[0]
    let (classes, deltas) = (config.classCount + 1, 4 * config.classCount)
    var logits = [Float](), boxDeltas = [Float]()
    logits.reserveCapacity(k * classes)
    boxDeltas.reserveCapacity(k * deltas)
    for start in stride(from: 0, to: k, by: chunk) {
      let part = gatherRows(rois, Array(start..<min(start + chunk, k)))
      let (partLogits, partDeltas) = infer(extractor.forward(features: features, rois: part).0)
      logits += partLogits.scalars
      boxDeltas += partDeltas.scalars
    }
    return (Tensor(shape: [k, classes], scalars: logits), Tensor(shape: [k, deltas], scalars: boxDeltas))
  }

  /// mmdet's names relative to `roi_head.bbox_head.`, in state-dict order.
  public var namedParameters: [NamedParameter] {
    var named = prefixed("fc_cls", classifier.namedParameters) + prefixed("fc_reg", regressor.namedParameters)
    for (index, conv) in convs.enumerated() {
      named += prefixed("shared_convs.\(index).conv", conv.namedParameters)
      if config.usesNorm { named += prefixed("shared_convs.\(index).bn", norms[index].namedParameters) }
    }
    for (index, fc) in sharedFCs.enumerated() { named += prefixed("shared_fcs.\(index)", fc.namedParameters) }
    return named
  }

  public var parameters: [Parameter] { namedParameters.map(\.parameter) }

  private func checkInput(_ pooled: Tensor) {
    precondition(pooled.rank == 4 && pooled.shape[0] > 0
                   && Array(pooled.shape[1...]) == [config.roiSize, config.roiSize, config.inChannels],
                 "ConvFCBoxHead expects pooled rois [k, \(config.roiSize), \(config.roiSize), "
                   + "\(config.inChannels)] with k > 0, got \(pooled.shape).")
  }
}

/// `[k, S, S, c]` NHWC rows → `[k, c·S·S]` in PyTorch's NCHW `flatten(1)` order (channel-major), parallel over rois.
func flattenChannelsFirst(_ x: Tensor) -> Tensor {
  let (k, pixels, c) = (x.shape[0], x.shape[1] * x.shape[2], x.shape[3])
  return Tensor(uninitializedShape: [k, c * pixels]) { out in
    x.scalars.withUnsafeBufferPointer { source in
      let (sp, op) = (source.baseAddress!, out.baseAddress!)
      parallelFor(0..<k) { rois in
        for roi in rois {
          let (from, to) = (sp + roi * pixels * c, op + roi * pixels * c)
          for pixel in 0..<pixels {
            for channel in 0..<c { to[channel * pixels + pixel] = from[pixel * c + channel] }
          }
        }
      }
    }
  }
}

/// The inverse of `flattenChannelsFirst`: `[k, c·S·S]` → `[k, S, S, c]` (`spatialShape`), for the gradient.
func unflattenChannelsFirst(_ x: Tensor, spatialShape: [Int]) -> Tensor {
  let (k, pixels, c) = (spatialShape[0], spatialShape[1] * spatialShape[2], spatialShape[3])
  precondition(x.shape == [k, c * pixels],
               "unflattenChannelsFirst: \(x.shape) does not flatten \(spatialShape).")
  return Tensor(uninitializedShape: spatialShape) { out in
    x.scalars.withUnsafeBufferPointer { source in
      let (sp, op) = (source.baseAddress!, out.baseAddress!)
      parallelFor(0..<k) { rois in
        for roi in rois {
          let (from, to) = (sp + roi * pixels * c, op + roi * pixels * c)
          for channel in 0..<c {
            for pixel in 0..<pixels { to[pixel * c + channel] = from[channel * pixels + pixel] }
          }
        }
      }
    }
  }
}
