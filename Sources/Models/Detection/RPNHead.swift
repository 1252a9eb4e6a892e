// mmdet 2.x `RPNHead` (mmdet/models/dense_heads/rpn_head.py `_init_layers`, `forward_single`) on one NHWC feature
// level, with a sigmoid objectness (`use_sigmoid=True`: one logit per anchor).
import Tensors
import Layers

/// `rpn_conv` (3×3, padding 1, in → feat, ReLU) → `rpn_cls` (1×1, feat → A logits) and `rpn_reg` (1×1, feat → 4A
/// deltas). Every conv is initialised N(0, 0.01²) with bias 0 (RPNHead's `init_cfg=dict(type='Normal',
/// layer='Conv2d', std=0.01)`).
///
/// Output order: mmdet flattens `cls_score.permute(0, 2, 3, 1).reshape(n, -1)` and
/// `bbox_pred.permute(0, 2, 3, 1).reshape(n, -1, 4)`, i.e. location-major (row, column) then anchor, with the four
/// deltas of anchor a in channels 4a…4a+3. Our NHWC conv outputs `[n, h, w, A]` and `[n, h, w, 4A]` are already in
/// that order, and it is the order of `AnchorGenerator.gridAnchors` (location-major, then the cell anchors).
public final class RPNHead {
  public let inChannels: Int
  public let featureChannels: Int
  public let anchorsPerLocation: Int
  public let conv: Conv2D        // rpn_conv
  public let objectness: Conv2D  // rpn_cls
  public let regression: Conv2D  // rpn_reg

  /// What backward needs: the three convs' inputs and the ReLU output (the 1×1 convs' shared input).
  public struct Cache {
    let conv: Conv2D.Cache
    let hidden: Tensor  // [n, h, w, feat], after the ReLU
    let objectness: Conv2D.Cache
    let regression: Conv2D.Cache
  }

  public init<G: RandomNumberGenerator>(inChannels: Int, featureChannels: Int, anchorsPerLocation: Int,
                                        using generator: inout G) {
    precondition(inChannels >= 1 && featureChannels >= 1 && anchorsPerLocation >= 1,
                 "RPNHead(in: \(inChannels), feat: \(featureChannels), anchors: \(anchorsPerLocation)) needs positive sizes.")
    self.inChannels = inChannels
    self.featureChannels = featureChannels
    self.anchorsPerLocation = anchorsPerLocation
    conv = Conv2D(inChannels: inChannels, outChannels: featureChannels, kernelSize: 3, padding: 1, hasBias: true,
                  using: &generator)
    objectness = Conv2D(inChannels: featureChannels, outChannels: anchorsPerLocation, kernelSize: 1, hasBias: true,
                        using: &generator)
    regression = Conv2D(inChannels: featureChannels, outChannels: 4 * anchorsPerLocation, kernelSize: 1,
                        hasBias: true, using: &generator)
    for layer in [conv, objectness, regression] {
      layer.weight.value = .randomNormal(layer.weight.value.shape, std: 0.01, using: &generator)
      layer.bias?.value = .zeros([layer.outChannels])
    }
  }

  /// features `[n, h, w, in]` → objectness logits `[n, h·w·A]` and deltas `[n, h·w·A, 4]` (dx, dy, dw, dh).
  public func forward(_ features: Tensor, mode: Mode) -> (objectness: Tensor, deltas: Tensor, cache: Cache) {
    precondition(features.rank == 4 && features.shape[3] == inChannels,
                 "RPNHead expects NHWC features with \(inChannels) channels, got \(features.shape).")
    let (n, h, w) = (features.shape[0], features.shape[1], features.shape[2])
    let (pre, convCache) = conv.forward(features, mode: mode)
    let hidden = relu(pre)
    let (logits, objectnessCache) = objectness.forward(hidden, mode: mode)
    let (deltas, regressionCache) = regression.forward(hidden, mode: mode)
    let anchors = h * w * anchorsPerLocation
    return (logits.reshaped([n, anchors]), deltas.reshaped([n, anchors, 4]),
            Cache(conv: convCache, hidden: hidden, objectness: objectnessCache, regression: regressionCache))
  }

  /// ∂L/∂features from ∂L/∂objectness `[n, h·w·A]` and ∂L/∂deltas `[n, h·w·A, 4]`; adds every parameter's gradient.
  public func backward(objectnessGradient: Tensor, deltasGradient: Tensor, _ cache: Cache) -> Tensor {
    let hiddenShape = cache.hidden.shape  // [n, h, w, feat]
    let locations = hiddenShape[0] * hiddenShape[1] * hiddenShape[2]
    precondition(objectnessGradient.count == locations * anchorsPerLocation
                   && deltasGradient.count == 4 * locations * anchorsPerLocation,
                 "RPNHead.backward: gradients \(objectnessGradient.shape) and \(deltasGradient.shape) do not match "
                   + "the forward's \(hiddenShape.prefix(3)) locations × \(anchorsPerLocation) anchors.")
    let mapShape = Array(hiddenShape.prefix(3))
    var dHidden = objectness.backward(objectnessGradient.reshaped(mapShape + [anchorsPerLocation]), cache.objectness)
    dHidden += regression.backward(deltasGradient.reshaped(mapShape + [4 * anchorsPerLocation]), cache.regression)
    return conv.backward(reluBackward(dHidden, output: cache.hidden), cache.conv)
  }

  /// mmdet's state-dict names: `rpn_conv.*`, `rpn_cls.*`, `rpn_reg.*`.
  public var namedParameters: [NamedParameter] {
    prefixed("rpn_conv", conv.namedParameters) + prefixed("rpn_cls", objectness.namedParameters)
      + prefixed("rpn_reg", regression.namedParameters)
  }

  public var parameters: [Parameter] { namedParameters.map(\.parameter) }
}
