// The C4 ROI head of Faster R-CNN: ROIAlign 14×14 on the stride-16 C4 features → res5 (the backbone's layer4,
// stride 2 → 7×7) → an extra BatchNorm (no ReLU after it) → global average pool → fc_cls and fc_reg.
// References: mmdet 2.x roi_heads/standard_roi_head.py (`_bbox_forward`), roi_extractors/single_level_roi_extractor.py
// (one level: plain `RoIAlign(14, 1/16, sampling_ratio=0, aligned=True)`), MMSelfSup
// tools/benchmarks/mmdetection/res_layer_extra_norm.py (`ResLayerExtraNorm.forward`: `norm(layer4(x))`),
// bbox_heads/bbox_head.py (`BBoxHead(with_avg_pool=True)`: AvgPool2d(7) = the 7×7 mean, fc_cls N(0, 0.01²),
// fc_reg N(0, 0.001²), biases 0). Forward and backward side by side.
import Tensors
import Layers

/// mmdet `StandardRoIHead` with MMSelfSup's `ResLayerExtraNorm` shared head and `BBoxHead(with_avg_pool=True)`.
///
/// State-dict names (under `roi_head.` in the detector): `shared_head.layer4.<block>.…` (torchvision's layer4 names),
/// `shared_head.norm.{weight,bias,running_mean,running_var,num_batches_tracked}`, `bbox_head.fc_cls.{weight,bias}`
/// (`[classCount + 1, c5]`, background last), `bbox_head.fc_reg.{weight,bias}` (`[4·classCount, c5]`, class-specific).
public final class C4ROIHead {
  public let config: ROIHeadConfig
  public let roiAlign: ROIAlign
  /// res5: the ResNet's layer4 blocks (shared with the backbone object they came from, so checkpoint weights load).
  public let res5: [ResidualBlock]
  /// `shared_head.norm`: BatchNorm on the res5 output, without a ReLU.
  public let extraNorm: BatchNorm
  /// `bbox_head.fc_cls`: c5 → classCount + 1 logits.
  public let classifier: Linear
  /// `bbox_head.fc_reg`: c5 → 4·classCount deltas (dx, dy, dw, dh per class, in BoxCoder.roiHead units).
  public let regressor: Linear

  /// What backward needs: the rois and feature shape for ROIAlign, every block's cache, the norm and fc caches.
  public struct Cache {
    let rois: Tensor              // [k, 5]
    let featureShape: [Int]       // [n, h, w, c4]
    let blocks: [ResidualBlock.Cache]
    let norm: BatchNorm.Cache
    let normalizedShape: [Int]    // [k, 7, 7, c5]
    let classifier: Linear.Cache
    let regressor: Linear.Cache
  }

  /// A head on `res5` (e.g. `backbone.stages[3]` of a loaded ResNet) with a fresh extra norm (γ 1, β 0) and fresh
  /// fc layers drawn from `generator`: fc_cls's weight first, then fc_reg's (mmdet's init order).
  public init<G: RandomNumberGenerator>(res5: [ResidualBlock], config: ROIHeadConfig, using generator: inout G) {
    precondition(!res5.isEmpty, "C4ROIHead needs the res5 blocks (the ResNet's layer4), got none.")
    precondition(config.classCount >= 1 && config.pooledSize >= 1 && config.featureStride >= 1,
                 "C4ROIHead needs ≥ 1 class, a positive pooled size and stride, got \(config.classCount), "
                   + "\(config.pooledSize), \(config.featureStride).")
    self.config = config
    self.res5 = res5
    roiAlign = ROIAlign(outputHeight: config.pooledSize, outputWidth: config.pooledSize,
                        spatialScale: 1 / Float(config.featureStride), samplingRatio: config.samplingRatio,
                        aligned: true)
    let channels = res5.last!.outChannels
    extraNorm = BatchNorm(channels: channels)
    classifier = Linear(inFeatures: channels, outFeatures: config.classCount + 1, initialization: .normal(std: 0.01),
                        using: &generator)
    regressor = Linear(inFeatures: channels, outFeatures: 4 * config.classCount,
                       initialization: .normal(std: 0.001), using: &generator)
  }

  /// Channels the head reads (res5's input: the C4 features).
  public var inChannels: Int { res5[0].branch[0].conv.inChannels }

  /// Class logits `[k, classCount + 1]` and box deltas `[k, 4·classCount]` for `rois` `[k, 5]` (batch index,
  /// x1, y1, x2, y2 in input pixels) on C4 `features` `[n, h, w, c4]`. In `.training` res5 and the extra norm use
  /// the batch statistics of these k rois (mmdet with norm_eval False) and update their running statistics.
  public func forward(features: Tensor, rois: Tensor, mode: Mode)
    -> (classLogits: Tensor, boxDeltas: Tensor, cache: Cache) {
    precondition(features.rank == 4 && features.shape[3] == inChannels,
                 "C4ROIHead expects C4 features [n, h, w, \(inChannels)], got \(features.shape).")
    precondition(rois.rank == 2 && rois.shape[1] == 5 && rois.shape[0] > 0,
                 "C4ROIHead expects a non-empty [k, 5] roi tensor, got \(rois.shape).")
    var h = roiAlign.forward(features: features, rois: rois)  // [k, 14, 14, c4]
    var blockCaches: [ResidualBlock.Cache] = []
    for block in res5 {
      let (next, cache) = block.forward(h, mode: mode)
      blockCaches.append(cache)
      h = next
    }
    let (normalized, normCache) = extraNorm.forward(h, mode: mode)  // [k, 7, 7, c5]
    let pooled = globalAvgPool(normalized)  // [k, c5]
    let (classLogits, classifierCache) = classifier.forward(pooled, mode: mode)
    let (boxDeltas, regressorCache) = regressor.forward(pooled, mode: mode)
    return (classLogits, boxDeltas,
            Cache(rois: rois, featureShape: features.shape, blocks: blockCaches, norm: normCache,
                  normalizedShape: normalized.shape, classifier: classifierCache, regressor: regressorCache))
  }

  /// ∂L/∂features `[n, h, w, c4]` from ∂L/∂classLogits and ∂L/∂boxDeltas; adds every head parameter's gradient
  /// (res5, the extra norm, fc_cls, fc_reg).
  public func backward(classLogitGradient: Tensor, boxDeltaGradient: Tensor, _ cache: Cache) -> Tensor {
    var dPooled = classifier.backward(classLogitGradient, cache.classifier)  // [k, c5]
    dPooled += regressor.backward(boxDeltaGradient, cache.regressor)
    var dh = extraNorm.backward(globalAvgPoolBackward(dPooled, inputShape: cache.normalizedShape), cache.norm)
    for (block, blockCache) in zip(res5, cache.blocks).reversed() {
      dh = block.backward(dh, blockCache)
    }
    return roiAlign.backward(outputGradient: dh, rois: cache.rois, featureShape: cache.featureShape)
  }

  /// Class logits and deltas in inference mode without caches (res5 with BN folded into its convs), `chunk` rois at
  /// a time so 1000 proposals never hold their 14×14 pooled features at once. Equal to `forward(…, .inference)` up
  /// to rounding (every op is per roi in inference mode).
  public func infer(features: Tensor, rois: Tensor, chunk: Int = 128) -> (classLogits: Tensor, boxDeltas: Tensor) {
    precondition(chunk > 0, "C4ROIHead.infer needs a positive chunk size, got \(chunk).")
    let k = rois.shape[0]
    let (classes, deltas) = (config.classCount + 1, 4 * config.classCount)
    var logits = [Float](), boxDeltas = [Float]()
    logits.reserveCapacity(k * classes)
    boxDeltas.reserveCapacity(k * deltas)
    for start in stride(from: 0, to: k, by: chunk) {
      let part = gatherRows(rois, Array(start..<min(start + chunk, k)))
      var h = roiAlign.forward(features: features, rois: part)
      for block in res5 { h = block.infer(h) }
      let pooled = globalAvgPool(extraNorm.forward(h, mode: .inference).0)
      logits += classifier.forward(pooled, mode: .inference).0.scalars
      boxDeltas += regressor.forward(pooled, mode: .inference).0.scalars
    }
    return (Tensor(shape: [k, classes], scalars: logits), Tensor(shape: [k, deltas], scalars: boxDeltas))
  }

  /// mmdet's names relative to `roi_head.`: shared head (layer4, then norm), then bbox head (fc_cls, fc_reg).
  public var namedParameters: [NamedParameter] {
    var named: [NamedParameter] = []
    for (index, block) in res5.enumerated() {
      named += prefixed("shared_head.layer4.\(index)", block.namedParameters)
    }
    named += prefixed("shared_head.norm", extraNorm.namedParameters)
    named += prefixed("bbox_head.fc_cls", classifier.namedParameters)
    named += prefixed("bbox_head.fc_reg", regressor.namedParameters)
    return named
  }

  public var parameters: [Parameter] { namedParameters.map(\.parameter) }
}
