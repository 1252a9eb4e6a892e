// Elementwise arithmetic and reductions used outside the hot kernels (tests, optimisers, losses).

extension Tensor {
  public static func + (lhs: Tensor, rhs: Tensor) -> Tensor { lhs.zipped(with: rhs, +) }
  public static func - (lhs: Tensor, rhs: Tensor) -> Tensor { lhs.zipped(with: rhs, -) }
  public static func * (lhs: Tensor, rhs: Tensor) -> Tensor { lhs.zipped(with: rhs, *) }
  public static func * (scale: Float, tensor: Tensor) -> Tensor { tensor.map { scale * $0 } }

  /// Adds `rhs` into `lhs` in place (gradient accumulation); runs on all cores for large tensors.
  public static func += (lhs: inout Tensor, rhs: Tensor) {
    precondition(lhs.shape == rhs.shape, "Cannot add shape \(rhs.shape) into shape \(lhs.shape).")
    let count = lhs.count
    lhs.scalars.withUnsafeMutableBufferPointer { l in
      rhs.scalars.withUnsafeBufferPointer { r in
        let lp = l.baseAddress!, rp = r.baseAddress!
        parallelFor(0..<count, minimumChunk: 1 << 15) { range in
          for i in range { lp[i] += rp[i] }
        }
      }
    }
  }

  public func map(_ transform: (Float) -> Float) -> Tensor {
    Tensor(shape: shape, scalars: scalars.map(transform))
  }

  public func zipped(with other: Tensor, _ combine: (Float, Float) -> Float) -> Tensor {
    precondition(shape == other.shape, "Elementwise operation on shapes \(shape) and \(other.shape).")
    return Tensor(shape: shape, scalars: zip(scalars, other.scalars).map(combine))
  }

  /// Σ x, accumulated in Double.
  public func sum() -> Double { scalars.reduce(0.0) { $0 + Double($1) } }

  /// Σ self ⊙ other, accumulated in Double (the scalar loss of a gradient check).
  public func dot(_ other: Tensor) -> Double {
    precondition(shape == other.shape, "dot of shapes \(shape) and \(other.shape).")
    var total = 0.0
    for i in 0..<count { total += Double(scalars[i]) * Double(other.scalars[i]) }
    return total
  }

  /// Largest |self − other| / max(|other|, floor), the relative error used by parity tests.
  public func maxRelativeError(to reference: Tensor, floor: Float = 1e-3) -> Float {
    precondition(shape == reference.shape, "Comparing shape \(shape) with reference shape \(reference.shape).")
    var worst: Float = 0
    for i in 0..<count {
      let error = abs(scalars[i] - reference.scalars[i]) / max(abs(reference.scalars[i]), floor)
      worst = max(worst, error)
    }
    return worst
  }

  /// max |self − reference| / max |reference|: the error relative to the reference's scale, used by the PyTorch
  /// parity tests and benchmarks (robust where individual reference values are near zero).
  public func scaledError(to reference: Tensor) -> Float {
    precondition(shape == reference.shape, "Comparing shape \(shape) with reference shape \(reference.shape).")
    var worst: Float = 0, scale: Float = 0
    for i in 0..<count {
      worst = max(worst, abs(scalars[i] - reference.scalars[i]))
      scale = max(scale, abs(reference.scalars[i]))
    }
    return worst / max(scale, 1e-12)
  }
}
