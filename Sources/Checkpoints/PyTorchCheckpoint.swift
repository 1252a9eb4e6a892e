// Reading torch.save files (.pth, .pth.tar, .pt) without Python: the zip container of PyTorch ≥ 1.6
// (torch/serialization.py `_save`: records `<archive>/data.pkl`, `<archive>/data/<key>`, `byteorder`, `version`)
// and the restricted unpickler of Pickle.swift. Tensors are materialised like `torch._utils._rebuild_tensor_v2`.
import Foundation
import Tensors
import ZIPFoundation

/// Everything a torch.save'd checkpoint holds that we can use, flattened.
///
/// Dictionaries, lists and tuples are walked from the top-level object, and each tensor or scalar is keyed by
/// its dotted path: `{'state_dict': {'conv1.weight': t}}` gives `state_dict.conv1.weight`, list items and
/// integer keys give their number (`optimizer.state.0.momentum_buffer`). F16, BF16 and F64 tensors become F32,
/// I64 (and I32) become I64; non-contiguous views are materialised in row-major order.
public struct PyTorchCheckpoint: Sendable {
  /// Every tensor, keyed by its dotted path from the top-level object: "state_dict.conv1.weight",
  /// "meta.something" … ; top-level state dicts (torchvision files) give "conv1.weight".
  public var tensors: [String: StoredTensor]
  /// Scalars and strings by dotted path ("epoch" → "99", "arch" → "resnet50", "meta.epoch" → "100").
  ///
  /// Strings as they are; integers in decimal; floats as Python's `repr` prints them for ordinary values
  /// ("0.05", "1e-05"); booleans "True"/"False"; None "None".
  public var values: [String: String]

  /// Reads and validates a whole file. Throws `CheckpointError` (unreadable file, bad tensor data) or
  /// `PyTorchCheckpointError` (not a torch.save zip, damaged archive, refused pickle content).
  public init(contentsOf url: URL) throws {
    let data: Data
    do {
      data = try Data(contentsOf: url, options: .mappedIfSafe)
    } catch {
      throw CheckpointError.unreadableFile(path: url.path, reason: SafeTensors.reason(error))
    }
    try self.init(decoding: data, path: url.path)
  }

  /// Decodes a file's bytes; `path` only names the source in errors.
  public init(decoding data: Data, path: String) throws {
    try PyTorchCheckpoint.checkMagic(data, path: path)
    let archive: Archive
    do {
      archive = try Archive(data: data, accessMode: .read)
    } catch {
      throw PyTorchCheckpointError.corruptArchive(
        path: path, reason: "its central directory is missing or unreadable (\(error)); the file is probably "
          + "truncated")
    }
    let records = ArchiveRecords(archive: archive, path: path)
    let prefix = try records.archivePrefix()
    if let byteOrder = try records.read(prefix + "byteorder", expectedByteCount: nil) {
      let text = String(decoding: byteOrder, as: UTF8.self)
      guard text == "little" else {
        throw PyTorchCheckpointError.unsupportedContent(path: path, reason: "its tensors are stored \(text)-endian")
      }
    }
    guard let pickle = try records.read(prefix + "data.pkl", expectedByteCount: nil) else {
      throw PyTorchCheckpointError.missingRecord(path: path, record: prefix + "data.pkl")
    }
    var unpickler = TorchUnpickler(pickle, path: path)
    let document = try unpickler.load()

    var flattener = Flattener(document: document, records: records, prefix: prefix, path: path)
    try flattener.walk(document.root, name: [], depth: 0)
    self.tensors = flattener.tensors
    self.values = flattener.values
  }

  /// Distinguishes a zip from the legacy torch format and from unrelated files, by their first bytes.
  static func checkMagic(_ data: Data, path: String) throws {
    let head = [UInt8](data.prefix(16))
    if head.starts(with: [0x50, 0x4b, 0x03, 0x04]) { return }  // "PK\3\4": a zip local file header
    if head.isEmpty { throw PyTorchCheckpointError.notAZipArchive(path: path, reason: "the file is empty") }
    // Legacy torch.save: a protocol-2 pickle of the magic number 0x1950a86a20f9469cfc6c (LONG1, 10 bytes).
    if head.starts(with: [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19]) {
      throw PyTorchCheckpointError.legacyFormat(path: path)
    }
    // PyTorch < 0.4 wrote a tar archive ("ustar" at byte 257).
    if data.count > 262, [UInt8](data[data.startIndex + 257..<data.startIndex + 262]) == Array("ustar".utf8) {
      throw PyTorchCheckpointError.legacyFormat(path: path)
    }
    let shown = head.prefix(8).map { String(format: "%02x", $0) }.joined(separator: " ")
    if head.count >= 9, head[8] == UInt8(ascii: "{") {
      throw PyTorchCheckpointError.notAZipArchive(
        path: path, reason: "it starts like a safetensors file (\(shown) {), not with the zip signature 50 4b 03 04")
    }
    throw PyTorchCheckpointError.notAZipArchive(
      path: path, reason: "it starts with \(shown), not with the zip signature 50 4b 03 04")
  }
}

// MARK: - Zip records

/// Access to the records of a torch.save archive.
private struct ArchiveRecords {
  let archive: Archive
  let path: String
  /// Entries by path, the first of duplicates (as `Archive.subscript`, which scans the directory on every call).
  let entries: [String: Entry]

  init(archive: Archive, path: String) {
    self.archive = archive
    self.path = path
    var entries: [String: Entry] = [:]
    for entry in archive where entries[entry.path] == nil { entries[entry.path] = entry }
    self.entries = entries
  }

  /// The folder all records sit in (torch names it after the file, or "archive"), with its slash: the folder of
  /// the first `<folder>/data.pkl`.
  func archivePrefix() throws -> String {
    for entry in archive where entry.type == .file {
      let components = entry.path.split(separator: "/", omittingEmptySubsequences: false)
      if components.count == 2, components[1] == "data.pkl", !components[0].isEmpty {
        return components[0] + "/"
      }
    }
    throw PyTorchCheckpointError.missingRecord(path: path, record: "<archive>/data.pkl")
  }

  /// The bytes of record `name`, or nil when the archive has none; checks the size first when one is expected.
  func read(_ name: String, expectedByteCount: Int?) throws -> Data? {
    guard let entry = entries[name] else { return nil }
    if let expected = expectedByteCount, entry.uncompressedSize != UInt64(expected) {
      throw CheckpointError.invalidTensor(
        path: path, name: name,
        reason: "has \(entry.uncompressedSize) bytes, but its persistent id declares \(expected)")
    }
    var data = Data()
    let checksum: CRC32
    do {
      checksum = try archive.extract(entry) { chunk in data.append(chunk) }
    } catch {
      throw PyTorchCheckpointError.corruptArchive(path: path, reason: "record '\(name)' cannot be read (\(error))")
    }
    // `extract(_:consumer:)` computes the CRC-32 but leaves the comparison to the caller.
    guard checksum == entry.checksum else {
      throw PyTorchCheckpointError.corruptArchive(
        path: path, reason: "record '\(name)' fails its CRC-32 check (stored \(entry.checksum), computed \(checksum))")
    }
    guard data.count == Int(entry.uncompressedSize) else {
      throw PyTorchCheckpointError.corruptArchive(
        path: path, reason: "record '\(name)' has \(data.count) of its \(entry.uncompressedSize) bytes")
    }
    return data
  }
}

// MARK: - Flattening and tensor materialisation

/// Walks the unpickled object graph, materialising tensors and formatting scalars under dotted names.
private struct Flattener {
  let document: PickleDocument
  let records: ArchiveRecords
  let prefix: String
  let path: String
  var tensors: [String: StoredTensor] = [:]
  var values: [String: String] = [:]
  /// Storage bytes by key, each record read once.
  var storages: [String: Data] = [:]
  /// Views already materialised (MMSelfSup 0.x saves `encoder.0.*` and `backbone.*` as the same tensors).
  var materialised: [TensorReference: StoredTensor] = [:]
  /// Containers on the current path, to reject reference cycles.
  var open: Set<PickleValue> = []

  /// Deeper nesting than this is not a checkpoint.
  static let maximumDepth = 64

  init(document: PickleDocument, records: ArchiveRecords, prefix: String, path: String) {
    self.document = document
    self.records = records
    self.prefix = prefix
    self.path = path
  }

  mutating func walk(_ value: PickleValue, name: [String], depth: Int) throws {
    guard depth <= Flattener.maximumDepth else {
      throw PyTorchCheckpointError.unsupportedContent(
        path: path, reason: "'\(dotted(name))' is nested more than \(Flattener.maximumDepth) levels deep")
    }
    switch value {
    case .dict(let id):
      try enter(value, name: name)
      let dict = document.dicts[id]
      for (key, item) in zip(dict.keys, dict.values) {
        guard let component = scalarText(key) else {
          throw PyTorchCheckpointError.unsupportedContent(
            path: path, reason: "a dict under '\(dotted(name))' has a tuple as a key")
        }
        try walk(item, name: name + [component], depth: depth + 1)
      }
      open.remove(value)
    case .list(let id):
      try enter(value, name: name)
      for (index, item) in document.lists[id].enumerated() {
        try walk(item, name: name + [String(index)], depth: depth + 1)
      }
      open.remove(value)
    case .tuple(let items):
      for (index, item) in items.enumerated() { try walk(item, name: name + [String(index)], depth: depth + 1) }
    case .tensor(let reference):
      let key = dotted(name)
      try checkUnused(key)
      tensors[key] = try materialise(reference, name: key)
    case .global, .storage:
      break  // classes and bare storages carry nothing we use
    default:
      let key = dotted(name)
      try checkUnused(key)
      values[key] = scalarText(value)
    }
  }

  private mutating func enter(_ container: PickleValue, name: [String]) throws {
    guard open.insert(container).inserted else {
      throw PyTorchCheckpointError.unsupportedContent(
        path: path, reason: "'\(dotted(name))' contains itself (a reference cycle)")
    }
  }

  private func checkUnused(_ key: String) throws {
    guard tensors[key] == nil, values[key] == nil else {
      throw PyTorchCheckpointError.unsupportedContent(
        path: path, reason: "two entries flatten to the same name '\(key)'")
    }
  }

  private func dotted(_ name: [String]) -> String { name.joined(separator: ".") }

  /// A tensor as `_rebuild_tensor_v2` views its storage: element `i` (multi-index) is
  /// `storage[offset + Σ_d i_d · stride_d]`, copied out in row-major order.
  private mutating func materialise(_ reference: TensorReference, name: String) throws -> StoredTensor {
    if let done = materialised[reference] { return done }
    let storage = reference.storage
    func invalid(_ reason: String) -> CheckpointError { .invalidTensor(path: path, name: name, reason: reason) }

    guard reference.shape.allSatisfy({ $0 >= 0 }), reference.strides.allSatisfy({ $0 >= 0 }),
          reference.storageOffset >= 0
    else {
      throw invalid("has negative sizes, strides or offset (size \(reference.shape), stride \(reference.strides), "
                      + "offset \(reference.storageOffset))")
    }
    // The largest element index the view touches, with overflow checks (hostile sizes must not wrap around).
    var count = 1, last = reference.storageOffset
    for (size, stride) in zip(reference.shape, reference.strides) {
      let (product, productOverflow) = count.multipliedReportingOverflow(by: size)
      let (step, stepOverflow) = (size > 0 ? size - 1 : 0).multipliedReportingOverflow(by: stride)
      let (end, endOverflow) = last.addingReportingOverflow(step)
      guard !productOverflow, !stepOverflow, !endOverflow else { throw invalid("has sizes that overflow") }
      count = product
      last = end
    }
    guard count == 0 || last < storage.elementCount else {
      throw invalid("reads element \(last) of a storage of \(storage.elementCount) (size \(reference.shape), "
                      + "stride \(reference.strides), offset \(reference.storageOffset))")
    }

    let (storageBytesCount, sizeOverflow) =
      storage.elementCount.multipliedReportingOverflow(by: storage.dtype.byteCount)
    guard !sizeOverflow else { throw invalid("has a storage too large to address") }
    if storages[storage.key] == nil {
      let record = prefix + "data/" + storage.key
      guard let bytes = try records.read(record, expectedByteCount: storageBytesCount) else {
        throw PyTorchCheckpointError.missingRecord(path: path, record: record)
      }
      storages[storage.key] = bytes
    }
    let bytes = storages[storage.key]!
    guard bytes.count == storageBytesCount else {
      // The same key used with two element types of different sizes.
      throw invalid("views storage '\(storage.key)' (\(bytes.count) bytes) as \(storage.elementCount) "
                      + "\(storage.dtype.rawValue) elements")
    }

    let shape = reference.shape
    let value = bytes.withUnsafeBytes { (raw: UnsafeRawBufferPointer) -> Tensor in
      Tensor(uninitializedShape: shape) { out in
        guard !out.isEmpty else { return }
        let dtype = storage.dtype
        if reference.strides == contiguousStrides(shape) {
          let start = reference.storageOffset * dtype.byteCount
          convertElements(UnsafeRawBufferPointer(rebasing: raw[start...]), dtype: dtype, into: out)
          return
        }
        // Odometer over the multi-index, last dimension fastest.
        var index = [Int](repeating: 0, count: shape.count)
        var source = reference.storageOffset
        for i in 0..<out.count {
          out[i] = loadElement(raw, at: source, dtype: dtype)
          var d = shape.count - 1
          while d >= 0 {
            index[d] += 1
            source += reference.strides[d]
            if index[d] < shape[d] { break }
            source -= reference.strides[d] * shape[d]
            index[d] = 0
            d -= 1
          }
        }
      }
    }
    let stored = StoredTensor(value, dtype: storage.dtype == .i64 || storage.dtype == .i32 ? .i64 : .f32)
    materialised[reference] = stored
    return stored
  }

  /// Text for a scalar (nil for containers): what Python's `str` prints for these types.
  private func scalarText(_ value: PickleValue) -> String? {
    switch value {
    case .none: "None"
    case .bool(let flag): flag ? "True" : "False"
    case .int(let number): String(number)
    case .bigInt(let text): text
    case .float(let number): pythonRepr(number)
    case .string(let text): text
    default: nil
    }
  }
}

/// Row-major strides of `shape`, in elements (PyTorch's `contiguous()` strides).
private func contiguousStrides(_ shape: [Int]) -> [Int] {
  var strides = [Int](repeating: 1, count: shape.count)
  for d in stride(from: shape.count - 2, through: 0, by: -1) { strides[d] = strides[d + 1] * shape[d + 1] }
  return strides
}

/// Python's `repr(float)`: the shortest round-trip digits, scientific below 1e-4 and from 1e16 on.
func pythonRepr(_ value: Double) -> String {
  if value.isNaN { return "nan" }
  if value.isInfinite { return value < 0 ? "-inf" : "inf" }
  // Swift prints the same shortest digits but turns scientific from 2^53 on instead of 1e16.
  let text = value.description
  guard abs(value) >= 1, abs(value) < 1e16, let e = text.firstIndex(of: "e"),
        let exponent = Int(text[text.index(after: e)...])
  else { return text }
  // d.ddde+N with N < 16 → the digits with the point moved N places right, then ".0".
  var mantissa = Substring(text[..<e])
  let sign = mantissa.hasPrefix("-") ? "-" : ""
  if !sign.isEmpty { mantissa = mantissa.dropFirst() }
  let digits = mantissa.replacingOccurrences(of: ".", with: "")
  return sign + digits + String(repeating: "0", count: max(0, exponent + 1 - digits.count)) + ".0"
}
