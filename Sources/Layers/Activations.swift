// Parameter-free activations as forward/backward function pairs: ReLU, the fused residual add + ReLU, and
// dropout (F.relu, F.dropout).
import Tensors

// MARK: - ReLU

/// max(x, 0) elementwise (F.relu).
public func relu(_ x: Tensor) -> Tensor {
  Tensor(uninitializedShape: x.shape) { out in
    x.scalars.withUnsafeBufferPointer { xBuffer in
      let xp = xBuffer.baseAddress!, yp = out.baseAddress!
      parallelFor(0..<x.count, minimumChunk: RowGroups.elementwiseChunk) { range in
        for i in range { yp[i] = max(xp[i], 0) }
      }
    }
  }
}

/// dx = dy where the ReLU's output is positive, else 0; works from the output, so callers keep only y.
public func reluBackward(_ dy: Tensor, output: Tensor) -> Tensor {
  precondition(dy.shape == output.shape,
               "reluBackward: dy has shape \(dy.shape) but the ReLU output has shape \(output.shape).")
  return Tensor(uninitializedShape: dy.shape) { out in
    dy.scalars.withUnsafeBufferPointer { dyBuffer in
      output.scalars.withUnsafeBufferPointer { yBuffer in
        let dyp = dyBuffer.baseAddress!, yp = yBuffer.baseAddress!, dxp = out.baseAddress!
        parallelFor(0..<dy.count, minimumChunk: RowGroups.elementwiseChunk) { range in
          for i in range {
            let d = dyp[i]  // loaded unconditionally so the select vectorises
            dxp[i] = yp[i] > 0 ? d : 0
          }
        }
      }
    }
  }
}

/// relu(a + b) in one pass: a residual block's shortcut add and final ReLU.
///
/// Its backward is `reluBackward(dy, output: y)`, and that gradient goes to both `a` and `b`.
public func addReLU(_ a: Tensor, _ b: Tensor) -> Tensor {
  precondition(a.shape == b.shape, "addReLU of shapes \(a.shape) and \(b.shape).")
  return Tensor(uninitializedShape: a.shape) { out in
    a.scalars.withUnsafeBufferPointer { aBuffer in
      b.scalars.withUnsafeBufferPointer { bBuffer in
        let ap = aBuffer.baseAddress!, bp = bBuffer.baseAddress!, yp = out.baseAddress!
        parallelFor(0..<a.count, minimumChunk: RowGroups.elementwiseChunk) { range in
          for i in range { yp[i] = max(ap[i] + bp[i], 0) }
        }
      }
    }
  }
}

// MARK: - Dropout

/// Elements drawn from one derived generator in dropout, so the mask does not depend on the thread count.
private let dropoutBlock = 4096

/// Zeroes each element with probability `probability` and scales the kept ones by 1/(1 − p) (F.dropout).
///
/// Returns the output and the mask it applied (0 or 1/(1 − p) per element, shape of `x`). In inference mode,
/// or when p = 0, the output is `x` and the mask is empty (shape [0]), meaning identity. One draw from
/// `generator` seeds per-block streams, so the result is the same on any number of threads.
public func dropout<G: RandomNumberGenerator>(_ x: Tensor, probability: Float, mode: Mode,
                                              using generator: inout G) -> (Tensor, mask: Tensor) {
  precondition(probability >= 0 && probability <= 1, "dropout probability must lie in [0, 1], got \(probability).")
  if mode == .inference || probability == 0 { return (x, mask: Tensor.zeros([0])) }
  let seed = generator.next()
  let keptScale: Float = probability == 1 ? 0 : 1 / (1 - probability)
  let count = x.count
  let mask = Tensor(uninitializedShape: x.shape) { out in
    let mp = out.baseAddress!
    let blocks = (count + dropoutBlock - 1) / dropoutBlock
    parallelFor(0..<blocks, minimumChunk: max(1, RowGroups.elementwiseChunk / dropoutBlock)) { blockRange in
      for block in blockRange {
        var blockGenerator = SplitMix64.derived(seed, UInt64(block))
        for i in block * dropoutBlock ..< min((block + 1) * dropoutBlock, count) {
          mp[i] = blockGenerator.nextUniform() >= probability ? keptScale : 0
        }
      }
    }
  }
  return (multiplied(x, mask), mask: mask)
}

/// dx = dy ⊙ mask, with the mask `dropout` returned (an empty mask is the identity).
public func dropoutBackward(_ dy: Tensor, mask: Tensor) -> Tensor {
  if mask.count == 0 && mask.shape == [0] { return dy }
  precondition(dy.shape == mask.shape,
               "dropoutBackward: dy has shape \(dy.shape) but the mask has shape \(mask.shape).")
  return multiplied(dy, mask)
}

/// a ⊙ b on all cores.
private func multiplied(_ a: Tensor, _ b: Tensor) -> Tensor {
  Tensor(uninitializedShape: a.shape) { out in
    a.scalars.withUnsafeBufferPointer { aBuffer in
      b.scalars.withUnsafeBufferPointer { bBuffer in
        let ap = aBuffer.baseAddress!, bp = bBuffer.baseAddress!, yp = out.baseAddress!
        parallelFor(0..<a.count, minimumChunk: RowGroups.elementwiseChunk) { range in
          for i in range { yp[i] = ap[i] * bp[i] }
        }
      }
    }
  }
}
