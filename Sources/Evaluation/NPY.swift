// NumPy .npy files (format versions 1.0 and 2.0, numpy/lib/format.py): little-endian float32, float64, int32 and
// int64 arrays in C order. Used for `--export-features` (features and labels other tools read) and for the FAIR
// benchmark's low-shot sample files (`train_targets_sample{s}_k{k}.npy`, int32 [5011, 20]).
import Support
import Foundation
import Tensors

/// The element types we read and write, with their `descr` strings.
public enum NPYDType: String, Sendable, CaseIterable {
  case float32 = "<f4"
  case float64 = "<f8"
  case int32 = "<i4"
  case int64 = "<i8"

  public var byteCount: Int {
    switch self {
    case .float32, .int32: 4
    case .float64, .int64: 8
    }
  }
}

/// An array's scalars, by element type.
public enum NPYData: Sendable, Equatable {
  case float32([Float])
  case float64([Double])
  case int32([Int32])
  case int64([Int64])

  public var dtype: NPYDType {
    switch self {
    case .float32: .float32
    case .float64: .float64
    case .int32: .int32
    case .int64: .int64
    }
  }

  public var count: Int {
    switch self {
    case .float32(let values): values.count
    case .float64(let values): values.count
    case .int32(let values): values.count
    case .int64(let values): values.count
    }
  }
}

/// A C-order array read from or written to a .npy file.
public struct NPYArray: Sendable, Equatable {
  public var shape: [Int]
  public var data: NPYData

  public init(shape: [Int], data: NPYData) {
    precondition(shape.allSatisfy { $0 >= 0 } && shape.reduce(1, *) == data.count,
                 "An NPY array of shape \(shape) needs \(shape.reduce(1, *)) scalars, got \(data.count).")
    self.shape = shape
    self.data = data
  }

  /// The values as Int64 when the array holds integers (int32 or int64), else nil.
  public var integers: [Int64]? {
    switch data {
    case .int32(let values): values.map(Int64.init)
    case .int64(let values): values
    default: nil
    }
  }

  /// The values as Double (any element type).
  public var doubles: [Double] {
    switch data {
    case .float32(let values): values.map(Double.init)
    case .float64(let values): values
    case .int32(let values): values.map(Double.init)
    case .int64(let values): values.map(Double.init)
    }
  }
}

/// What is wrong with a .npy file; every case names the file.
public enum NPYError: Error, Equatable, CustomStringConvertible, LocalizedError {
  case unreadable(path: String, reason: String)
  case notNPY(path: String)
  case unsupportedVersion(path: String, major: Int, minor: Int)
  case malformedHeader(path: String, reason: String)
  case unsupportedDType(path: String, descr: String)
  case fortranOrder(path: String)
  case truncated(path: String, expectedBytes: Int, actualBytes: Int)
  case wrongShape(path: String, expected: String, actual: [Int])
  case wrongDType(path: String, expected: String, actual: String)

  public var description: String {
    switch self {
    case .unreadable(let path, let reason): "Cannot read \(path): \(reason)."
    case .notNPY(let path): "\(path) is not a NumPy .npy file (no \\x93NUMPY magic); write it with numpy.save."
    case .unsupportedVersion(let path, let major, let minor):
      "\(path) is .npy format version \(major).\(minor); versions 1.0 and 2.0 are supported."
    case .malformedHeader(let path, let reason): "\(path) has a malformed .npy header: \(reason)."
    case .unsupportedDType(let path, let descr):
      "\(path) holds dtype '\(descr)'; supported are little-endian float32, float64, int32 and int64 "
        + "(convert with array.astype(np.float32) or np.int32)."
    case .fortranOrder(let path):
      "\(path) is in Fortran order; save a C-order array (np.ascontiguousarray) instead."
    case .truncated(let path, let expected, let actual):
      "\(path) is truncated: its header promises \(expected) bytes of data, the file holds \(actual)."
    case .wrongShape(let path, let expected, let actual):
      "\(path) has shape \(actual), expected \(expected)."
    case .wrongDType(let path, let expected, let actual):
      "\(path) holds \(actual), expected \(expected)."
    }
  }

  public var errorDescription: String? { description }
}

public enum NPY {
  static let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]  // "\x93NUMPY"

  // MARK: Reading

  /// Reads a whole .npy file.
  public static func read(_ url: URL) throws -> NPYArray {
    let bytes: Data
    do { bytes = try Data(contentsOf: url) } catch {
      throw NPYError.unreadable(path: url.path, reason: error.localizedDescription)
    }
    return try decode(bytes, path: url.path)
  }

  /// Parses .npy bytes; `path` names them in errors.
  public static func decode(_ bytes: Data, path: String = "<memory>") throws -> NPYArray {
    let raw = [UInt8](bytes)
    guard raw.count >= 10, Array(raw[0..<6]) == magic else { throw NPYError.notNPY(path: path) }
    let (major, minor) = (Int(raw[6]), Int(raw[7]))
    let headerLength: Int
    let headerStart: Int
    switch major {
    case 1:
      headerLength = Int(raw[8]) | Int(raw[9]) << 8
      headerStart = 10
    case 2, 3:
      guard major == 2, raw.count >= 12 else {
        throw NPYError.unsupportedVersion(path: path, major: major, minor: minor)
      }
      headerLength = Int(raw[8]) | Int(raw[9]) << 8 | Int(raw[10]) << 16 | Int(raw[11]) << 24
      headerStart = 12
    default:
      throw NPYError.unsupportedVersion(path: path, major: major, minor: minor)
    }
    guard headerStart + headerLength <= raw.count else {
      throw NPYError.malformedHeader(path: path, reason: "the header runs past the end of the file")
    }
    guard let header = String(bytes: raw[headerStart..<(headerStart + headerLength)], encoding: .isoLatin1) else {
      throw NPYError.malformedHeader(path: path, reason: "the header is not text")
    }
    let (descr, fortran, shape) = try parseHeader(header, path: path)
    guard let dtype = NPYDType(rawValue: descr == "|i4" ? "<i4" : descr) else {
      throw NPYError.unsupportedDType(path: path, descr: descr)
    }
    if fortran && shape.count > 1 && shape.filter({ $0 > 1 }).count > 1 { throw NPYError.fortranOrder(path: path) }
    let count = shape.reduce(1, *)
    let dataStart = headerStart + headerLength
    let expected = count * dtype.byteCount
    guard raw.count - dataStart >= expected else {
      throw NPYError.truncated(path: path, expectedBytes: expected, actualBytes: raw.count - dataStart)
    }
    let data: NPYData = raw.withUnsafeBytes { buffer in
      let base = buffer.baseAddress! + dataStart
      switch dtype {
      case .float32:
        return .float32((0..<count).map { Float(bitPattern: base.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self).littleEndian) })
      case .float64:
        return .float64((0..<count).map { Double(bitPattern: base.loadUnaligned(fromByteOffset: $0 * 8, as: UInt64.self).littleEndian) })
      case .int32:
        return .int32((0..<count).map { Int32(littleEndian: base.loadUnaligned(fromByteOffset: $0 * 4, as: Int32.self)) })
      case .int64:
        return .int64((0..<count).map { Int64(littleEndian: base.loadUnaligned(fromByteOffset: $0 * 8, as: Int64.self)) })
      }
    }
    return NPYArray(shape: shape, data: data)
  }

  /// The `descr`, `fortran_order` and `shape` entries of a header dict such as
  /// `{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }`.
  static func parseHeader(_ header: String, path: String) throws -> (String, Bool, [Int]) {
    func value(of key: String) throws -> Substring {
      guard let keyRange = header.range(of: "'\(key)'") ?? header.range(of: "\"\(key)\""),
            let colon = header[keyRange.upperBound...].firstIndex(of: ":")
      else { throw NPYError.malformedHeader(path: path, reason: "no '\(key)' entry in \(header.debugDescription)") }
      return header[header.index(after: colon)...].drop { $0 == " " }
    }
    let descrText = try value(of: "descr")
    guard let quote = descrText.first, quote == "'" || quote == "\"",
          let end = descrText.dropFirst().firstIndex(of: quote)
    else { throw NPYError.malformedHeader(path: path, reason: "'descr' is not a string") }
    let descr = String(descrText[descrText.index(after: descrText.startIndex)..<end])
    let fortranText = try value(of: "fortran_order")
    let fortran: Bool
    if fortranText.hasPrefix("True") { fortran = true } else if fortranText.hasPrefix("False") { fortran = false } else {
      throw NPYError.malformedHeader(path: path, reason: "'fortran_order' is neither True nor False")
    }
    let shapeText = try value(of: "shape")
    guard shapeText.first == "(", let close = shapeText.firstIndex(of: ")") else {
      throw NPYError.malformedHeader(path: path, reason: "'shape' is not a tuple")
    }
    var shape: [Int] = []
    for field in shapeText[shapeText.index(after: shapeText.startIndex)..<close].split(separator: ",") {
      let trimmed = field.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: "L", with: "")
      if trimmed.isEmpty { continue }
      guard let dimension = Int(trimmed), dimension >= 0 else {
        throw NPYError.malformedHeader(path: path, reason: "shape entry '\(trimmed)' is not a size")
      }
      shape.append(dimension)
    }
    return (descr, fortran, shape)
  }

  // MARK: Writing

  /// The header bytes (magic, version, length, dict padded with spaces and a newline to a multiple of 64 bytes):
  /// plus NumPy's growth room for the first axis; version 1.0 when the dict fits in 65,535 bytes, else 2.0, as `numpy.lib.format.write_array` does.
  public static func header(dtype: NPYDType, shape: [Int]) -> [UInt8] {
    let shapeText = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
    var dict = "{'descr': '\(dtype.rawValue)', 'fortran_order': False, 'shape': \(shapeText), }"
    // NumPy leaves room for the first axis to grow to 21 digits (`GROWTH_AXIS_MAX_DIGITS`) in place.
    if let first = shape.first { dict += String(repeating: " ", count: max(0, 21 - String(first).count)) }
    for (major, lengthBytes) in [(1, 2), (2, 4)] {
      let prefix = 6 + 2 + lengthBytes
      let unpadded = prefix + dict.utf8.count + 1
      let total = (unpadded + 63) / 64 * 64
      let length = total - prefix
      if lengthBytes == 2 && length > 65_535 { continue }
      var bytes = magic + [UInt8(major), 0]
      for index in 0..<lengthBytes { bytes.append(UInt8((length >> (8 * index)) & 0xFF)) }
      bytes += Array(dict.utf8) + [UInt8](repeating: 0x20, count: total - unpadded) + [0x0A]
      return bytes
    }
    fatalError("unreachable: a version 2.0 header holds any dict")
  }

  /// Writes `array` to `url` (atomically).
  public static func write(_ array: NPYArray, to url: URL) throws {
    var bytes = Data(header(dtype: array.data.dtype, shape: array.shape))
    switch array.data {
    case .float32(let values): values.withUnsafeBytes { bytes.append(contentsOf: $0) }
    case .float64(let values): values.withUnsafeBytes { bytes.append(contentsOf: $0) }
    case .int32(let values): values.withUnsafeBytes { bytes.append(contentsOf: $0) }
    case .int64(let values): values.withUnsafeBytes { bytes.append(contentsOf: $0) }
    }
    do { try AtomicFile.write(bytes, to: url) } catch {
      throw NPYError.unreadable(path: url.path, reason: "cannot write: \(error)")
    }
  }

  /// Writes a feature matrix as float32 [rows, columns] without copying its scalars into an array first.
  public static func write(_ matrix: FeatureMatrix, to url: URL) throws {
    let temporary = url.appendingPathExtension("partial")
    guard FileManager.default.createFile(atPath: temporary.path, contents: nil),
          let handle = FileHandle(forWritingAtPath: temporary.path) else {
      throw NPYError.unreadable(path: url.path, reason: "cannot create the file")
    }
    do {
      try handle.write(contentsOf: Data(header(dtype: .float32, shape: [matrix.rows, matrix.columns])))
      try matrix.withUnsafeBufferPointer { buffer in
        let chunk = 1 << 22  // scalars per write (16 MiB)
        var start = 0
        while start < buffer.count {
          let end = min(start + chunk, buffer.count)
          try handle.write(contentsOf: Data(buffer: UnsafeBufferPointer(rebasing: buffer[start..<end])))
          start = end
        }
      }
      try handle.close()
      _ = try? FileManager.default.removeItem(at: url)
      try FileManager.default.moveItem(at: temporary, to: url)
    } catch {
      try? handle.close()
      throw NPYError.unreadable(path: url.path, reason: "cannot write: \(error.localizedDescription)")
    }
  }
}
