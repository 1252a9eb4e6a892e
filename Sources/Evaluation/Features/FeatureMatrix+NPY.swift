// Feature matrices as NumPy .npy files (format version 1.0, numpy/lib/format.py), for `--export-features DIR`:
// other tools (scikit-learn, the reference scripts) read them with `np.load` or `np.load(mmap_mode='r')`.
import Foundation
import Support
import Tensors

extension FeatureMatrix {
  /// The .npy header of a little-endian float32 C-order [rows, columns] array: magic, version 1.0, header length,
  /// the dict padded with spaces and a newline so the data starts at a multiple of 64 bytes.
  public static func npyHeader(rows: Int, columns: Int) -> [UInt8] {
    let dictionary = "{'descr': '<f4', 'fortran_order': False, 'shape': (\(rows), \(columns)), }"
    let prefixBytes = 10  // magic (6) + version (2) + header length (2)
    let unpadded = prefixBytes + dictionary.utf8.count + 1
    let padded = (unpadded + 63) / 64 * 64
    let text = dictionary + String(repeating: " ", count: padded - unpadded) + "\n"
    var bytes: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0]
    let length = UInt16(text.utf8.count)
    bytes += [UInt8(length & 0xFF), UInt8(length >> 8)]
    bytes += Array(text.utf8)
    return bytes
  }

  /// Writes the matrix to `url` as .npy (float32, little-endian, C order), through a temporary file renamed into
  /// place (`AtomicFile`), so a partial export never has the final name.
  public func writeNPY(to url: URL) throws {
    precondition(UInt32(1).littleEndian == 1, "The .npy export writes little-endian floats; this host is not.")
    do {
      try AtomicFile.write(to: url) { handle in
        try handle.write(contentsOf: Self.npyHeader(rows: rows, columns: columns))
        try withUnsafeBufferPointer { buffer in
          let raw = UnsafeRawBufferPointer(buffer)
          var start = 0
          let chunk = 16 << 20
          while start < raw.count {
            let end = min(raw.count, start + chunk)
            let piece = UnsafeMutableRawPointer(mutating: raw.baseAddress! + start)
            try handle.write(contentsOf: Data(bytesNoCopy: piece, count: end - start, deallocator: .none))
            start = end
          }
        }
      }
    } catch let error as SupportError {
      throw FeatureCacheError.writeFailed(path: url.path, reason: error.reason)
    } catch {
      throw FeatureCacheError.writeFailed(path: url.path, reason: "\(error.localizedDescription)")
    }
  }
}
