// The one way the project publishes a file: write a hidden temporary next to it (same folder, so the same file
// system), fsync it, rename(2) it over the final name, fsync the folder. A reader sees the old file or the whole new
// one, never a part; a crash, a thrown error or a full disk leave no file under the final name (the temporary is
// removed on every failure path we see; only a crash can leave a `.name.<pid>.<nonce>.tmp` behind).
import Foundation
import Glibc

/// Writes files atomically. Errors are `SupportError.unwritableFile` naming the final file; errors thrown by a
/// caller's closure are passed on unchanged (the temporary is removed either way).
public enum AtomicFile {
  /// Writes `data` to `url`, replacing an existing file only once the new one is complete and synced.
  public static func write(_ data: Data, to url: URL) throws(SupportError) {
    let writer = try Writer(url)
    try writer.write(data)
    try writer.commit()
  }

  /// Hands `body` a FileHandle on the temporary, then publishes it at `url` (unless `body` throws).
  public static func write(to url: URL, _ body: (FileHandle) throws -> Void) throws {
    let writer = try Writer(url)
    let handle = FileHandle(fileDescriptor: writer.descriptor, closeOnDealloc: false)
    try body(handle)
    try writer.commit()
  }

  /// For libraries that create the file themselves (ZIPFoundation's `Archive` refuses an existing file): hands `body`
  /// the path of a temporary that does not exist yet (its name reserved by an exclusive create, then removed), and
  /// publishes what `body` wrote there once it returns. `body` must close what it opened.
  public static func write(to url: URL, creatingFileAt body: (URL) throws -> Void) throws {
    let writer = try Writer(url)
    writer.removeTemporaryFile()
    try body(writer.temporaryURL)
    try writer.commit(reopening: true)
  }

  /// A file being written: bytes go to the temporary until `commit()`; `discard()` (or releasing the writer
  /// uncommitted) deletes it. Used from one thread.
  public final class Writer {
    /// The final name (absent, or the old file, until `commit`).
    public let url: URL
    public let temporaryURL: URL
    /// The temporary's descriptor, open for writing until `commit` or `discard`.
    public private(set) var descriptor: Int32
    private var isFinished = false

    /// Creates the temporary `.<name>.<pid>.<random>.tmp` in `url`'s folder (exclusive, mode 0644).
    public init(_ url: URL) throws(SupportError) {
      self.url = url
      let nonce = String(UInt64.random(in: 0...UInt64.max), radix: 16)
      temporaryURL = url.deletingLastPathComponent()
        .appendingPathComponent(".\(url.lastPathComponent).\(getpid()).\(nonce).tmp")
      descriptor = open(temporaryURL.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
      guard descriptor >= 0 else {
        let code = errno
        var isDirectory: ObjCBool = false
        let folder = url.deletingLastPathComponent().path
        let reason = code == ENOENT && !FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory)
          ? "the folder \(folder) does not exist" : "cannot create a temporary file beside it (\(errnoReason(code)))"
        throw .unwritableFile(path: url.path, reason: reason)
      }
    }

    deinit { discard() }

    /// Appends `bytes` to the temporary.
    public func write(_ bytes: UnsafeRawBufferPointer) throws(SupportError) {
      precondition(!isFinished, "Writing to an AtomicFile.Writer that was committed or discarded.")
      guard var next = bytes.baseAddress else { return }
      var remaining = bytes.count
      while remaining > 0 {
        let written = Glibc.write(descriptor, next, remaining)
        if written < 0 {
          if errno == EINTR { continue }
          // Not discarded here: the caller decides (releasing the writer discards it).
          throw .unwritableFile(path: url.path, reason: "write failed: \(errnoReason(errno))")
        }
        next += written
        remaining -= written
      }
    }

    /// Appends `data` to the temporary.
    public func write(_ data: Data) throws(SupportError) {
      // Data.withUnsafeBytes rethrows untyped errors: carry ours out by hand.
      var failure: SupportError?
      data.withUnsafeBytes { bytes in
        do throws(SupportError) { try write(bytes) } catch { failure = error }
      }
      if let failure { throw failure }
    }

    /// Syncs and closes the temporary, renames it to `url` and syncs the folder. `reopening`: the temporary was
    /// (re)written through its path by someone else, so sync it through a fresh descriptor.
    public func commit(reopening: Bool = false) throws(SupportError) {
      precondition(!isFinished, "Committing an AtomicFile.Writer twice.")
      if reopening {
        if descriptor >= 0 { Glibc.close(descriptor) }
        descriptor = open(temporaryURL.path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw fail("reopen of the temporary file") }
      }
      guard fsync(descriptor) == 0 else { throw fail("fsync") }
      let closed = Glibc.close(descriptor)
      descriptor = -1
      guard closed == 0 else { throw fail("close") }
      guard rename(temporaryURL.path, url.path) == 0 else { throw fail("rename over it") }
      isFinished = true
      // Make the rename itself durable.
      let folder = open(url.deletingLastPathComponent().path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
      if folder >= 0 {
        _ = fsync(folder)
        Glibc.close(folder)
      }
    }

    /// Closes and deletes the temporary file but keeps the writer, for `write(to:creatingFileAt:)`.
    func removeTemporaryFile() {
      if descriptor >= 0 {
        Glibc.close(descriptor)
        descriptor = -1
      }
      unlink(temporaryURL.path)
    }

    /// Closes and deletes the temporary (nothing appears under `url`). Idempotent; called on release.
    public func discard() {
      if descriptor >= 0 {
        Glibc.close(descriptor)
        descriptor = -1
      }
      if !isFinished {
        unlink(temporaryURL.path)
        isFinished = true
      }
    }

    /// Discards the temporary and returns the error for `operation`, with errno's text.
    private func fail(_ operation: String) -> SupportError {
      let reason = "\(operation) failed: \(errnoReason(errno))"
      discard()
      return .unwritableFile(path: url.path, reason: reason)
    }
  }
}
