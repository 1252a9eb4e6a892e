// Mask R-CNN's mask branch: mmdet 2.x roi_heads/mask_heads/fcn_mask_head.py `FCNMaskHead` — `num_convs` mmcv
// ConvModules (3×3 conv, BN, ReLU; or conv with bias + ReLU without norm), a 2×2 stride-2 deconvolution + ReLU that
// doubles the 14×14 ROI grid to 28×28, and a 1×1 `conv_logits` with one mask logit per class. NHWC throughout.
// Forward and backward side by side; `infer` folds BN for test time.
import Tensors
import Layers

/// The mask head's shape, as mmdet's `_base_/models/mask_rcnn_r50_fpn.py` configures it (`roi_head.mask_head`), with
/// MMSelfSup's `norm_cfg=SyncBN` (PROTOCOLS §5.2; on one process SyncBN is BatchNorm with batch statistics).
public struct FCNMaskHeadConfig: Codable, Sendable, Equatable {
  /// `in_channels`: channels of the pooled ROI features (the FPN's 256).
  public var inChannels: Int
  /// `conv_out_channels`: channels of the convs and of the deconvolution (256).
  public var convChannels: Int
  /// `num_convs` (4).
  public var convCount: Int
  /// `num_classes` (80 for COCO): one logit map per class, no background map (`class_agnostic=False`).
  public var classCount: Int
  /// `norm_cfg` set (SyncBN): each ConvModule is conv (no bias) → BN → ReLU; nil norm: conv (bias) → ReLU.
  public var usesNorm: Bool

  public init(inChannels: Int = 256, convChannels: Int = 256, convCount: Int = 4, classCount: Int = 80,
              usesNorm: Bool = true) {
    self.inChannels = inChannels
    self.convChannels = convChannels
    self.convCount = convCount
    self.classCount = classCount
    self.usesNorm = usesNorm
  }
}

/// One mmcv 1.x `ConvModule(in, out, 3, padding=1, norm_cfg)` with the default order conv → norm → ReLU.
/// State-dict names `conv.weight` (+ `conv.bias` without norm) and `bn.{weight,bias,running_mean,running_var,
/// num_batches_tracked}` (`build_norm_layer` names SyncBN/BN `bn`).
/// Init (mmcv `ConvModule.init_weights`): `kaiming_init(conv, nonlinearity='relu')` = kaiming normal fan_out, bias 0;
/// `constant_init(norm, 1, bias=0)`.
public final class MaskConvModule: Layer {
  public let conv: Conv2D
  /// The norm with the ReLU fused into it; nil without norm.
  public let bn: BatchNorm?

  public struct Cache {
    let conv: Conv2D.Cache
    let bn: BatchNorm.Cache?
    let output: Tensor  // [k, h, w, out] after the ReLU (only kept without norm, for its backward)
  }

  public init<G: RandomNumberGenerator>(inChannels: Int, outChannels: Int, usesNorm: Bool, using generator: inout G) {
    conv = Conv2D(inChannels: inChannels, outChannels: outChannels, kernelSize: 3, padding: 1, hasBias: !usesNorm,
                  initialization: .kaimingNormalFanOut, using: &generator)
    if let bias = conv.bias { bias.value = .zeros([outChannels]) }  // kaiming_init sets the bias to 0
    if usesNorm {
      let norm = BatchNorm(channels: outChannels)
      norm.fusesReLU = true
      bn = norm
    } else {
      bn = nil
    }
  }

  public func forward(_ x: Tensor, mode: Mode) -> (Tensor, Cache) {
    let (convolved, convCache) = conv.forward(x, mode: mode)
    if let bn {
      let (y, bnCache) = bn.forward(convolved, mode: mode)
      return (y, Cache(conv: convCache, bn: bnCache, output: Tensor(shape: [0], scalars: [])))
    }
    let y = relu(convolved)
    return (y, Cache(conv: convCache, bn: nil, output: y))
  }

  public func backward(_ dy: Tensor, _ cache: Cache) -> Tensor {
    if let bn, let bnCache = cache.bn { return conv.backward(bn.backward(dy, bnCache), cache.conv) }
    return conv.backward(reluBackward(dy, output: cache.output), cache.conv)
  }

  /// Inference without a cache, BN's running statistics folded into the conv.
  public func infer(_ x: Tensor) -> Tensor {
    guard let bn else { return relu(conv(x)) }
    let (scale, shift) = bn.foldedScaleShift()
    return conv.forwardFolded(x, scale: scale, shift: shift, appliesReLU: true)
  }

  public var namedParameters: [NamedParameter] {
    var named = prefixed("conv", conv.namedParameters)
    if let bn { named += prefixed("bn", bn.namedParameters) }
    return named
  }
}

/// mmdet 2.x `FCNMaskHead`: ROI features `[k, 14, 14, inChannels]` → mask logits `[k, 28, 28, classCount]`.
///
/// State-dict names are relative to the head (`convs.{i}.conv.weight`, `convs.{i}.bn.*`, `upsample.{weight,bias}`
/// with PyTorch shape `[convChannels, convChannels, 2, 2]`, `conv_logits.{weight,bias}`); in the detector they sit
/// under `FCNMaskHead.stateDictPrefix` (`roi_head.mask_head`).
/// Init: ConvModules as mmcv's `ConvModule.init_weights`; `upsample` and `conv_logits` as
/// `FCNMaskHead.init_weights`: `kaiming_normal_(mode='fan_out', nonlinearity='relu')`, bias 0 (for the deconvolution
/// PyTorch's fan-out of `[in, out, 2, 2]` is in·4).
public final class FCNMaskHead: Layer {
  /// Where mmdet's detector keeps the head's tensors.
  public static let stateDictPrefix = "roi_head.mask_head"

  public let config: FCNMaskHeadConfig
  public let convs: [MaskConvModule]
  /// `upsample`: `nn.ConvTranspose2d(convChannels, convChannels, 2, stride=2)` (mmcv `build_upsample_layer` 'deconv').
  public let upsample: ConvTranspose2D
  /// `conv_logits`: 1×1 conv with bias, convChannels → classCount.
  public let logits: Conv2D

  public struct Cache {
    let convs: [MaskConvModule.Cache]
    let upsample: ConvTranspose2D.Cache
    let upsampled: Tensor  // [k, 2h, 2w, convChannels] after the ReLU
    let logits: Conv2D.Cache
  }

  /// A fresh head: the convs' weights are drawn first (in order), then upsample's, then conv_logits'.
  public init<G: RandomNumberGenerator>(config: FCNMaskHeadConfig, using generator: inout G) {
    precondition(config.inChannels >= 1 && config.convChannels >= 1 && config.convCount >= 0
                   && config.classCount >= 1,
                 "FCNMaskHead needs positive channel counts, ≥ 0 convs and ≥ 1 class, got \(config).")
    self.config = config
    var modules: [MaskConvModule] = []
    for index in 0..<config.convCount {
      modules.append(MaskConvModule(inChannels: index == 0 ? config.inChannels : config.convChannels,
                                    outChannels: config.convChannels, usesNorm: config.usesNorm,
                                    using: &generator))
    }
    convs = modules
    let upsampleIn = config.convCount > 0 ? config.convChannels : config.inChannels
    upsample = ConvTranspose2D(inChannels: upsampleIn, outChannels: config.convChannels, kernelSize: 2, stride: 2,
                               initialization: .kaimingNormalFanOut, using: &generator)
    logits = Conv2D(inChannels: config.convChannels, outChannels: config.classCount, kernelSize: 1, hasBias: true,
                    initialization: .kaimingNormalFanOut, using: &generator)
    logits.bias!.value = .zeros([config.classCount])
  }

  /// Mask logits `[k, 2h, 2w, classCount]` for ROI features `[k, h, w, inChannels]` (h = w = 14 in Mask R-CNN).
  /// In `.training` every BN normalises with the batch statistics of these k ROIs and updates its running ones.
  public func forward(_ x: Tensor, mode: Mode) -> (Tensor, Cache) {
    precondition(x.rank == 4 && x.shape[3] == config.inChannels && x.shape[0] >= 1,
                 "FCNMaskHead expects ROI features [k ≥ 1, h, w, \(config.inChannels)], got \(x.shape).")
    var h = x
    var convCaches: [MaskConvModule.Cache] = []
    for module in convs {
      let (next, cache) = module.forward(h, mode: mode)
      convCaches.append(cache)
      h = next
    }
    let (deconvolved, upsampleCache) = upsample.forward(h, mode: mode)
    let upsampled = relu(deconvolved)
    let (y, logitsCache) = logits.forward(upsampled, mode: mode)
    return (y, Cache(convs: convCaches, upsample: upsampleCache, upsampled: upsampled, logits: logitsCache))
  }

  /// ∂L/∂(ROI features) `[k, h, w, inChannels]` from ∂L/∂logits `[k, 2h, 2w, classCount]`; adds every parameter's
  /// gradient.
  public func backward(_ dy: Tensor, _ cache: Cache) -> Tensor {
    var dh = logits.backward(dy, cache.logits)
    dh = upsample.backward(reluBackward(dh, output: cache.upsampled), cache.upsample)
    for (module, moduleCache) in zip(convs, cache.convs).reversed() {
      dh = module.backward(dh, moduleCache)
    }
    return dh
  }

  /// Logits in inference mode without caches (BN folded into the convs), `chunk` ROIs at a time so 100 detections
  /// never hold their 28×28×256 activations at once. Equal to `forward(…, .inference).0` up to rounding.
  public func infer(_ x: Tensor, chunk: Int = 32) -> Tensor {
    precondition(chunk > 0, "FCNMaskHead.infer needs a positive chunk size, got \(chunk).")
    precondition(x.rank == 4 && x.shape[3] == config.inChannels,
                 "FCNMaskHead expects ROI features [k, h, w, \(config.inChannels)], got \(x.shape).")
    let k = x.shape[0]
    let perROI = x.count / max(k, 1)
    let outputShape = [k, 2 * x.shape[1], 2 * x.shape[2], config.classCount]
    var scalars = [Float]()
    scalars.reserveCapacity(outputShape.product)
    for start in stride(from: 0, to: k, by: chunk) {
      let end = min(k, start + chunk)
      var h = Tensor(shape: [end - start] + Array(x.shape.dropFirst()),
                     scalars: Array(x.scalars[(start * perROI)..<(end * perROI)]))
      for module in convs { h = module.infer(h) }
      h = relu(upsample(h))
      scalars += logits(h).scalars
    }
    return Tensor(shape: outputShape, scalars: scalars)
  }

  /// mmdet's order: `convs.0 … convs.{n−1}`, `upsample`, `conv_logits`.
  public var namedParameters: [NamedParameter] {
    var named: [NamedParameter] = []
    for (index, module) in convs.enumerated() { named += prefixed("convs.\(index)", module.namedParameters) }
    named += prefixed("upsample", upsample.namedParameters)
    named += prefixed("conv_logits", logits.namedParameters)
    return named
  }
}
