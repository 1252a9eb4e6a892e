// Fully connected layer y = x·Wᵀ + b (torch.nn.Linear), one GEMM per call.
import Foundation
import Tensors

/// How a `Linear` layer's weight and bias are drawn.
public enum LinearInitialization: Sendable {
  /// `nn.Linear.reset_parameters`: kaiming_uniform(a = √5) ⇒ weight and bias ~ U(±1/√inFeatures).
  case pytorchDefault
  /// Weight ~ N(0, std²), bias 0 (MMSelfSup's linear heads use std 0.01).
  case normal(std: Float)
}

/// A fully connected layer: `[n, inFeatures]` → `[n, outFeatures]`, weight `[out, in]` as in PyTorch.
public final class Linear: Layer {
  public let inFeatures: Int
  public let outFeatures: Int
  public let weight: Parameter  // [out, in]
  public let bias: Parameter?  // [out]

  /// The input, for dW = dyᵀ·x.
  public struct Cache {
    let x: Tensor  // [n, in]
  }

  /// Draws the weight, then the bias, from `generator` (the order `nn.Linear.reset_parameters` uses).
  public init<G: RandomNumberGenerator>(inFeatures: Int, outFeatures: Int, hasBias: Bool = true,
                                        initialization: LinearInitialization = .pytorchDefault,
                                        using generator: inout G) {
    precondition(inFeatures > 0 && outFeatures > 0,
                 "Linear needs positive feature counts, got in \(inFeatures), out \(outFeatures).")
    self.inFeatures = inFeatures
    self.outFeatures = outFeatures
    switch initialization {
    case .pytorchDefault:
      // kaiming_uniform: bound = gain·√(3 / fan_in) with gain = √(2 / (1 + a²)) = √(1/3) for a = √5.
      let bound = 1 / Float(inFeatures).squareRoot()
      weight = Parameter(.randomUniform([outFeatures, inFeatures], low: -bound, high: bound, using: &generator))
      bias = hasBias
        ? Parameter(.randomUniform([outFeatures], low: -bound, high: bound, using: &generator)) : nil
    case .normal(let std):
      weight = Parameter(.randomNormal([outFeatures, inFeatures], std: std, using: &generator))
      bias = hasBias ? Parameter(.zeros([outFeatures])) : nil
    }
  }

  public var namedParameters: [NamedParameter] {
    var named: [NamedParameter] = [(name: "weight", parameter: weight)]
    if let bias { named.append((name: "bias", parameter: bias)) }
    return named
  }

  public func forward(_ x: Tensor, mode: Mode) -> (Tensor, Cache) {
    precondition(x.rank == 2 && x.shape[1] == inFeatures,
                 "Linear(\(inFeatures) → \(outFeatures)) expects an input of shape [n, \(inFeatures)], "
                   + "got \(x.shape).")
    let n = x.shape[0]
    let (inSize, outSize) = (inFeatures, outFeatures)
    let y = Tensor(uninitializedShape: [n, outSize]) { out in  // [n, out]
      let yp = out.baseAddress!
      // With a bias, y starts as the bias rows and the GEMM adds x·Wᵀ (beta = 1); without, beta = 0.
      if let bias {
        bias.value.scalars.withUnsafeBufferPointer { biasBuffer in
          let bp = biasBuffer.baseAddress!
          parallelFor(0..<n, minimumChunk: max(1, RowGroups.elementwiseChunk / outSize)) { rows in
            for row in rows { (yp + row * outSize).update(from: bp, count: outSize) }
          }
        }
      }
      x.scalars.withUnsafeBufferPointer { xBuffer in
        weight.value.scalars.withUnsafeBufferPointer { wBuffer in
          gemm(m: n, n: outSize, k: inSize, xBuffer.baseAddress!, wBuffer.baseAddress!, transposeB: true,
               into: yp, beta: bias == nil ? 0 : 1)
        }
      }
    }
    return (y, Cache(x: x))
  }

  /// dW += dyᵀ·x, db += Σ_rows dy (trainable parameters only); returns dx = dy·W.
  public func backward(_ dy: Tensor, _ cache: Cache) -> Tensor {
    let n = cache.x.shape[0]
    precondition(dy.shape == [n, outFeatures],
                 "Linear backward: dy has shape \(dy.shape), expected [\(n), \(outFeatures)] "
                   + "for input \(cache.x.shape).")
    let (inSize, outSize) = (inFeatures, outFeatures)
    return dy.scalars.withUnsafeBufferPointer { dyBuffer in
      let dyp = dyBuffer.baseAddress!
      if weight.isTrainable {
        cache.x.scalars.withUnsafeBufferPointer { xBuffer in
          weight.grad.scalars.withUnsafeMutableBufferPointer { gradBuffer in
            gemm(m: outSize, n: inSize, k: n, dyp, transposeA: true, xBuffer.baseAddress!,
                 into: gradBuffer.baseAddress!, beta: 1)
          }
        }
      }
      if let bias, bias.isTrainable {
        bias.grad.scalars.withUnsafeMutableBufferPointer { gradBuffer in
          let gp = gradBuffer.baseAddress!
          // Split over output columns so each thread owns its slice of the bias gradient.
          parallelFor(0..<outSize, minimumChunk: max(1, RowGroups.elementwiseChunk / max(n, 1))) { columns in
            for row in 0..<n {
              let dyr = dyp + row * outSize
              for j in columns { gp[j] += dyr[j] }
            }
          }
        }
      }
      return Tensor(uninitializedShape: [n, inSize]) { out in  // [n, in]
        weight.value.scalars.withUnsafeBufferPointer { wBuffer in
          gemm(m: n, n: inSize, k: outSize, dyp, wBuffer.baseAddress!, into: out.baseAddress!)
        }
      }
    }
  }
}
