// Channel dropout on NHWC activations (PyTorch `nn.Dropout2d`, F.dropout2d on a 4-D input): the dropout before
// mmseg's `conv_seg` (BaseDecodeHead.cls_seg).
import Tensors

/// `nn.Dropout2d(p)` on `[n, h, w, c]`: each (sample, channel) plane is zeroed with probability p and kept planes are
/// scaled by 1/(1 − p); the identity in `.inference` mode or when p = 0.
///
/// The mask is `[n, c]` (0 or 1/(1 − p) per plane), drawn from the caller's generator (n·c draws, sample-major,
/// channel-minor: `nextUniform() < p` drops), so a seeded run is reproducible; backward multiplies by the same
/// mask. An explicit mask can be passed instead (`forward(_:mask:)`, `mask(keeping:)`), e.g. to replay PyTorch's.
public struct Dropout2D: Sendable {
  public let probability: Float

  public init(probability: Float) {
    precondition(probability >= 0 && probability < 1,
                 "Dropout2D probability must lie in [0, 1), got \(probability).")
    self.probability = probability
  }

  /// The multiplier of a kept plane, 1/(1 − p).
  public var keptScale: Float { 1 / (1 - probability) }

  /// A fresh `[n, c]` mask: each entry 0 with probability p, else 1/(1 − p).
  public func drawMask<G: RandomNumberGenerator>(samples n: Int, channels c: Int, using generator: inout G) -> Tensor {
    let scale = keptScale
    return Tensor(shape: [n, c], scalars: (0..<(n * c)).map { _ in generator.nextUniform() < probability ? 0 : scale })
  }

  /// The `[n, c]` mask that keeps the planes where `keep` is 1 (and drops those where it is 0), scaled by 1/(1 − p).
  public func mask(keeping keep: Tensor) -> Tensor {
    precondition(keep.rank == 2 && keep.scalars.allSatisfy { $0 == 0 || $0 == 1 },
                 "Dropout2D.mask(keeping:) expects an [n, c] tensor of 0s and 1s, got shape \(keep.shape).")
    return keptScale * keep
  }

  /// The output and the mask applied (shape [0], the identity, in inference mode or when p = 0).
  public func forward<G: RandomNumberGenerator>(_ x: Tensor, mode: Mode,
                                                using generator: inout G) -> (Tensor, mask: Tensor) {
    precondition(x.rank == 4, "Dropout2D expects NHWC input, got shape \(x.shape).")
    if mode == .inference || probability == 0 { return (x, mask: Tensor.zeros([0])) }
    let mask = drawMask(samples: x.shape[0], channels: x.shape[3], using: &generator)
    return (forward(x, mask: mask), mask: mask)
  }

  /// x ⊙ mask broadcast over h and w; `mask` is `[n, c]`, or shape [0] for the identity.
  public func forward(_ x: Tensor, mask: Tensor) -> Tensor {
    Dropout2D.scalePlanes(x, by: mask)
  }

  /// ∂L/∂x = dy ⊙ mask (the mask `forward` returned).
  public func backward(_ dy: Tensor, mask: Tensor) -> Tensor {
    Dropout2D.scalePlanes(dy, by: mask)
  }

  /// y[i, :, :, j] = x[i, :, :, j] · mask[i, j], on all cores.
  private static func scalePlanes(_ x: Tensor, by mask: Tensor) -> Tensor {
    if mask.shape == [0] { return x }
    precondition(x.rank == 4 && mask.shape == [x.shape[0], x.shape[3]],
                 "Dropout2D: a mask of shape \(mask.shape) does not fit the input \(x.shape) (needs [n, c]).")
    let (n, pixels, c) = (x.shape[0], x.shape[1] * x.shape[2], x.shape[3])
    return Tensor(uninitializedShape: x.shape) { out in
      x.scalars.withUnsafeBufferPointer { xBuffer in
        mask.scalars.withUnsafeBufferPointer { maskBuffer in
          let (xp, mp, yp) = (xBuffer.baseAddress!, maskBuffer.baseAddress!, out.baseAddress!)
          parallelFor(0..<(n * pixels), minimumChunk: max(1, RowGroups.elementwiseChunk / max(c, 1))) { rows in
            for row in rows {
              let planeScales = mp + (row / pixels) * c
              let (source, target) = (xp + row * c, yp + row * c)
              for channel in 0..<c { target[channel] = source[channel] * planeScales[channel] }
            }
          }
        }
      }
    }
  }
}
