// Errors specific to PyTorch .pth files: the zip container and the pickle inside it. (File I/O and bad tensor
// data are reported with `CheckpointError`, as for safetensors.)

/// A .pth / .pth.tar file that cannot be read safely. Every message names the file and ends with a hint.
public enum PyTorchCheckpointError: Error, Equatable, CustomStringConvertible {
  /// The file is not a zip archive (empty, another format, or a wrong first bytes).
  case notAZipArchive(path: String, reason: String)
  /// Written by `torch.save(..., _use_new_zipfile_serialization=False)` or by PyTorch < 1.6.
  case legacyFormat(path: String)
  /// The zip archive is damaged (no central directory, bad checksum, truncated record).
  case corruptArchive(path: String, reason: String)
  /// A record torch.save always writes is absent, e.g. `archive/data.pkl` or `archive/data/3`.
  case missingRecord(path: String, record: String)
  /// The pickle program is malformed or uses something torch.save does not write for state dicts.
  case corruptPickle(path: String, offset: Int, reason: String)
  /// The pickle names a global other than the tensor-rebuilding ones; nothing was imported or run.
  case refusedGlobal(path: String, name: String)
  /// The pickle calls something that is not an allowed callable (or sets state on a non-OrderedDict).
  case refusedCall(path: String, callable: String)
  /// The file is valid but holds something this reader does not represent (big-endian data, two values with
  /// the same flattened name, …).
  case unsupportedContent(path: String, reason: String)
  /// The file asks for more than the reader's bounds allow (`PickleLimits`, record sizes, memory): `found` says
  /// what and where. Torch state dicts stay far below every limit; the file is damaged or hostile.
  case limitExceeded(path: String, limit: Limit, found: String)

  /// A bound of the reader, with its value.
  public enum Limit: Equatable, Sendable, CustomStringConvertible {
    /// Containers inside containers (`PickleLimits.maximumDepth`).
    case nestingDepth(Int)
    /// Values pushed, expanded or walked (`PickleLimits.maximumValueCount`).
    case valueCount(Int)
    /// Inflated bytes of data.pkl (`PickleLimits.maximumPickleByteCount`).
    case pickleBytes(Int)
    /// Elements that tensor views may repeat from their storages (stride-0 or overlapping views).
    case repeatedElements(Int)
    /// Bytes of memory the process can address (physical memory, or a lower address-space limit).
    case memoryBytes(Int)

    public var description: String {
      switch self {
      case .nestingDepth(let levels): "\(levels) levels of nesting"
      case .valueCount(let count): "\(count) values"
      case .pickleBytes(let bytes): "\(bytes) bytes (\(bytes >> 20) MiB) of data.pkl"
      case .repeatedElements(let count): "\(count) repeated tensor elements"
      case .memoryBytes(let bytes): "\(bytes) bytes (\(bytes >> 30) GiB) of memory"
      }
    }
  }

  public var description: String {
    switch self {
    case let .notAZipArchive(path, reason):
      return "Checkpoint \(path) is not a PyTorch zip checkpoint: \(reason). torch.save has written zip files "
        + "since PyTorch 1.6; safetensors files are read by the safetensors loader."
    case let .legacyFormat(path):
      return "Checkpoint \(path) uses PyTorch's legacy (pre-1.6, non-zip) format, which this reader does not "
        + "support. Re-save it in Python: torch.save(torch.load(f, weights_only=False), g)."
    case let .corruptArchive(path, reason):
      return "Checkpoint \(path) is a damaged zip archive: \(reason). The download or write was probably "
        + "interrupted; fetch or write it again."
    case let .missingRecord(path, record):
      return "Checkpoint \(path) has no '\(record)' record, which torch.save always writes. It is not a "
        + "torch.save file, or it is damaged."
    case let .corruptPickle(path, offset, reason):
      return "Checkpoint \(path): data.pkl is not a state-dict pickle this reader accepts (at byte \(offset): "
        + "\(reason)). If the file holds more than tensors, re-save only them in Python: "
        + "torch.save(torch.load(f, weights_only=True), g)."
    case let .refusedGlobal(path, name):
      return "Checkpoint \(path): refuses to load global \(name). Only tensors, storages and OrderedDicts are "
        + "rebuilt, and nothing in the file is ever imported or run. If you trust the file, re-save its state "
        + "dict in Python: torch.save(torch.load(f, weights_only=False)['state_dict'], g)."
    case let .refusedCall(path, callable):
      return "Checkpoint \(path): refuses to call \(callable). Only torch's tensor-rebuilding functions and "
        + "collections.OrderedDict are interpreted; the file may be hostile or was not written by torch.save."
    case let .limitExceeded(path, limit, found):
      return "Checkpoint \(path): \(found) than the reader allows (\(limit)). State dicts written by torch.save "
        + "stay far below this limit; the file is damaged or was built to exhaust the reader. Fetch it again "
        + "from its source, or re-save the state dict in Python: torch.save(state_dict, g)."
    case let .unsupportedContent(path, reason):
      return "Checkpoint \(path): \(reason). Re-save the state dict in Python with torch.save(state_dict, g) "
        + "on a little-endian machine."
    }
  }
}
