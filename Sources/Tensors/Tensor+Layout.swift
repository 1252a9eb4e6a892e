// Conversions between the engine's NHWC activations / OHWI conv weights and PyTorch's NCHW / OIHW.

extension Tensor {
  /// Reorders axes: `result.shape[i] == shape[order[i]]` (numpy `transpose(order)`).
  public func permuted(_ order: [Int]) -> Tensor {
    precondition(order.sorted() == Array(0..<rank), "Permutation \(order) is not a permutation of 0..<\(rank).")
    let newShape = order.map { shape[$0] }
    var oldStrides = [Int](repeating: 1, count: rank)
    for axis in stride(from: rank - 2, through: 0, by: -1) { oldStrides[axis] = oldStrides[axis + 1] * shape[axis + 1] }
    let strides = order.map { oldStrides[$0] }
    return Tensor(uninitializedShape: newShape) { out in
      scalars.withUnsafeBufferPointer { source in
        var index = [Int](repeating: 0, count: rank)
        var sourceOffset = 0
        for flat in 0..<out.count {
          out[flat] = source[sourceOffset]
          // Increment the multi-index (last axis fastest) and the matching source offset.
          var axis = rank - 1
          while axis >= 0 {
            index[axis] += 1
            sourceOffset += strides[axis]
            if index[axis] < newShape[axis] { break }
            sourceOffset -= strides[axis] * newShape[axis]
            index[axis] = 0
            axis -= 1
          }
        }
      }
    }
  }

  /// NCHW → NHWC.
  public func nchwToNHWC() -> Tensor {
    precondition(rank == 4, "nchwToNHWC expects a rank-4 tensor, got shape \(shape).")
    return permuted([0, 2, 3, 1])
  }

  /// NHWC → NCHW (PyTorch's order, for anything exported).
  public func nhwcToNCHW() -> Tensor {
    precondition(rank == 4, "nhwcToNCHW expects a rank-4 tensor, got shape \(shape).")
    return permuted([0, 3, 1, 2])
  }
}
