// The on-disk feature cache every evaluator shares (issue 6 item 1): one file per (key, layer), float32 row-major,
// memory-mapped read-only, checksummed, and written atomically (temporary file, fsync, rename), so an interrupted
// extraction never leaves a file that looks complete and a corrupt one is detected, reported and rebuilt.
import Foundation
import Glibc
import Tensors

/// The cache file layout (little-endian):
///
///     0   8 bytes  magic "SSBFEAT\0"
///     8   UInt32   format version (1)
///     12  UInt32   key JSON byte count j
///     16  UInt64   rows
///     24  UInt64   columns
///     32  j bytes  the key's canonical JSON, then zero padding to the next multiple of 64
///     d   rows · columns Float32, row-major (d = dataOffset, 64-byte aligned)
///     e   UInt64   XXH64 (seed 0) of bytes [0, e): header, padding and data
///
/// The file size must be exactly e + 8, so a truncated file or one with trailing bytes is caught before hashing.
public enum FeatureCacheFormat {
  public static let magic: [UInt8] = Array("SSBFEAT".utf8) + [0]
  public static let version: UInt32 = 1
  public static let fixedHeaderBytes = 32
  public static let checksumBytes = 8
  public static let fileExtension = "features"

  /// Offset of the first float: after the fixed header and the key JSON, rounded up to 64 bytes.
  public static func dataOffset(keyByteCount: Int) -> Int { (fixedHeaderBytes + keyByteCount + 63) / 64 * 64 }

  /// The header and padding, `dataOffset` bytes.
  static func header(keyJSON: [UInt8], rows: Int, columns: Int) -> [UInt8] {
    var bytes = magic
    func append<T: FixedWidthInteger>(_ value: T) { withUnsafeBytes(of: value.littleEndian) { bytes += $0 } }
    append(version)
    append(UInt32(keyJSON.count))
    append(UInt64(rows))
    append(UInt64(columns))
    bytes += keyJSON
    bytes += [UInt8](repeating: 0, count: dataOffset(keyByteCount: keyJSON.count) - bytes.count)
    return bytes
  }
}

/// A valid cache file, mapped.
public struct CachedFeatures: Sendable {
  /// The key JSON stored in the header.
  public var keyJSON: [UInt8]
  /// The features, viewing the read-only mapping (which lives as long as any copy of the matrix).
  public var matrix: FeatureMatrix
  /// The stored XXH64 of the file.
  public var checksum: UInt64
}

/// A directory of feature-cache files. Lookups (`matrix(for:rows:columns:)`) verify each file and delete and report an
/// invalid one; writers (`makeWriter`) produce complete files atomically. Safe to use from several threads and
/// processes: a file appears under its final name only once it is complete and synced.
public final class FeatureCache: Sendable {
  public let directory: URL
  /// Verify the XXH64 checksum of every file when it is opened (reads the whole file once).
  public let verifiesChecksums: Bool
  private let warn: @Sendable (FeatureCacheWarning) -> Void

  /// Opens (creating if needed) the cache at `directory`; removes temporary files left by dead processes.
  ///
  /// - Parameter warn: called for each invalid file found by a lookup (by default printed to standard error).
  public init(directory: URL, verifiesChecksums: Bool = true,
              warn: @escaping @Sendable (FeatureCacheWarning) -> Void = { warning in
                FileHandle.standardError.write(Data((warning.description + "\n").utf8))
              }) throws {
    precondition(UInt32(1).littleEndian == 1, "The feature cache format is little-endian; this host is not.")
    self.directory = directory
    self.verifiesChecksums = verifiesChecksums
    self.warn = warn
    var isDirectory: ObjCBool = false
    if FileManager.default.fileExists(atPath: directory.path, isDirectory: &isDirectory) {
      guard isDirectory.boolValue else {
        throw FeatureCacheError.unusableDirectory(path: directory.path, reason: "it is a file")
      }
    } else {
      do {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
      } catch {
        throw FeatureCacheError.unusableDirectory(path: directory.path, reason: "\(error.localizedDescription)")
      }
    }
    removeAbandonedTemporaryFiles()
  }

  /// Where the file of `key` lives.
  public func url(for key: FeatureCacheKey) -> URL { directory.appendingPathComponent(key.fileName) }

  /// The cached features of `key` if a valid file with `rows × columns` features exists; nil on a miss.
  ///
  /// A file that exists but is invalid — truncated, wrong size, failed checksum, another key, other dimensions,
  /// other format version — is reported through `warn`, deleted, and treated as a miss.
  public func matrix(for key: FeatureCacheKey, rows: Int, columns: Int) -> FeatureMatrix? {
    let url = url(for: key)
    guard FileManager.default.fileExists(atPath: url.path) else { return nil }
    do {
      let cached = try Self.read(url, verifyingChecksum: verifiesChecksums)
      guard cached.keyJSON == key.canonicalJSON else {
        throw FeatureCacheError.invalidFile(path: url.path, problem: "holds the features of another key")
      }
      guard cached.matrix.rows == rows && cached.matrix.columns == columns else {
        throw FeatureCacheError.invalidFile(
          path: url.path,
          problem: "has \(cached.matrix.rows) × \(cached.matrix.columns) features where \(rows) × \(columns) "
            + "were expected")
      }
      return cached.matrix
    } catch let FeatureCacheError.invalidFile(path, problem) {
      warn(FeatureCacheWarning(path: path, problem: problem))
    } catch {
      warn(FeatureCacheWarning(path: url.path, problem: "cannot be read (\(error))"))
    }
    try? FileManager.default.removeItem(at: url)
    return nil
  }

  /// A writer for the features of `key`; the file appears under `url(for: key)` when the writer commits.
  public func makeWriter(for key: FeatureCacheKey, rows: Int, columns: Int) throws -> FeatureCacheWriter {
    try FeatureCacheWriter(url: url(for: key), keyJSON: key.canonicalJSON, rows: rows, columns: columns)
  }

  /// Maps and validates one cache file: magic, version, exact size for its rows and columns, and (unless
  /// `verifyingChecksum` is false) the XXH64 checksum. Throws `FeatureCacheError.invalidFile` naming the problem.
  public static func read(_ url: URL, verifyingChecksum: Bool = true) throws -> CachedFeatures {
    let mapping = try MappedFile(url)
    let size = mapping.length
    let path = url.path
    func invalid(_ problem: String) -> FeatureCacheError { .invalidFile(path: path, problem: problem) }
    guard size >= FeatureCacheFormat.fixedHeaderBytes + FeatureCacheFormat.checksumBytes else {
      throw invalid("is truncated: \(size) bytes, shorter than the header")
    }
    let bytes = UnsafeRawBufferPointer(start: mapping.base, count: size)
    guard Array(bytes[0..<8]) == FeatureCacheFormat.magic else {
      throw invalid("does not start with the feature cache magic \"SSBFEAT\"")
    }
    let version = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 8, as: UInt32.self))
    guard version == FeatureCacheFormat.version else {
      throw invalid("has format version \(version); this build reads version \(FeatureCacheFormat.version)")
    }
    let keyCount = Int(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 12, as: UInt32.self)))
    let rows = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 16, as: UInt64.self))
    let columns = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 24, as: UInt64.self))
    let dataOffset = FeatureCacheFormat.dataOffset(keyByteCount: keyCount)
    let (scalars, overflow) = rows.multipliedReportingOverflow(by: columns)
    guard !overflow, scalars <= UInt64(Int.max / 8), dataOffset <= size else {
      throw invalid("has an impossible header (\(rows) × \(columns) features, \(keyCount)-byte key)")
    }
    let dataEnd = dataOffset + Int(scalars) * MemoryLayout<Float>.size
    let expectedSize = dataEnd + FeatureCacheFormat.checksumBytes
    guard size == expectedSize else {
      let what = size < expectedSize ? "is truncated" : "has trailing bytes"
      throw invalid("\(what): \(size) bytes where \(rows) × \(columns) features need \(expectedSize)")
    }
    let stored = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: dataEnd, as: UInt64.self))
    if verifyingChecksum {
      let computed = XXHash64.digest(UnsafeRawBufferPointer(rebasing: bytes[0..<dataEnd]))
      guard computed == stored else {
        throw invalid("fails its checksum (stored \(hex(stored)), computed \(hex(computed))): the data is corrupt")
      }
    }
    let pointer = (mapping.base + dataOffset).assumingMemoryBound(to: Float.self)
    return CachedFeatures(keyJSON: Array(bytes[32..<(32 + keyCount)]),
                          matrix: FeatureMatrix(rows: Int(rows), columns: Int(columns), pointer: pointer,
                                                owner: mapping),
                          checksum: stored)
  }

  /// Deletes `.*.tmp` files whose writing process (the pid in their name) no longer runs.
  private func removeAbandonedTemporaryFiles() {
    guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory.path) else { return }
    for name in names where name.hasPrefix(".") && name.hasSuffix(".tmp") {
      let parts = name.split(separator: ".")
      // ".<file name>.<pid>.<random>.tmp": the pid is the third field from the end.
      guard parts.count >= 4, let pid = Int32(parts[parts.count - 3]) else { continue }
      if kill(pid, 0) != 0 && errno == ESRCH {
        try? FileManager.default.removeItem(at: directory.appendingPathComponent(name))
      }
    }
  }
}

func hex(_ value: UInt64) -> String {
  let digits = String(value, radix: 16)
  return String(repeating: "0", count: 16 - digits.count) + digits
}

/// A whole file mapped read-only (`mmap(PROT_READ, MAP_PRIVATE)`), unmapped when released.
final class MappedFile: @unchecked Sendable {
  // @unchecked: the mapping is read-only and never changes after init (a raw pointer: the compiler cannot check it).
  let base: UnsafeRawPointer
  let length: Int
  private let mappedLength: Int

  init(_ url: URL) throws {
    let descriptor = open(url.path, O_RDONLY | O_CLOEXEC)
    guard descriptor >= 0 else {
      throw FeatureCacheError.invalidFile(path: url.path, problem: "cannot be opened (\(String(cString: strerror(errno))))")
    }
    defer { close(descriptor) }
    var status = stat()
    guard fstat(descriptor, &status) == 0 else {
      throw FeatureCacheError.invalidFile(path: url.path, problem: "cannot be examined (\(String(cString: strerror(errno))))")
    }
    length = Int(status.st_size)
    mappedLength = max(length, 1)  // mmap refuses length 0; an empty file fails validation anyway
    if length == 0 {
      base = UnsafeRawPointer(UnsafeMutableRawPointer.allocate(byteCount: 1, alignment: 64))
      isAllocated = true
      return
    }
    let address = mmap(nil, mappedLength, PROT_READ, MAP_PRIVATE, descriptor, 0)
    guard let address, address != MAP_FAILED else {
      throw FeatureCacheError.invalidFile(path: url.path, problem: "cannot be mapped (\(String(cString: strerror(errno))))")
    }
    base = UnsafeRawPointer(address)
    isAllocated = false
  }

  private let isAllocated: Bool

  deinit {
    if isAllocated {
      UnsafeMutableRawPointer(mutating: base).deallocate()
    } else {
      munmap(UnsafeMutableRawPointer(mutating: base), mappedLength)
    }
  }
}
