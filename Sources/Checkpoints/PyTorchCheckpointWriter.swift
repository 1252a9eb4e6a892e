// Writing PyTorch-loadable .pth files: torch.save's zip layout (torch/serialization.py `_save`) with a
// protocol-2 pickle of an OrderedDict of tensors, so `torch.load(f, weights_only=True)` reads them.
import Foundation
import Support
import Tensors
import ZIPFoundation

/// Writes state dicts as zip-format torch.save files.
public enum PyTorchCheckpointWriter {
  /// The folder every record sits in (torch uses the file's stem; its reader accepts any single folder).
  static let archiveName = "archive"

  /// Writes `tensors` in the given order to `url`, replacing an existing file.
  ///
  /// Without metadata the file holds the state dict itself (`OrderedDict[str, Tensor]`, like torchvision
  /// weights); with metadata it holds `{'meta': {str: str}, 'state_dict': OrderedDict}` (the mmcv/mmengine
  /// layout, so `PyTorchCheckpoint` reads the tensors back as `state_dict.<name>` and the metadata as
  /// `meta.<key>`). F32 tensors become `torch.float32`, I64 ones `torch.int64`; each gets its own storage
  /// record `data/<i>`.
  /// Where string metadata goes in the pickled object.
  public enum MetadataPlacement: Sendable {
    /// `{'meta': {key: value, …}, 'state_dict': …}` (mmcv/mmengine training checkpoints).
    case nestedUnderMeta
    /// `{key: value, …, 'state_dict': …}` (MMSelfSup's extract_backbone_weights.py writes `'author'` this way).
    case besideStateDict
  }

  public static func write(_ tensors: [(String, StoredTensor)], metadata: [String: String],
                           placement: MetadataPlacement = .nestedUnderMeta, to url: URL) throws {
    var seen = Set<String>()
    for (name, _) in tensors {
      let isNew = seen.insert(name).inserted  // outside the precondition: -Ounchecked would not evaluate it
      precondition(isNew, "PyTorchCheckpointWriter got the tensor name '\(name)' twice.")
    }
    let prefix = archiveName + "/"
    var records: [(String, Data)] = [(prefix + "data.pkl", Data(pickled(tensors, metadata: metadata, placement: placement))),
                                     (prefix + "byteorder", Data("little".utf8))]
    for (index, (_, tensor)) in tensors.enumerated() {
      records.append((prefix + "data/\(index)", storageBytes(tensor)))
    }
    records.append((prefix + "version", Data("3\n".utf8)))
    try writeArchive(records, to: url)
  }

  /// Writes a stored (uncompressed) zip of `records` in order to `url`, replacing an existing file only once the
  /// new one is complete and synced (`AtomicFile`; ZIPFoundation creates the temporary itself).
  static func writeArchive(_ records: [(String, Data)], to url: URL) throws {
    do {
      try AtomicFile.write(to: url, creatingFileAt: { temporary in
        let archive = try Archive(url: temporary, accessMode: .create)
        for (name, data) in records {
          // A fixed date keeps the bytes reproducible.
          try archive.addEntry(with: name, type: .file, uncompressedSize: Int64(data.count),
                               modificationDate: Date(timeIntervalSince1970: 315_532_800)) { position, size in
            data.subdata(in: Int(position)..<(Int(position) + size))
          }
        }
      })
    } catch let error as SupportError {
      throw CheckpointError.unwritableFile(path: url.path, reason: error.reason)
    } catch {
      throw CheckpointError.unwritableFile(path: url.path, reason: SafeTensors.reason(error))
    }
  }

  /// data.pkl: `[{'meta': {...}, 'state_dict':] OrderedDict([(name, _rebuild_tensor_v2(...)), ...]) [}]`.
  static func pickled(_ tensors: [(String, StoredTensor)], metadata: [String: String],
                      placement: MetadataPlacement = .nestedUnderMeta) -> [UInt8] {
    var writer = PickleWriter()
    if !metadata.isEmpty {
      writer.emptyDict()
      writer.mark()
      if placement == .nestedUnderMeta {
        writer.string("meta")
        writer.emptyDict()
        writer.mark()
      }
      for (key, value) in metadata.sorted(by: { $0.key < $1.key }) {
        writer.string(key)
        writer.string(value)
      }
      if placement == .nestedUnderMeta { writer.setItemsFromMark() }
      writer.string("state_dict")
    }
    writer.global("collections", "OrderedDict")
    writer.emptyTuple()
    writer.reduce()
    if !tensors.isEmpty {
      writer.mark()
      for (index, (name, tensor)) in tensors.enumerated() {
        writer.string(name)
        // _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks)
        writer.global("torch._utils", "_rebuild_tensor_v2")
        writer.mark()
        // persistent id ('storage', torch.FloatStorage, key, location, numel)
        writer.mark()
        writer.string("storage")
        writer.global("torch", tensor.dtype == .i64 ? "LongStorage" : "FloatStorage")
        writer.string(String(index))
        writer.string("cpu")
        writer.int(tensor.value.count)
        writer.tupleFromMark()
        writer.persistentID()
        writer.int(0)
        writer.intTuple(tensor.value.shape)
        writer.intTuple(rowMajorStrides(tensor.value.shape))
        writer.bool(false)
        writer.global("collections", "OrderedDict")
        writer.emptyTuple()
        writer.reduce()
        writer.tupleFromMark()
        writer.reduce()
      }
      writer.setItemsFromMark()
    }
    if !metadata.isEmpty { writer.setItemsFromMark() }
    writer.stop()
    return writer.bytes
  }

  /// The tensor's elements in its dtype, little-endian.
  private static func storageBytes(_ tensor: StoredTensor) -> Data {
    switch tensor.dtype {
    case .f32:
      return tensor.value.scalars.withUnsafeBytes { Data($0) }
    default:  // .i64
      var data = Data(capacity: 8 * tensor.value.count)
      for scalar in tensor.value.scalars {
        withUnsafeBytes(of: Int64(scalar.rounded()).littleEndian) { data.append(contentsOf: $0) }
      }
      return data
    }
  }

  /// Row-major strides in elements (what `torch.Tensor.contiguous()` has).
  private static func rowMajorStrides(_ shape: [Int]) -> [Int] {
    var strides = [Int](repeating: 1, count: shape.count)
    for d in stride(from: shape.count - 2, through: 0, by: -1) { strides[d] = strides[d + 1] * shape[d + 1] }
    return strides
  }
}
