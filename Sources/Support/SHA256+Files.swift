// Hashing files: a whole file read into memory and hashed in the same pass (a checkpoint is read once, not once to
// load and again to hash), and a file hashed without keeping it.
import Foundation
import Glibc

/// Reads the whole file at `url` and its SHA-256 in one pass: `chunkBytes` at a time straight into the returned
/// buffer, each chunk hashed right after it is read (while it is still in cache).
///
/// Throws `SupportError.unreadableFile` naming the file when it is missing, a directory or fails to read.
public func readFileHashing(_ url: URL,
                            chunkBytes: Int = 4 << 20) throws(SupportError) -> (data: Data, sha256Hex: String) {
  precondition(chunkBytes > 0, "readFileHashing needs a positive chunk size, got \(chunkBytes).")
  let file = try OpenFile(url)
  defer { file.close() }
  // One byte more than the size fstat reports, so the read that finds the end of the file needs no growth;
  // a file that grows while we read it is still read whole.
  var capacity = file.size + 1
  guard var base = malloc(capacity) else {
    throw .unreadableFile(path: url.path, reason: "cannot allocate \(capacity) bytes to read it into")
  }
  var count = 0
  var hash = SHA256()
  do throws(SupportError) {
    while true {
      if count == capacity {
        capacity *= 2
        guard let grown = realloc(base, capacity) else {
          throw .unreadableFile(path: url.path, reason: "cannot allocate \(capacity) bytes to read it into")
        }
        base = grown
      }
      let read = try file.read(into: base + count, count: min(chunkBytes, capacity - count))
      if read == 0 { break }
      hash.update(UnsafeRawBufferPointer(start: base + count, count: read))
      count += read
    }
  } catch {
    free(base)
    throw error
  }
  let data = Data(bytesNoCopy: base, count: count, deallocator: .free)
  return (data, SHA256.hex(hash.finalize()))
}

extension SHA256 {
  /// The lowercase hex SHA-256 of the file at `url`, read in `chunkBytes` pieces (the file is not kept).
  public static func hexDigest(ofFileAt url: URL, chunkBytes: Int = 4 << 20) throws(SupportError) -> String {
    hex(try digest(ofFileAt: url, chunkBytes: chunkBytes))
  }

  /// The SHA-256 (32 bytes) of the file at `url`, read in `chunkBytes` pieces (the file is not kept).
  public static func digest(ofFileAt url: URL, chunkBytes: Int = 4 << 20) throws(SupportError) -> [UInt8] {
    precondition(chunkBytes > 0, "digest(ofFileAt:) needs a positive chunk size, got \(chunkBytes).")
    let file = try OpenFile(url)
    defer { file.close() }
    let buffer = UnsafeMutableRawPointer.allocate(byteCount: chunkBytes, alignment: 64)
    defer { buffer.deallocate() }
    var hash = SHA256()
    while true {
      let read = try file.read(into: buffer, count: chunkBytes)
      if read == 0 { break }
      hash.update(UnsafeRawBufferPointer(start: buffer, count: read))
    }
    return hash.finalize()
  }
}

/// A regular file opened for reading, with the size `fstat` reported at opening.
private struct OpenFile {
  let url: URL
  let descriptor: Int32
  let size: Int

  init(_ url: URL) throws(SupportError) {
    self.url = url
    descriptor = open(url.path, O_RDONLY | O_CLOEXEC)
    guard descriptor >= 0 else {
      let code = errno
      throw .unreadableFile(path: url.path, reason: code == ENOENT ? "the file does not exist" : errnoReason(code))
    }
    var status = stat()
    guard fstat(descriptor, &status) == 0 else {
      let reason = errnoReason(errno)
      Glibc.close(descriptor)
      throw .unreadableFile(path: url.path, reason: reason)
    }
    guard status.st_mode & S_IFMT == S_IFREG else {
      Glibc.close(descriptor)
      let what = status.st_mode & S_IFMT == S_IFDIR ? "a directory" : "not a regular file"
      throw .unreadableFile(path: url.path, reason: "it is \(what), expected a file")
    }
    size = Int(status.st_size)
  }

  /// Reads up to `count` bytes into `target`; 0 at the end of the file. Retries interrupted reads.
  func read(into target: UnsafeMutableRawPointer, count: Int) throws(SupportError) -> Int {
    while true {
      let read = Glibc.read(descriptor, target, count)
      if read >= 0 { return read }
      if errno == EINTR { continue }
      throw .unreadableFile(path: url.path, reason: errnoReason(errno))
    }
  }

  func close() { Glibc.close(descriptor) }
}

/// strerror's text for `code`.
func errnoReason(_ code: Int32) -> String { String(cString: strerror(code)) }
