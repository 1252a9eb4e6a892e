// Reading torch.save files (.pth, .pth.tar, .pt) without Python: the zip container of PyTorch ≥ 1.6
// (torch/serialization.py `_save`: records `<archive>/data.pkl`, `<archive>/data/<key>`, `byteorder`, `version`)
// and the restricted unpickler of Pickle.swift. Tensors are materialised like `torch._utils._rebuild_tensor_v2`.
import Foundation
import Tensors

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
  ///
  /// Untrusted files are bounded (issue 14): data.pkl by `PickleLimits`, each record by the size its directory
  /// entry declares (and a storage's by what its persistent id declares), views by the elements their storages
  /// hold (`Flattener.repeatedElementBudget`), and every allocation is checked first against `memoryLimit`.
  public init(decoding data: Data, path: String) throws {
    try PyTorchCheckpoint.checkMagic(data, path: path)
    let records = ArchiveRecords(archive: try TorchZipArchive(data: data, path: path), path: path)
    let prefix = try records.archivePrefix()
    if let byteOrder = try records.read(prefix + "byteorder", maximumByteCount: 64) {
      let text = String(decoding: byteOrder, as: UTF8.self)
      guard text == "little" else {
        throw PyTorchCheckpointError.unsupportedContent(path: path, reason: "its tensors are stored \(text)-endian")
      }
    }
    let pickleName = prefix + "data.pkl"
    if let declared = records.declaredByteCount(pickleName), declared > UInt64(PickleLimits.maximumPickleByteCount) {
      throw PyTorchCheckpointError.limitExceeded(
        path: path, limit: .pickleBytes(PickleLimits.maximumPickleByteCount),
        found: "record '\(pickleName)' declares \(declared) bytes, more")
    }
    guard let pickle = try records.read(pickleName, maximumByteCount: PickleLimits.maximumPickleByteCount) else {
      throw PyTorchCheckpointError.missingRecord(path: path, record: pickleName)
    }
    var unpickler = TorchUnpickler(pickle, path: path)
    let document = try unpickler.load()

    var flattener = Flattener(document: document, records: records, prefix: prefix, path: path)
    var rootName: [String] = []
    try flattener.walk(document.root, name: &rootName)
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
  let archive: TorchZipArchive
  let path: String
  /// Records by name, the first of duplicates.
  let entries: [String: ZipRecord]

  init(archive: TorchZipArchive, path: String) {
    self.archive = archive
    self.path = path
    var entries: [String: ZipRecord] = [:]
    for record in archive.records where entries[record.name] == nil { entries[record.name] = record }
    self.entries = entries
  }

  /// The folder all records sit in (torch names it after the file, or "archive"), with its slash: the folder of
  /// the first `<folder>/data.pkl`.
  func archivePrefix() throws -> String {
    for record in archive.records where !record.isDirectory {
      let components = record.name.split(separator: "/", omittingEmptySubsequences: false)
      if components.count == 2, components[1] == "data.pkl", !components[0].isEmpty {
        return components[0] + "/"
      }
    }
    throw PyTorchCheckpointError.missingRecord(path: path, record: "<archive>/data.pkl")
  }

  /// The size record `name`'s directory entry declares, or nil when the archive has none.
  func declaredByteCount(_ name: String) -> UInt64? { entries[name]?.uncompressedSize }

  /// The bytes of record `name`, or nil when the archive has none; at most `maximumByteCount` are ever inflated.
  func read(_ name: String, maximumByteCount: Int) throws -> Data? {
    guard let record = entries[name] else { return nil }
    return try archive.contents(of: record, maximumByteCount: maximumByteCount)
  }
}

/// Bytes this process can allocate at most: the physical memory, or a lower address-space limit (`ulimit -v`).
/// A record or tensor declaring more is refused before anything is allocated.
let memoryLimit: Int = {
  var limit = Int(clamping: ProcessInfo.processInfo.physicalMemory)
  var addressSpace = rlimit()
  #if os(Linux)
  let resource = __rlimit_resource_t(RLIMIT_AS.rawValue)
  #else
  let resource = RLIMIT_AS
  #endif
  if getrlimit(resource, &addressSpace) == 0, addressSpace.rlim_cur != rlim_t.max {  // RLIM_INFINITY
    limit = min(limit, Int(clamping: addressSpace.rlim_cur))
  }
  return limit
}()

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
  /// Values visited so far: a container reached by two paths (memo references) is walked once per path, so an
  /// aliased pickle could expand exponentially; the walk stops at `PickleLimits.maximumValueCount`.
  var visitedCount = 0
  /// Elements materialised beyond those of the storages read so far (see `repeatedElementBudget`).
  var storageElementsRead = 0
  var materialisedElements = 0

  /// Tensor elements views may materialise beyond twice the elements of the storages read: 16 Mi (64 MiB as
  /// float32). A view may repeat storage elements (stride 0 from `expand`, overlapping strides), and a state dict
  /// may hold a tensor and slices of it, but a 600-byte file must not make us write 8 GiB.
  static let repeatedElementBudget = 1 << 24

  init(document: PickleDocument, records: ArchiveRecords, prefix: String, path: String) {
    self.document = document
    self.records = records
    self.prefix = prefix
    self.path = path
  }

  /// Walks `value` at `name` (the dotted path's components, extended in place while walking below it).
  mutating func walk(_ value: PickleValue, name: inout [String]) throws {
    guard name.count <= PickleLimits.maximumDepth else {
      throw PyTorchCheckpointError.limitExceeded(
        path: path, limit: .nestingDepth(PickleLimits.maximumDepth),
        found: "'\(dotted(name.prefix(8)))…' is nested deeper")
    }
    visitedCount += 1
    guard visitedCount <= PickleLimits.maximumValueCount else {
      throw PyTorchCheckpointError.limitExceeded(
        path: path, limit: .valueCount(PickleLimits.maximumValueCount),
        found: "the object graph expands to more values (containers shared through memo references count once "
          + "per path; reached at '\(dotted(name.prefix(8)))…')")
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
        try walk(item, component, name: &name)
      }
      open.remove(value)
    case .list(let id):
      try enter(value, name: name)
      for (index, item) in document.lists[id].enumerated() { try walk(item, String(index), name: &name) }
      open.remove(value)
    case .tuple(let items):
      for (index, item) in items.enumerated() { try walk(item, String(index), name: &name) }
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

  /// Walks `item` at `name` + `component`.
  private mutating func walk(_ item: PickleValue, _ component: String, name: inout [String]) throws {
    name.append(component)
    defer { name.removeLast() }
    try walk(item, name: &name)
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

  private func dotted<Names: Sequence<String>>(_ name: Names) -> String { name.joined(separator: ".") }

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
      guard let declared = records.declaredByteCount(record) else {
        throw PyTorchCheckpointError.missingRecord(path: path, record: record)
      }
      guard declared == UInt64(storageBytesCount) else {
        throw invalid("has \(declared) bytes in record '\(record)', but its persistent id declares "
                        + "\(storageBytesCount)")
      }
      try checkMemory(storageBytesCount, "record '\(record)' declares a storage of \(storageBytesCount) bytes, more")
      guard let bytes = try records.read(record, maximumByteCount: storageBytesCount) else {
        throw PyTorchCheckpointError.missingRecord(path: path, record: record)
      }
      storages[storage.key] = bytes
      storageElementsRead += storage.elementCount
    }
    guard let bytes = storages[storage.key] else { preconditionFailure("storage '\(storage.key)' was just read") }
    guard bytes.count == storageBytesCount else {
      // The same key used with two element types of different sizes.
      throw invalid("views storage '\(storage.key)' (\(bytes.count) bytes) as \(storage.elementCount) "
                      + "\(storage.dtype.rawValue) elements")
    }
    // Views repeat storage elements only within a budget, and the tensor must fit in memory; both checked
    // before the tensor is allocated.
    let repeatedElements = materialisedElements + count - 2 * storageElementsRead
    guard repeatedElements <= Flattener.repeatedElementBudget else {
      throw PyTorchCheckpointError.limitExceeded(
        path: path, limit: .repeatedElements(Flattener.repeatedElementBudget),
        found: "tensor '\(name)' (size \(reference.shape), stride \(reference.strides)) views \(count) elements "
          + "of a storage of \(storage.elementCount); with the tensors before it, its views repeat more elements")
    }
    let (outputBytes, outputOverflow) = count.multipliedReportingOverflow(by: MemoryLayout<Float>.size)
    try checkMemory(outputOverflow ? .max : outputBytes, "tensor '\(name)' needs \(count) float32 elements, more")
    materialisedElements += count

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

  /// Refuses an allocation of `byteCount` bytes that the process cannot make (`memoryLimit`).
  private func checkMemory(_ byteCount: Int, _ found: @autoclosure () -> String) throws {
    guard byteCount <= memoryLimit else {
      throw PyTorchCheckpointError.limitExceeded(path: path, limit: .memoryBytes(memoryLimit), found: found())
    }
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
