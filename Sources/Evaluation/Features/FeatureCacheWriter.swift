// Streams one feature matrix into the cache, row block by row block, and publishes it atomically: the rows go to
// a hidden temporary file; `commit` appends the checksum, fsyncs, renames it to its final name and fsyncs the
// directory. Until then (a crash, a thrown error, a released writer) no file with the final name exists.
import Foundation
import Glibc
import Tensors

/// Writes the `rows × columns` features of one cache key. Used from one thread.
public final class FeatureCacheWriter {
  /// The final file name (absent until `commit`).
  public let url: URL
  public let rows: Int
  public let columns: Int
  /// Rows appended so far.
  public private(set) var rowsWritten = 0
  let temporaryURL: URL
  private var descriptor: Int32
  private var hash = XXHash64()
  private var isFinished = false

  init(url: URL, keyJSON: [UInt8], rows: Int, columns: Int) throws {
    precondition(rows >= 0 && columns >= 0, "A feature cache file holds rows, columns ≥ 0, got \(rows) × \(columns).")
    self.url = url
    self.rows = rows
    self.columns = columns
    let nonce = String(UInt64.random(in: 0...UInt64.max), radix: 16)
    temporaryURL = url.deletingLastPathComponent()
      .appendingPathComponent(".\(url.lastPathComponent).\(getpid()).\(nonce).tmp")
    descriptor = open(temporaryURL.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
    guard descriptor >= 0 else {
      throw FeatureCacheError.writeFailed(path: temporaryURL.path, reason: String(cString: strerror(errno)))
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
      guard fsync(descriptor) == 0 else { throw failure("fsync") }
      guard close(descriptor) == 0 else { descriptor = -1; throw failure("close") }
      descriptor = -1
      guard rename(temporaryURL.path, url.path) == 0 else { throw failure("rename to \(url.lastPathComponent)") }
      isFinished = true
    } catch {
      discard()
      throw error
    }
    // Make the rename itself durable.
    let directory = open(url.deletingLastPathComponent().path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    if directory >= 0 {
      _ = fsync(directory)
      close(directory)
    }
  }

  /// Closes and deletes the temporary file (nothing appears in the cache). Idempotent; called on release.
  public func discard() {
    if descriptor >= 0 {
      close(descriptor)
      descriptor = -1
    }
    if !isFinished {
      unlink(temporaryURL.path)
      isFinished = true
    }
  }

  private func failure(_ operation: String) -> FeatureCacheError {
    .writeFailed(path: temporaryURL.path, reason: "\(operation) failed: \(String(cString: strerror(errno)))")
  }

  private func write(_ bytes: UnsafeRawBufferPointer, hashing: Bool = true) throws {
    if hashing { hash.update(bytes) }
    guard var next = bytes.baseAddress else { return }
    var remaining = bytes.count
    while remaining > 0 {
      let written = Glibc.write(descriptor, next, remaining)
      if written < 0 {
        if errno == EINTR { continue }
        throw failure("write")
      }
      next += written
      remaining -= written
    }
  }
}
