// mmseg 0.x `EncoderDecoder` with FCN heads (fcn_r50-d8): a (dilated) ResNet, the decode FCNHead on layer4 and
// the auxiliary FCNHead on layer3, trained end to end with BN in training mode (batch statistics).
import Tensors
import Layers

/// FCN-D8: `backbone` → feature4 (layer3) → auxiliary head, feature5 (layer4) → decode head.
///
/// State-dict names are mmseg's: `backbone.conv1.weight`, `backbone.layer1.0.…`, `decode_head.convs.0.conv.weight`,
/// `decode_head.conv_cat.…`, `decode_head.conv_seg.{weight,bias}`, `auxiliary_head.…`.
public final class FCNSegmentor {
  public let backbone: ResNet
  public let config: FCNConfig
  public let decodeHead: FCNHead
  public let auxiliaryHead: FCNHead?

  /// A fresh backbone of `backbone`'s architecture (e.g. `ResNetConfig(…).dilatedD8()`) and fresh heads.
  public convenience init<G: RandomNumberGenerator>(backbone: ResNetConfig, config: FCNConfig,
                                                    using generator: inout G) {
    self.init(backbone: ResNet(backbone, using: &generator), config: config, using: &generator)
  }

  /// Fresh heads on a new backbone of architecture `backbone` (e.g. `loaded.config.dilatedD8()`) holding a copy of
  /// `loaded`'s weights and buffers: the way a checkpoint loaded by `BackboneBuilder` (a standard ResNet, names and
  /// shapes identical) becomes the dilated FCN backbone. `loaded` is not modified.
  public convenience init<G: RandomNumberGenerator>(copying loaded: ResNet, as backbone: ResNetConfig,
                                                    config: FCNConfig, using generator: inout G) {
    var unused = SplitMix64(seed: 0)  // the copied weights replace whatever the new backbone drew
    let dilated = ResNet(backbone, using: &unused)
    dilated.copyParameters(from: loaded)
    self.init(backbone: dilated, config: config, using: &generator)
  }

  /// Fresh heads on an existing backbone (kept, not copied: a backbone loaded from a checkpoint).
  public init<G: RandomNumberGenerator>(backbone: ResNet, config: FCNConfig, using generator: inout G) {
    precondition(config.classCount >= 1, "FCNSegmentor needs at least one class, got \(config.classCount).")
    self.backbone = backbone
    self.config = config
    let featureChannels = backbone.config.featureChannels
    decodeHead = FCNHead(inChannels: featureChannels[4], classCount: config.classCount, config: config.decodeHead,
                         using: &generator)
    auxiliaryHead = config.auxiliaryHead.map {
      FCNHead(inChannels: featureChannels[3], classCount: config.classCount, config: $0, using: &generator)
    }
  }

  /// One forward + backward in training mode on `images` NHWC `[n, H, W, 3]` (normalised) and `labels` (n·H·W
  /// class indices, row-major, `ignoreIndex` = ignored). Dropout masks come from `generator` (decode head first).
  /// ADDS ∂L/∂θ of L = decodeWeight·CE_decode + auxiliaryWeight·CE_aux into every trainable parameter's `grad`
  /// (the caller zeroes gradients and steps the optimiser). Returns the two weighted losses (aux 0 when off).
  public func trainingStep<G: RandomNumberGenerator>(images: Tensor, labels: [UInt8],
                                                     dropout generator: inout G) -> (decodeLoss: Float, auxiliaryLoss: Float) {
    precondition(images.rank == 4, "FCNSegmentor expects NHWC images, got \(images.shape).")
    let n = images.shape[0]
    let draw = { (head: FCNHead, generator: inout G) -> Tensor in
      head.config.dropout > 0 ? head.dropout.drawMask(samples: n, channels: head.config.channels, using: &generator)
        : Tensor.zeros([0])
    }
    let decodeMask = draw(decodeHead, &generator)
    let auxiliaryMask = auxiliaryHead.map { draw($0, &generator) }
    return trainingStep(images: images, labels: labels, decodeDropoutMask: decodeMask,
                        auxiliaryDropoutMask: auxiliaryMask)
  }

  /// `trainingStep` with explicit dropout masks (`[n, channels]` of 0 or 1/(1 − p), shape [0] = none), for parity
  /// tests against PyTorch.
  public func trainingStep(images: Tensor, labels: [UInt8], decodeDropoutMask: Tensor,
                           auxiliaryDropoutMask: Tensor?) -> (decodeLoss: Float, auxiliaryLoss: Float) {
    precondition(images.rank == 4 && labels.count == images.shape[0] * images.shape[1] * images.shape[2],
                 "FCNSegmentor.trainingStep: \(labels.count) labels for images \(images.shape) (needs n·H·W).")
    let (height, width) = (images.shape[1], images.shape[2])
    let (features, backboneCache) = backbone.forwardFeatures(images, mode: .training)
    let (decodeLogits, decodeCache) = decodeHead.forward(features[4], mode: .training,
                                                         dropoutMask: decodeDropoutMask)
    let decode = segmentationCrossEntropy(logits: decodeLogits, labels: labels, labelHeight: height,
                                          labelWidth: width, alignCorners: config.alignCorners,
                                          ignoreIndex: config.ignoreIndex, weight: config.decodeWeight)
    var featureGradients = [5: decodeHead.backward(decode.gradient, decodeCache)]
    var auxiliaryLoss: Float = 0
    if let auxiliaryHead {
      let (auxiliaryLogits, auxiliaryCache) = auxiliaryHead.forward(features[3], mode: .training,
                                                                    dropoutMask: auxiliaryDropoutMask ?? .zeros([0]))
      let auxiliary = segmentationCrossEntropy(logits: auxiliaryLogits, labels: labels, labelHeight: height,
                                               labelWidth: width, alignCorners: config.alignCorners,
                                               ignoreIndex: config.ignoreIndex, weight: config.auxiliaryWeight)
      featureGradients[4] = auxiliaryHead.backward(auxiliary.gradient, auxiliaryCache)
      auxiliaryLoss = auxiliary.loss
    }
    _ = backbone.backward(featureGradients: featureGradients, backboneCache)
    return (decode.loss, auxiliaryLoss)
  }

  /// Inference-mode decode-head logits for `images` `[n, H, W, 3]`, bilinearly resized to (height, width) with the
  /// configured align_corners: `[n, height, width, classCount]` (mmseg `EncoderDecoder.encode_decode` + resize).
  public func predictLogits(_ images: Tensor, height: Int, width: Int) -> Tensor {
    let logits = decodeHead.infer(backbone.infer(images))
    if logits.shape[1] == height && logits.shape[2] == width { return logits }
    return bilinearResize(logits, height: height, width: width, alignCorners: config.alignCorners)
  }

  /// The full state dict under mmseg's names (backbone, decode head, auxiliary head), in that order.
  public var namedParameters: [NamedParameter] {
    prefixed("backbone", backbone.namedParameters) + prefixed("decode_head", decodeHead.namedParameters)
      + (auxiliaryHead.map { prefixed("auxiliary_head", $0.namedParameters) } ?? [])
  }

  public var parameters: [Parameter] { namedParameters.map(\.parameter) }

  /// Zeroes every gradient (backbone and heads).
  public func zeroGrad() { for parameter in parameters { parameter.zeroGrad() } }
}
