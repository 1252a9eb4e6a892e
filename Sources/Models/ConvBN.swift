// Conv2D followed by BatchNorm (optionally with a fused ReLU): the unit every ResNet layer is made of.
import Tensors
import Layers

/// `bn(conv(x))`, or `relu(bn(conv(x)))` when `fusesReLU`. Names its tensors like torchvision does
/// (`conv1.weight`, `bn1.running_mean`, or `downsample.0.weight`, `downsample.1.weight`).
public final class ConvBN: Layer {
  public let conv: Conv2D
  public let bn: BatchNorm
  private let convName: String, bnName: String

  public struct Cache {
    let conv: Conv2D.Cache
    let bn: BatchNorm.Cache
  }

  public init<G: RandomNumberGenerator>(inChannels: Int, outChannels: Int, kernelSize: Int, stride: Int = 1,
                                        padding: Int = 0, dilation: Int = 1, fusesReLU: Bool,
                                        convName: String, bnName: String, using generator: inout G) {
    conv = Conv2D(inChannels: inChannels, outChannels: outChannels, kernelSize: kernelSize, stride: stride,
                  padding: padding, dilation: dilation, hasBias: false, initialization: .kaimingNormalFanOut,
                  using: &generator)
    bn = BatchNorm(channels: outChannels)
    bn.fusesReLU = fusesReLU
    self.convName = convName
    self.bnName = bnName
  }

  public func forward(_ x: Tensor, mode: Mode) -> (Tensor, Cache) {
    let (convolved, convCache) = conv.forward(x, mode: mode)
    let (y, bnCache) = bn.forward(convolved, mode: mode)
    return (y, Cache(conv: convCache, bn: bnCache))
  }

  public func backward(_ dy: Tensor, _ cache: Cache) -> Tensor {
    conv.backward(bn.backward(dy, cache.bn), cache.conv)
  }

  /// Inference without a cache: BN's running statistics are folded into the conv (equal to
  /// `forward(x, mode: .inference).0` up to rounding), saving the BN pass.
  public func infer(_ x: Tensor) -> Tensor {
    let (scale, shift) = bn.foldedScaleShift()
    return conv.forwardFolded(x, scale: scale, shift: shift, appliesReLU: bn.fusesReLU)
  }

  public var namedParameters: [NamedParameter] {
    prefixed(convName, conv.namedParameters) + prefixed(bnName, bn.namedParameters)
  }
}
