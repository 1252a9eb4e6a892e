// Content digests of a dataset's image files, for the fingerprints that key the feature cache (issue 14 item 6).
//
// Why the bytes and not (size, mtime, inode): a fingerprint of names and sizes let a devkit whose JPEGs were all
// rewritten with other bytes of the same length reuse the old features. Per-file (size, mtime, inode) would notice
// that too, but also calls every copied or restored dataset new (a re-extraction that takes minutes to hours), and
// mtime can be set back. SHA-256 of the contents keys on exactly what the features are computed from: OpenSSL hashes
// about 1.4 GB/s per core here (`openssl speed -evp sha256`, 16 KiB blocks), so VOC2007's ~0.9 GB of JPEGs cost
// about 0.4 s on 2 cores when cached, next to minutes of extraction or SVM training.
import Foundation
import Support
import Tensors

/// The SHA-256 of every file in `urls`, in order (32 bytes each), hashed on `Threads.count` threads.
/// Throws `DatasetError.missingFile` (with `missingHint`) for a file that does not exist and
/// `DatasetError.unreadableFile` for one that cannot be read.
public func contentDigests(of urls: [URL], missingHint: String) throws(DatasetError) -> [[UInt8]] {
  var digests = [[UInt8]](repeating: [], count: urls.count)
  try digests.withUnsafeMutableBufferPointer { (digests) throws(DatasetError) in
    let output = digests
    try runWorkQueue(count: urls.count, workers: parallelForEachWorkers(urls.count)) {
      (index, _) throws(DatasetError) in
      output[index] = try contentDigest(of: urls[index], missingHint: missingHint)
    }
  }
  return digests
}

/// One file's SHA-256, read 1 MiB at a time.
func contentDigest(of url: URL, missingHint: String) throws(DatasetError) -> [UInt8] {
  do {
    return try SHA256.digest(ofFileAt: url, chunkBytes: 1 << 20)
  } catch {
    if !FileManager.default.fileExists(atPath: url.path) { throw .missingFile(path: url.path, hint: missingHint) }
    throw DatasetError(error)
  }
}
