// A dense row-major Float32 array with a shape: the one value type the engine passes around.

/// A dense, row-major Float32 array.
///
/// Activations inside the engine are **NHWC** (`[n, h, w, c]`); weights and everything exported
/// (features, checkpoints) use PyTorch's layouts, converted at the boundary (see `Tensor+Layout.swift`).
/// `scalars` is an ordinary array, so copies are copy-on-write; kernels take unsafe buffer pointers once.
public struct Tensor: Sendable, Equatable {
  public var shape: [Int]
  public var scalars: [Float]  // count == shape.product

  public init(shape: [Int], scalars: [Float]) {
    precondition(shape.allSatisfy { $0 >= 0 }, "Tensor shape \(shape) has a negative dimension.")
    precondition(shape.product == scalars.count,
                 "Tensor shape \(shape) needs \(shape.product) scalars, got \(scalars.count).")
    self.shape = shape
    self.scalars = scalars
  }

  /// A tensor filled with `value`.
  public init(repeating value: Float, shape: [Int]) {
    self.init(shape: shape, scalars: [Float](repeating: value, count: shape.product))
  }

  public static func zeros(_ shape: [Int]) -> Tensor { Tensor(repeating: 0, shape: shape) }

  /// A tensor whose scalars are written by `initializer` before anyone reads them (no zero fill).
  /// `initializer` must write every one of the `shape.product` scalars.
  public init(uninitializedShape shape: [Int],
              _ initializer: (UnsafeMutableBufferPointer<Float>) throws -> Void) rethrows {
    let count = shape.product
    self.shape = shape
    self.scalars = try [Float](unsafeUninitializedCapacity: count) { buffer, initializedCount in
      try initializer(buffer)
      initializedCount = count
    }
  }

  public var count: Int { scalars.count }
  public var rank: Int { shape.count }

  /// The same scalars under another shape with the same number of elements.
  public func reshaped(_ newShape: [Int]) -> Tensor { Tensor(shape: newShape, scalars: scalars) }

  public subscript(index: [Int]) -> Float {
    get { scalars[flatIndex(index)] }
    set { scalars[flatIndex(index)] = newValue }
  }

  private func flatIndex(_ index: [Int]) -> Int {
    precondition(index.count == shape.count, "Index \(index) has rank \(index.count); tensor shape is \(shape).")
    var flat = 0
    for (i, dimension) in zip(index, shape) {
      precondition(i >= 0 && i < dimension, "Index \(index) is out of bounds for shape \(shape).")
      flat = flat * dimension + i
    }
    return flat
  }
}

extension Array where Element == Int {
  /// The product of the dimensions (1 for a scalar's empty shape).
  @inlinable public var product: Int { reduce(1, *) }
}
