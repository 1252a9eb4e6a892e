// mmcv 1.x `ConvModule` as mmdet 2.x's FPN builds it (mmcv/cnn/bricks/conv_module.py): a conv, then an optional norm,
// no activation (`act_cfg=None`). State-dict names `conv.*` and `bn.*` (build_norm_layer names BN / SyncBN `bn`).
import Tensors
import Layers

/// `ConvModule(in, out, k, padding, norm_cfg, act_cfg=None)`: conv (with a bias only when there is no norm —
/// `bias='auto'`) followed by BatchNorm when `hasNorm` (SyncBN on one process = BatchNorm with batch statistics).
///
/// Initialisation as the FPN ends up after `init_weights`: ConvModule's own kaiming init (run in its constructor) is
/// overwritten by the FPN's `init_cfg=dict(type='Xavier', layer='Conv2d', distribution='uniform')`: weight
/// U(±√(6 / (fan_in + fan_out))) with fan_in = in·k², fan_out = out·k² (gain 1), bias 0; BN γ = 1, β = 0
/// (ConvModule's `constant_init(norm, 1, bias=0)`, which FPN's init does not touch).
public final class FPNConvModule: Layer {
  public let conv: Conv2D
  public let norm: BatchNorm?

  public struct Cache {
    let conv: Conv2D.Cache
    let norm: BatchNorm.Cache?
  }

  public init<G: RandomNumberGenerator>(inChannels: Int, outChannels: Int, kernelSize: Int, padding: Int,
                                        hasNorm: Bool, using generator: inout G) {
    conv = Conv2D(inChannels: inChannels, outChannels: outChannels, kernelSize: kernelSize, padding: padding,
                  hasBias: !hasNorm, using: &generator)
    let fanIn = Float(inChannels * kernelSize * kernelSize), fanOut = Float(outChannels * kernelSize * kernelSize)
    let bound = (6 / (fanIn + fanOut)).squareRoot()
    conv.weight.value = .randomUniform(conv.weight.value.shape, low: -bound, high: bound, using: &generator)
    conv.bias?.value = .zeros([outChannels])
    norm = hasNorm ? BatchNorm(channels: outChannels) : nil
  }

  /// `[n, h, w, in]` → `[n, h, w, out]`.
  public func forward(_ x: Tensor, mode: Mode) -> (Tensor, Cache) {
    let (convolved, convCache) = conv.forward(x, mode: mode)
    guard let norm else { return (convolved, Cache(conv: convCache, norm: nil)) }
    let (y, normCache) = norm.forward(convolved, mode: mode)
    return (y, Cache(conv: convCache, norm: normCache))
  }

  public func backward(_ dy: Tensor, _ cache: Cache) -> Tensor {
    guard let norm, let normCache = cache.norm else { return conv.backward(dy, cache.conv) }
    return conv.backward(norm.backward(dy, normCache), cache.conv)
  }

  /// `conv.weight`, (`conv.bias` without norm), then `bn.weight`, `bn.bias`, `bn.running_mean`, … (module order).
  public var namedParameters: [NamedParameter] {
    var named = prefixed("conv", conv.namedParameters)
    if let norm { named += prefixed("bn", norm.namedParameters) }
    return named
  }
}
