// mmseg 0.x `FCNHead` (mmseg/models/decode_heads/fcn_head.py + BaseDecodeHead.cls_seg) on NHWC features.
import Tensors
import Layers

/// `convs` (ConvModule × convCount) → [`conv_cat` over concat(input, convs output)] → Dropout2d → `conv_seg`.
///
/// A ConvModule is conv k×k (padding k/2, no bias), BN, ReLU, initialised as mmcv's `ConvModule.init_weights`:
/// `kaiming_init` (normal, fan_out, ReLU) and BN weight 1, bias 0. `conv_seg` is a 1×1 conv with bias initialised
/// N(0, 0.01²) and 0 (BaseDecodeHead's `init_cfg=dict(type='Normal', std=0.01, override=dict(name='conv_seg'))`).
/// State-dict names are mmseg's: `convs.0.conv.weight`, `convs.0.bn.running_mean`, `conv_cat.conv.weight`,
/// `conv_seg.weight`, `conv_seg.bias`.
public final class FCNHead {
  public let config: FCNHeadConfig
  public let inChannels: Int
  public let classCount: Int
  public let convs: [ConvBN]
  public let concatConv: ConvBN?   // conv_cat, with concatInput
  public let dropout: Dropout2D
  public let classifier: Conv2D    // conv_seg

  public struct Cache {
    let convs: [ConvBN.Cache]
    let concat: ConvBN.Cache?
    let dropoutMask: Tensor
    let classifier: Conv2D.Cache
  }

  public init<G: RandomNumberGenerator>(inChannels: Int, classCount: Int, config: FCNHeadConfig,
                                        using generator: inout G) {
    precondition(inChannels >= 1 && classCount >= 1 && config.channels >= 1 && config.convCount >= 1
                   && config.kernelSize % 2 == 1,
                 "FCNHead(in: \(inChannels), classes: \(classCount), \(config)) needs positive sizes, at least one conv and an odd kernel.")
    self.config = config
    self.inChannels = inChannels
    self.classCount = classCount
    let k = config.kernelSize
    convs = (0..<config.convCount).map { index in
      ConvBN(inChannels: index == 0 ? inChannels : config.channels, outChannels: config.channels, kernelSize: k,
             padding: k / 2, fusesReLU: true, convName: "convs.\(index).conv", bnName: "convs.\(index).bn",
             using: &generator)
    }
    concatConv = config.concatInput
      ? ConvBN(inChannels: inChannels + config.channels, outChannels: config.channels, kernelSize: k,
               padding: k / 2, fusesReLU: true, convName: "conv_cat.conv", bnName: "conv_cat.bn", using: &generator)
      : nil
    dropout = Dropout2D(probability: config.dropout)
    classifier = Conv2D(inChannels: config.channels, outChannels: classCount, kernelSize: 1, hasBias: true,
                        using: &generator)
    classifier.weight.value = .randomNormal(classifier.weight.value.shape, std: 0.01, using: &generator)
    classifier.bias?.value = .zeros([classCount])
  }

  /// Logits `[n, h, w, classCount]` at the input's resolution, drawing the dropout mask from `generator` in
  /// training mode.
  public func forward<G: RandomNumberGenerator>(_ x: Tensor, mode: Mode, using generator: inout G) -> (Tensor, Cache) {
    let mask = mode == .training && config.dropout > 0
      ? dropout.drawMask(samples: x.shape[0], channels: config.channels, using: &generator)
      : Tensor.zeros([0])
    return forward(x, mode: mode, dropoutMask: mask)
  }

  /// The same with an explicit `[n, channels]` dropout mask (0 or 1/(1 − p); shape [0] = no dropout), e.g. PyTorch's.
  public func forward(_ x: Tensor, mode: Mode, dropoutMask: Tensor) -> (Tensor, Cache) {
    precondition(x.rank == 4 && x.shape[3] == inChannels,
                 "FCNHead expects NHWC features with \(inChannels) channels, got \(x.shape).")
    var h = x
    var convCaches: [ConvBN.Cache] = []
    for unit in convs {
      let (next, cache) = unit.forward(h, mode: mode)
      convCaches.append(cache)
      h = next
    }
    var concatCache: ConvBN.Cache?
    if let concatConv {
      let (next, cache) = concatConv.forward(concatenateChannels(x, h), mode: mode)
      concatCache = cache
      h = next
    }
    h = dropout.forward(h, mask: dropoutMask)
    let (logits, classifierCache) = classifier.forward(h, mode: mode)
    return (logits, Cache(convs: convCaches, concat: concatCache, dropoutMask: dropoutMask,
                          classifier: classifierCache))
  }

  /// Inference logits without caches: BN folded into the convs, no dropout.
  public func infer(_ x: Tensor) -> Tensor {
    precondition(x.rank == 4 && x.shape[3] == inChannels,
                 "FCNHead expects NHWC features with \(inChannels) channels, got \(x.shape).")
    var h = convs.reduce(x) { $1.infer($0) }
    if let concatConv { h = concatConv.infer(concatenateChannels(x, h)) }
    return classifier.forward(h, mode: .inference).0
  }

  /// ∂L/∂x from ∂L/∂logits; adds every parameter's gradient.
  public func backward(_ dy: Tensor, _ cache: Cache) -> Tensor {
    var dh = dropout.backward(classifier.backward(dy, cache.classifier), mask: cache.dropoutMask)
    var dxDirect: Tensor?
    if let concatConv, let concatCache = cache.concat {
      let (dInput, dConvs) = splitChannels(concatConv.backward(dh, concatCache), at: inChannels)
      dxDirect = dInput
      dh = dConvs
    }
    for (unit, unitCache) in zip(convs, cache.convs).reversed() {
      dh = unit.backward(dh, unitCache)
    }
    // With concat_input, x feeds both the convs and conv_cat: the gradients add.
    if let dxDirect { dh += dxDirect }
    return dh
  }

  public var namedParameters: [NamedParameter] {
    convs.flatMap(\.namedParameters) + (concatConv?.namedParameters ?? [])
      + prefixed("conv_seg", classifier.namedParameters)
  }
}

/// torch.cat([a, b], dim=1) for NHWC: `[n, h, w, ca]` and `[n, h, w, cb]` → `[n, h, w, ca + cb]`, a's channels first.
func concatenateChannels(_ a: Tensor, _ b: Tensor) -> Tensor {
  precondition(a.rank == 4 && b.rank == 4 && a.shape.prefix(3) == b.shape.prefix(3),
               "concatenateChannels needs NHWC tensors of the same n, h, w, got \(a.shape) and \(b.shape).")
  let (rows, ca, cb) = (a.shape[0] * a.shape[1] * a.shape[2], a.shape[3], b.shape[3])
  return Tensor(uninitializedShape: [a.shape[0], a.shape[1], a.shape[2], ca + cb]) { out in
    a.scalars.withUnsafeBufferPointer { aBuffer in
      b.scalars.withUnsafeBufferPointer { bBuffer in
        let (ap, bp, yp) = (aBuffer.baseAddress!, bBuffer.baseAddress!, out.baseAddress!)
        parallelFor(0..<rows, minimumChunk: max(1, (1 << 14) / (ca + cb))) { range in
          for row in range {
            (yp + row * (ca + cb)).update(from: ap + row * ca, count: ca)
            (yp + row * (ca + cb) + ca).update(from: bp + row * cb, count: cb)
          }
        }
      }
    }
  }
}

/// The inverse of `concatenateChannels`: `[n, h, w, c]` → (channels ..<split, channels split...).
func splitChannels(_ x: Tensor, at split: Int) -> (Tensor, Tensor) {
  precondition(x.rank == 4 && split > 0 && split < x.shape[3],
               "splitChannels: cannot split \(x.shape) at channel \(split).")
  let (rows, c) = (x.shape[0] * x.shape[1] * x.shape[2], x.shape[3])
  let shape = Array(x.shape.prefix(3))
  func slice(_ channels: Range<Int>) -> Tensor {
    Tensor(uninitializedShape: shape + [channels.count]) { out in
      x.scalars.withUnsafeBufferPointer { xBuffer in
        let (xp, yp, width) = (xBuffer.baseAddress!, out.baseAddress!, channels.count)
        parallelFor(0..<rows, minimumChunk: max(1, (1 << 14) / c)) { range in
          for row in range {
            (yp + row * width).update(from: xp + row * c + channels.lowerBound, count: width)
          }
        }
      }
    }
  }
  return (slice(0..<split), slice(split..<c))
}
