// ResNet v1.5 residual blocks (He et al. 2016; torchvision layout: the stride sits on the 3×3 conv).
import Tensors
import Layers

/// A ResNet block: `relu(branch(x) + shortcut(x))`.
///
/// The basic block's branch is 3×3 → 3×3; the bottleneck's is 1×1 → 3×3 (stride here) → 1×1 with 4× expansion.
/// Every ConvBN but the last fuses its ReLU; the last one's output meets the shortcut in `addReLU`.
/// The shortcut is a strided 1×1 ConvBN (`downsample.0/1`) when the stride or the width changes.
///
/// Dilation follows mmseg's `BasicBlock` / `Bottleneck` (mmseg/models/backbones/resnet.py): the bottleneck's 3×3
/// conv2 and the basic block's FIRST 3×3 conv get dilation = padding = `dilation`; the basic block's conv2 keeps
/// dilation 1, padding 1. Names and shapes never depend on the dilation.
public final class ResidualBlock: Layer {
  public enum Kind: String, Codable, Sendable {
    case basic, bottleneck
    public var expansion: Int { self == .basic ? 1 : 4 }
  }

  public let kind: Kind
  public let branch: [ConvBN]
  public let downsample: ConvBN?

  public struct Cache {
    let branch: [ConvBN.Cache]
    let downsample: ConvBN.Cache?
    let y: Tensor  // [n, h, w, c] block output, after the final ReLU
  }

  /// - Parameters:
  ///   - width: the 3×3 conv's channels; the block outputs `width · kind.expansion`.
  ///   - zeroInitResidual: start the last BN's scale at 0, so the block begins as the identity
  ///     (torchvision/MMSelfSup `zero_init_residual`).
  public init<G: RandomNumberGenerator>(kind: Kind, inChannels: Int, width: Int, stride: Int, dilation: Int = 1,
                                        zeroInitResidual: Bool, using generator: inout G) {
    self.kind = kind
    let outChannels = width * kind.expansion
    switch kind {
    case .basic:
      branch = [
        ConvBN(inChannels: inChannels, outChannels: width, kernelSize: 3, stride: stride, padding: dilation,
               dilation: dilation, fusesReLU: true, convName: "conv1", bnName: "bn1", using: &generator),
        ConvBN(inChannels: width, outChannels: width, kernelSize: 3, padding: 1,
               fusesReLU: false, convName: "conv2", bnName: "bn2", using: &generator),
      ]
    case .bottleneck:
      branch = [
        ConvBN(inChannels: inChannels, outChannels: width, kernelSize: 1,
               fusesReLU: true, convName: "conv1", bnName: "bn1", using: &generator),
        ConvBN(inChannels: width, outChannels: width, kernelSize: 3, stride: stride, padding: dilation,
               dilation: dilation, fusesReLU: true, convName: "conv2", bnName: "bn2", using: &generator),
        ConvBN(inChannels: width, outChannels: outChannels, kernelSize: 1,
               fusesReLU: false, convName: "conv3", bnName: "bn3", using: &generator),
      ]
    }
    if stride != 1 || inChannels != outChannels {
      downsample = ConvBN(inChannels: inChannels, outChannels: outChannels, kernelSize: 1, stride: stride,
                          fusesReLU: false, convName: "downsample.0", bnName: "downsample.1", using: &generator)
    } else {
      downsample = nil
    }
    if zeroInitResidual, let last = branch.last?.bn.weight {
      last.value = Tensor.zeros(last.value.shape)
    }
  }

  public var outChannels: Int { branch.last!.conv.weight.value.shape[0] }

  public func forward(_ x: Tensor, mode: Mode) -> (Tensor, Cache) {
    var h = x
    var branchCaches: [ConvBN.Cache] = []
    branchCaches.reserveCapacity(branch.count)
    for unit in branch {
      let (next, cache) = unit.forward(h, mode: mode)
      branchCaches.append(cache)
      h = next
    }
    let identity: Tensor
    let downsampleCache: ConvBN.Cache?
    if let downsample {
      (identity, downsampleCache) = downsample.forward(x, mode: mode)
    } else {
      (identity, downsampleCache) = (x, nil)
    }
    let y = addReLU(h, identity)
    return (y, Cache(branch: branchCaches, downsample: downsampleCache, y: y))
  }

  /// Inference without caches, BN folded into the convs.
  public func infer(_ x: Tensor) -> Tensor {
    let h = branch.reduce(x) { $1.infer($0) }
    return addReLU(h, downsample?.infer(x) ?? x)
  }

  public func backward(_ dy: Tensor, _ cache: Cache) -> Tensor {
    let dSum = reluBackward(dy, output: cache.y)
    var dh = dSum
    for (unit, unitCache) in zip(branch, cache.branch).reversed() {
      dh = unit.backward(dh, unitCache)
    }
    // x feeds both the branch and the shortcut: their gradients add.
    if let downsample, let downsampleCache = cache.downsample {
      dh += downsample.backward(dSum, downsampleCache)
    } else {
      dh += dSum
    }
    return dh
  }

  public var namedParameters: [NamedParameter] {
    branch.flatMap(\.namedParameters) + (downsample?.namedParameters ?? [])
  }
}
