// The safetensors format (huggingface/safetensors, docs "Format"): read F32, F16, BF16, F64 and I64 tensors,
// write F32 and I64.
//
// Layout: an 8-byte little-endian UInt64 N; N bytes of UTF-8 JSON
// `{"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ..., "__metadata__": {"k": "v"}}`
// (possibly padded with spaces); then the data, each tensor's row-major little-endian bytes at
// [begin, end) counted from the end of the header. Regions are contiguous and cover the data exactly.
import Foundation
import Support
import Tensors

/// A tensor element type as the safetensors header names it.
public enum SafeTensorsDType: String, Sendable, CaseIterable, Codable {
  case bool = "BOOL", u8 = "U8", i8 = "I8", f8E5M2 = "F8_E5M2", f8E4M3 = "F8_E4M3"
  case i16 = "I16", u16 = "U16", f16 = "F16", bf16 = "BF16"
  case i32 = "I32", u32 = "U32", f32 = "F32", f64 = "F64", i64 = "I64", u64 = "U64"

  /// Bytes per element.
  public var byteCount: Int {
    switch self {
    case .bool, .u8, .i8, .f8E5M2, .f8E4M3: 1
    case .i16, .u16, .f16, .bf16: 2
    case .i32, .u32, .f32: 4
    case .f64, .i64, .u64: 8
    }
  }

  /// Whether `SafeTensors` can load it into a Float32 `Tensor` (F16, BF16 and F64 are converted to F32).
  public var isLoadable: Bool { self == .f32 || self == .f16 || self == .bf16 || self == .f64 || self == .i64 }

  /// Whether a `StoredTensor` can hold it and `SafeTensors` write it: F32 and I64.
  public var isWritable: Bool { self == .f32 || self == .i64 }
}

/// A tensor with the element type it has (or will have) in the file.
///
/// I64 values are held as Float, exact up to 2^24 (`num_batches_tracked`-style counters). Tensors read from
/// F16, BF16 or F64 data are F32 here.
public struct StoredTensor: Sendable, Equatable {
  public var value: Tensor
  public var dtype: SafeTensorsDType

  public init(_ value: Tensor, dtype: SafeTensorsDType = .f32) {
    precondition(dtype.isWritable, "StoredTensor supports F32 and I64, got \(dtype.rawValue).")
    self.value = value
    self.dtype = dtype
  }
}

/// One header entry: where a tensor's bytes are, without the bytes.
public struct SafeTensorsEntry: Sendable, Equatable {
  public var name: String
  public var dtype: SafeTensorsDType
  public var shape: [Int]
  /// Byte range within the data section (after the header).
  public var dataOffsets: Range<Int>

  public init(name: String, dtype: SafeTensorsDType, shape: [Int], dataOffsets: Range<Int>) {
    self.name = name
    self.dtype = dtype
    self.shape = shape
    self.dataOffsets = dataOffsets
  }

  public var elementCount: Int { shape.product }
}

/// A parsed, validated safetensors header.
public struct SafeTensorsHeader: Sendable, Equatable {
  /// Entries in name order.
  public var entries: [SafeTensorsEntry]
  public var metadata: [String: String]
  /// 8 + the JSON length: where the data section starts in the file.
  public var dataStart: Int
  public var dataByteCount: Int { entries.map(\.dataOffsets.upperBound).max() ?? 0 }
}

/// The contents of a safetensors file: named tensors and a string-to-string metadata map.
public struct SafeTensors: Sendable, Equatable {
  public var tensors: [String: StoredTensor]
  public var metadata: [String: String]

  /// The key safetensors reserves for the metadata map.
  public static let metadataKey = "__metadata__"
  /// Headers larger than this are rejected as corrupt (the reference implementation's limit).
  public static let maximumHeaderByteCount = 100_000_000

  public init(tensors: [String: StoredTensor], metadata: [String: String] = [:]) {
    precondition(tensors[SafeTensors.metadataKey] == nil, "'\(SafeTensors.metadataKey)' cannot name a tensor.")
    self.tensors = tensors
    self.metadata = metadata
  }

  // MARK: - Reading

  /// Reads and validates a whole file.
  public init(contentsOf url: URL) throws {
    let data: Data
    do {
      data = try Data(contentsOf: url, options: .mappedIfSafe)
    } catch {
      throw CheckpointError.unreadableFile(path: url.path, reason: Self.reason(error))
    }
    try self.init(decoding: data, path: url.path)
  }

  /// Decodes a file's bytes; `path` only names the source in errors.
  public init(decoding data: Data, path: String) throws {
    let header = try SafeTensors.parseHeader(data, fileByteCount: data.count, path: path)
    var tensors: [String: StoredTensor] = [:]
    try data.withUnsafeBytes { (bytes: UnsafeRawBufferPointer) in
      for entry in header.entries {
        guard entry.dtype.isLoadable else {
          throw CheckpointError.unsupportedDType(path: path, name: entry.name, dtype: entry.dtype.rawValue)
        }
        let start = header.dataStart + entry.dataOffsets.lowerBound
        let source = UnsafeRawBufferPointer(rebasing: bytes[start..<(header.dataStart + entry.dataOffsets.upperBound)])
        let value = Tensor(uninitializedShape: entry.shape) { out in
          convertElements(source, dtype: entry.dtype, into: out)
        }
        tensors[entry.name] = StoredTensor(value, dtype: entry.dtype == .i64 ? .i64 : .f32)
      }
    }
    self.init(tensors: tensors, metadata: header.metadata)
  }

  /// Reads only the header of a file (no tensor data), validated against the file's size.
  public static func readHeader(of url: URL) throws -> SafeTensorsHeader {
    let path = url.path
    do {
      let handle = try FileHandle(forReadingFrom: url)
      defer { try? handle.close() }
      let fileByteCount = Int(try handle.seekToEnd())
      try handle.seek(toOffset: 0)
      let lengthBytes = try handle.read(upToCount: 8) ?? Data()
      var prefix = lengthBytes
      if lengthBytes.count == 8 {
        let length = lengthBytes.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        if length <= UInt64(maximumHeaderByteCount) {
          prefix += try handle.read(upToCount: Int(length)) ?? Data()
        }
      }
      return try parseHeader(prefix, fileByteCount: fileByteCount, path: path)
    } catch let error as CheckpointError {
      throw error
    } catch {
      throw CheckpointError.unreadableFile(path: path, reason: reason(error))
    }
  }

  /// Parses the header at the start of `bytes` and checks every entry against a file of `fileByteCount` bytes.
  static func parseHeader(_ bytes: Data, fileByteCount: Int, path: String) throws -> SafeTensorsHeader {
    guard bytes.count >= 8 else {
      throw CheckpointError.truncated(path: path, expectedBytes: 8, actualBytes: fileByteCount)
    }
    let length = bytes.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
    guard length <= UInt64(maximumHeaderByteCount) else {
      throw CheckpointError.corruptHeader(
        path: path,
        reason: "the header length field says \(length) bytes, more than the \(maximumHeaderByteCount) allowed")
    }
    let dataStart = 8 + Int(length)
    guard fileByteCount >= dataStart, bytes.count >= dataStart else {
      throw CheckpointError.truncated(path: path, expectedBytes: dataStart, actualBytes: fileByteCount)
    }
    let json = bytes.subdata(in: (bytes.startIndex + 8)..<(bytes.startIndex + dataStart))
    guard json.first == UInt8(ascii: "{") else {
      throw CheckpointError.corruptHeader(path: path, reason: "the header does not start with '{'")
    }
    let raw: RawHeader
    do {
      raw = try JSONDecoder().decode(RawHeader.self, from: json)
    } catch let error as DecodingError {
      throw CheckpointError.corruptHeader(path: path, reason: describe(error))
    } catch {
      throw CheckpointError.corruptHeader(path: path, reason: "the header is not valid JSON (\(reason(error)))")
    }

    var entries: [SafeTensorsEntry] = []
    for (name, field) in raw.entries {
      guard let dtype = SafeTensorsDType(rawValue: field.dtype) else {
        throw CheckpointError.corruptHeader(path: path, reason: "tensor '\(name)' has unknown dtype '\(field.dtype)'")
      }
      guard field.shape.allSatisfy({ $0 >= 0 }) else {
        throw CheckpointError.invalidTensor(path: path, name: name, reason: "has negative dimensions \(field.shape)")
      }
      guard field.dataOffsets.count == 2, field.dataOffsets[0] >= 0, field.dataOffsets[0] <= field.dataOffsets[1] else {
        throw CheckpointError.invalidTensor(
          path: path, name: name,
          reason: "has data_offsets \(field.dataOffsets), expected [begin, end] with begin ≤ end")
      }
      let offsets = field.dataOffsets[0]..<field.dataOffsets[1]
      // Overflow-checked (a hostile shape such as [2^62, 4] must not trap): the element count, each partial
      // product too (a `Tensor` multiplies its dimensions in order), then the bytes.
      var elementCount = 1, overflows = false
      for dimension in field.shape {
        let (product, overflow) = elementCount.multipliedReportingOverflow(by: dimension)
        elementCount = product
        overflows = overflows || overflow
      }
      let (expectedBytes, bytesOverflow) = elementCount.multipliedReportingOverflow(by: dtype.byteCount)
      guard !overflows, !bytesOverflow else {
        throw CheckpointError.invalidTensor(
          path: path, name: name, reason: "has shape \(field.shape), more \(dtype.rawValue) elements than can be addressed")
      }
      guard offsets.count == expectedBytes else {
        throw CheckpointError.invalidTensor(
          path: path, name: name,
          reason: "spans \(offsets.count) bytes, but \(dtype.rawValue) \(field.shape) needs \(expectedBytes)")
      }
      entries.append(SafeTensorsEntry(name: name, dtype: dtype, shape: field.shape, dataOffsets: offsets))
    }

    // Every byte of the data section belongs to exactly one tensor, as the reference reader demands.
    let byOffset = entries.sorted {
      ($0.dataOffsets.lowerBound, $0.dataOffsets.upperBound) < ($1.dataOffsets.lowerBound, $1.dataOffsets.upperBound)
    }
    var end = 0
    for entry in byOffset {
      guard entry.dataOffsets.lowerBound == end else {
        throw CheckpointError.invalidTensor(
          path: path, name: entry.name,
          reason: "starts at data byte \(entry.dataOffsets.lowerBound), but the previous tensor ends at \(end) "
            + "(overlap or gap)")
      }
      end = entry.dataOffsets.upperBound
    }
    // `end` comes from the header and may be near Int.max: compare by subtraction (dataStart ≤ fileByteCount).
    guard end <= fileByteCount - dataStart else {
      let (declared, overflow) = dataStart.addingReportingOverflow(end)
      throw CheckpointError.truncated(path: path, expectedBytes: overflow ? .max : declared,
                                      actualBytes: fileByteCount)
    }
    guard dataStart + end == fileByteCount else {
      throw CheckpointError.corruptHeader(
        path: path, reason: "the file has \(fileByteCount - dataStart - end) bytes after the last tensor's data")
    }
    return SafeTensorsHeader(entries: entries.sorted { $0.name < $1.name }, metadata: raw.metadata,
                             dataStart: dataStart)
  }

  // MARK: - Writing

  /// The file's bytes: tensors in name order, the header padded with spaces to a multiple of 8 bytes.
  public func encoded() -> Data {
    let names = tensors.keys.sorted()
    var header: [String: Any] = [:]
    var offset = 0
    for name in names {
      let tensor = tensors[name]!
      let byteCount = tensor.value.count * tensor.dtype.byteCount
      header[name] = ["dtype": tensor.dtype.rawValue, "shape": tensor.value.shape,
                      "data_offsets": [offset, offset + byteCount]] as [String: Any]
      offset += byteCount
    }
    if !metadata.isEmpty { header[SafeTensors.metadataKey] = metadata }
    // Cannot fail: the object holds only strings, integers, arrays and dictionaries.
    var json = try! JSONSerialization.data(withJSONObject: header, options: [.sortedKeys, .withoutEscapingSlashes])
    json.append(contentsOf: [UInt8](repeating: UInt8(ascii: " "), count: (8 - json.count % 8) % 8))

    var data = Data(capacity: 8 + json.count + offset)
    withUnsafeBytes(of: UInt64(json.count).littleEndian) { data.append(contentsOf: $0) }
    data.append(json)
    for name in names {
      let tensor = tensors[name]!
      switch tensor.dtype {
      case .f32:
        tensor.value.scalars.withUnsafeBytes { data.append(contentsOf: $0) }
      default:  // .i64
        for scalar in tensor.value.scalars {
          withUnsafeBytes(of: Int64(scalar.rounded()).littleEndian) { data.append(contentsOf: $0) }
        }
      }
    }
    return data
  }

  /// Writes the file atomically (`AtomicFile`: a synced temporary file renamed into place).
  public func write(to url: URL) throws {
    do {
      try AtomicFile.write(encoded(), to: url)
    } catch {
      throw CheckpointError.unwritableFile(path: url.path, reason: error.reason)
    }
  }

  /// Foundation's message without its final full stop (the caller's sentence continues).
  static func reason(_ error: Error) -> String {
    var text = (error as NSError).localizedDescription
    while text.hasSuffix(".") { text.removeLast() }
    return text
  }
}

// MARK: - Element conversion

/// Converts `out.count` little-endian elements of `dtype` at the start of `source` to Float32.
///
/// The engine runs on little-endian machines only (x86-64, arm64), so F32 bytes copy as they are. F16, BF16 and
/// F32 → Float is exact; F64 rounds to nearest like PyTorch's `tensor.float()`; integers are exact up to 2^24.
func convertElements(_ source: UnsafeRawBufferPointer, dtype: SafeTensorsDType,
                     into out: UnsafeMutableBufferPointer<Float>) {
  precondition(source.count >= out.count * dtype.byteCount,
               "Converting \(out.count) \(dtype.rawValue) elements needs \(out.count * dtype.byteCount) bytes, "
                 + "got \(source.count).")
  guard !out.isEmpty else { return }
  switch dtype {
  case .f32:
    UnsafeMutableRawBufferPointer(out).copyMemory(from: UnsafeRawBufferPointer(rebasing: source[0..<(4 * out.count)]))
  default:
    for i in 0..<out.count { out[i] = loadElement(source, at: i, dtype: dtype) }
  }
}

/// Element `index` of little-endian `dtype` data as Float (see `convertElements`); F32, F16, BF16, F64, I64, I32.
@inline(__always)
func loadElement(_ source: UnsafeRawBufferPointer, at index: Int, dtype: SafeTensorsDType) -> Float {
  switch dtype {
  case .f32:
    Float(bitPattern: UInt32(littleEndian: source.loadUnaligned(fromByteOffset: 4 * index, as: UInt32.self)))
  case .f16:
    floatFromHalfBits(UInt16(littleEndian: source.loadUnaligned(fromByteOffset: 2 * index, as: UInt16.self)))
  case .bf16:
    // bfloat16 is the top half of a Float32.
    Float(bitPattern: UInt32(UInt16(littleEndian: source.loadUnaligned(fromByteOffset: 2 * index, as: UInt16.self)))
      << 16)
  case .f64:
    Float(Double(bitPattern: UInt64(littleEndian: source.loadUnaligned(fromByteOffset: 8 * index, as: UInt64.self))))
  case .i64: Float(Int64(littleEndian: source.loadUnaligned(fromByteOffset: 8 * index, as: Int64.self)))
  case .i32: Float(Int32(littleEndian: source.loadUnaligned(fromByteOffset: 4 * index, as: Int32.self)))
  default: preconditionFailure("loadElement does not convert \(dtype.rawValue).")
  }
}

/// An IEEE 754 binary16 bit pattern as Float (exact: every half is a float).
func floatFromHalfBits(_ bits: UInt16) -> Float {
  let sign: UInt32 = UInt32(bits & 0x8000) << 16
  let exponent = UInt32(bits >> 10) & 0x1f
  let mantissa = UInt32(bits & 0x03ff)
  switch exponent {
  case 0x1f:  // infinity or NaN (payload kept)
    return Float(bitPattern: sign | 0x7f80_0000 | mantissa << 13)
  case 0:  // zero or subnormal: mantissa · 2^-24
    let magnitude = Float(mantissa) * 0x1p-24
    return sign == 0 ? magnitude : -magnitude
  default:  // rebias the exponent from 15 to 127
    return Float(bitPattern: sign | (exponent + 112) << 23 | mantissa << 13)
  }
}

// MARK: - Header decoding

/// The header JSON: tensor entries plus the optional `__metadata__` string map.
private struct RawHeader: Decodable {
  var entries: [String: RawEntry] = [:]
  var metadata: [String: String] = [:]

  struct Key: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
  }

  init(from decoder: Decoder) throws {
    let container = try decoder.container(keyedBy: Key.self)
    for key in container.allKeys {
      if key.stringValue == SafeTensors.metadataKey {
        metadata = try container.decode([String: String].self, forKey: key)
      } else {
        entries[key.stringValue] = try container.decode(RawEntry.self, forKey: key)
      }
    }
  }
}

private struct RawEntry: Decodable {
  var dtype: String
  var shape: [Int]
  var dataOffsets: [Int]

  enum CodingKeys: String, CodingKey {
    case dtype, shape
    case dataOffsets = "data_offsets"
  }
}

/// A one-line reason naming the JSON path, e.g. "at 'fc.weight.shape[1]': expected an integer".
private func describe(_ error: DecodingError) -> String {
  func location(_ path: [CodingKey]) -> String {
    guard !path.isEmpty else { return "the top level" }
    let joined = path.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
    return "'\(joined.dropFirst())'"
  }
  switch error {
  case let .keyNotFound(key, context):
    return "\(location(context.codingPath)) has no '\(key.stringValue)' field"
  case let .typeMismatch(type, context):
    let expected = type == [String: String].self ? "a string-to-string map" : "\(type)"
    return "at \(location(context.codingPath)): expected \(expected)"
  case let .valueNotFound(type, context):
    return "at \(location(context.codingPath)): expected \(type), found null"
  case let .dataCorrupted(context):
    return context.codingPath.isEmpty
      ? "the header is not valid JSON"
      : "at \(location(context.codingPath)): \(context.debugDescription)"
  @unknown default:
    return "the header does not decode"
  }
}
