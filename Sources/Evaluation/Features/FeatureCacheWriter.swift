// Streams one feature matrix into the cache, row block by row block, and publishes it atomically
// (`AtomicFile.Writer`): the rows go to a hidden temporary file; `commit` appends the checksum, fsyncs, renames it to
// its final name and fsyncs the directory. Until then (a crash, a thrown error, a released writer) no file with the
// final name exists.
import Foundation
import Support
import Tensors

/// Writes the `rows × columns` features of one cache key. Used from one thread.
public final class FeatureCacheWriter {
  /// The final file name (absent until `commit`).
  public let url: URL
  public let rows: Int
  public let columns: Int
  /// Rows appended so far.
  public private(set) var rowsWritten = 0
  private let file: AtomicFile.Writer
  private var hash = XXHash64()
  private var isFinished = false

  var temporaryURL: URL { file.temporaryURL }

  init(url: URL, keyJSON: [UInt8], rows: Int, columns: Int) throws {
    precondition(rows >= 0 && columns >= 0, "A feature cache file holds rows, columns ≥ 0, got \(rows) × \(columns).")
    self.url = url
    self.rows = rows
    self.columns = columns
    do {
      file = try AtomicFile.Writer(url)
    } catch {
      throw FeatureCacheError.writeFailed(path: url.path, reason: error.reason)
    }
    let header = FeatureCacheFormat.header(keyJSON: keyJSON, rows: rows, columns: columns)
    do {
      try header.withUnsafeBytes { try write($0) }
    } catch {
      discard()
      throw error
    }
  }

  deinit { discard() }

  /// Appends whole rows (`scalars.count` a multiple of `columns`), in order.
  public func append(_ scalars: UnsafeBufferPointer<Float>) throws {
    precondition(!isFinished, "Appending to a feature cache writer that was committed or discarded.")
    precondition(columns > 0 ? scalars.count % columns == 0 : scalars.isEmpty,
                 "Appending \(scalars.count) scalars to a feature file of \(columns) columns: not whole rows.")
    let newRows = columns > 0 ? scalars.count / columns : 0
    precondition(rowsWritten + newRows <= rows,
                 "Appending \(newRows) rows to a feature file holding \(rowsWritten) of \(rows) rows.")
    try write(UnsafeRawBufferPointer(scalars))
    rowsWritten += newRows
  }

  /// Appends a [n, columns] tensor's rows.
  public func append(_ rowsTensor: Tensor) throws {
    precondition(rowsTensor.rank == 2 && rowsTensor.shape[1] == columns,
                 "Appending a tensor of shape \(rowsTensor.shape) to a feature file of \(columns) columns.")
    try rowsTensor.scalars.withUnsafeBufferPointer { try append($0) }
  }

  /// Writes the checksum, syncs, and renames the file to `url`. Every row must have been appended.
  public func commit() throws {
    precondition(!isFinished, "Committing a feature cache writer twice.")
    precondition(rowsWritten == rows, "Committing a feature file with \(rowsWritten) of its \(rows) rows.")
    do {
      var checksum = hash.digest.littleEndian
      try withUnsafeBytes(of: &checksum) { try write($0, hashing: false) }
      do {
        try file.commit()
      } catch {
        throw FeatureCacheError.writeFailed(path: url.path, reason: error.reason)
      }
      isFinished = true
    } catch {
      discard()
      throw error
    }
  }

  /// Closes and deletes the temporary file (nothing appears in the cache). Idempotent; called on release.
  public func discard() {
    if !isFinished {
      file.discard()
      isFinished = true
    }
  }

  private func write(_ bytes: UnsafeRawBufferPointer, hashing: Bool = true) throws {
    if hashing { hash.update(bytes) }
    do {
      try file.write(bytes)
    } catch {
      throw FeatureCacheError.writeFailed(path: url.path, reason: error.reason)
    }
  }
}
