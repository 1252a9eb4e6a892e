// A dense, row-major Float32 matrix of per-image features [rows, columns]: what feature extraction produces and
// what every evaluator (SVMs, probes on cached features, kNN) consumes. Its scalars live either in an array or in
// a read-only memory-mapped cache file, so a matrix never forces a second copy of an ImageNet-sized feature set.
// In Tensors beside WeightedKNN, which takes it and which pretraining's kNN monitor uses too.
import Foundation

/// Row-major Float32 features: row i is image i, `columns` values in PyTorch's flattened NCHW order.
public struct FeatureMatrix: @unchecked Sendable {
  // @unchecked: the storage is immutable after creation (arrays are never mutated; mappings are read-only). A mapping
  // is reached through a raw pointer, which is never Sendable, so the compiler cannot check this; no lock is needed.
  public let rows: Int
  public let columns: Int
  private let storage: Storage
  /// Index of this matrix's first scalar inside `storage` (a row range of a larger matrix shares its storage).
  private let offset: Int

  /// Owns its scalars. `scalars.count == rows × columns`.
  public init(rows: Int, columns: Int, scalars: [Float]) {
    precondition(rows >= 0 && columns >= 0 && scalars.count == rows * columns,
                 "FeatureMatrix [\(rows), \(columns)] needs \(rows * columns) scalars, got \(scalars.count).")
    self.rows = rows
    self.columns = columns
    self.storage = ArrayStorage(scalars)
    self.offset = 0
  }

  /// Views `rows × columns` scalars at `pointer`, kept alive by `owner` (e.g. a memory mapping).
  public init(rows: Int, columns: Int, pointer: UnsafePointer<Float>, owner: AnyObject) {
    precondition(rows >= 0 && columns >= 0, "FeatureMatrix shape [\(rows), \(columns)] must not be negative.")
    self.rows = rows
    self.columns = columns
    self.storage = BorrowedStorage(pointer: pointer, owner: owner)
    self.offset = 0
  }

  private init(rows: Int, columns: Int, storage: Storage, offset: Int) {
    self.rows = rows
    self.columns = columns
    self.storage = storage
    self.offset = offset
  }

  /// All `rows × columns` scalars, row-major.
  public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
    try storage.withBase { base in try body(UnsafeBufferPointer(start: base + offset, count: rows * columns)) }
  }

  public subscript(row: Int, column: Int) -> Float {
    precondition(row >= 0 && row < rows && column >= 0 && column < columns,
                 "FeatureMatrix [\(rows), \(columns)] has no element (\(row), \(column)).")
    return withUnsafeBufferPointer { $0[row * columns + column] }
  }

  /// Rows `range` as a matrix sharing this one's storage (no copy): e.g. trainval vs test of one extraction.
  public func rows(_ range: Range<Int>) -> FeatureMatrix {
    precondition(range.lowerBound >= 0 && range.upperBound <= rows,
                 "Row range \(range) is outside FeatureMatrix [\(rows), \(columns)].")
    return FeatureMatrix(rows: range.count, columns: columns, storage: storage,
                         offset: offset + range.lowerBound * columns)
  }

  /// Row `row` copied into an array (for tests and small inspections, not hot loops).
  public func row(_ row: Int) -> [Float] {
    precondition(row >= 0 && row < rows, "FeatureMatrix [\(rows), \(columns)] has no row \(row).")
    return withUnsafeBufferPointer { Array($0[(row * columns)..<((row + 1) * columns)]) }
  }

  /// The first (row, column) holding NaN or ±infinity, or nil when every value is finite.
  public func firstNonFinite() -> (row: Int, column: Int)? {
    withUnsafeBufferPointer { buffer in
      guard let index = buffer.firstIndex(where: { !$0.isFinite }) else { return nil }
      return (index / max(columns, 1), index % max(columns, 1))
    }
  }
}

// MARK: - Storage

private protocol Storage: AnyObject {
  func withBase<R>(_ body: (UnsafePointer<Float>) throws -> R) rethrows -> R
}

private final class ArrayStorage: Storage {
  let scalars: [Float]
  init(_ scalars: [Float]) { self.scalars = scalars }
  func withBase<R>(_ body: (UnsafePointer<Float>) throws -> R) rethrows -> R {
    try scalars.withUnsafeBufferPointer { buffer in
      // An empty array may have no base address; any non-nil pointer serves for zero rows.
      try body(buffer.baseAddress ?? UnsafePointer(bitPattern: MemoryLayout<Float>.alignment)!)
    }
  }
}

private final class BorrowedStorage: Storage {
  let pointer: UnsafePointer<Float>
  let owner: AnyObject
  init(pointer: UnsafePointer<Float>, owner: AnyObject) { self.pointer = pointer; self.owner = owner }
  func withBase<R>(_ body: (UnsafePointer<Float>) throws -> R) rethrows -> R { try body(pointer) }
}
