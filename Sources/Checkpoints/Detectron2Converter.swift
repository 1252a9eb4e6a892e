// A ResNet backbone as the pickle detectron2 loads for its R50-C4 detector (PROTOCOLS §5.5): MMSelfSup's
// tools/benchmarks/detectron2/convert-pretrain-to-detectron2.py (the same rules as facebookresearch/moco's
// detection/convert-pretrain-to-detectron2.py) renames torchvision keys to detectron2's and pickles
// `{'model': {name: numpy array}, '__author__': 'MMSelfSup', 'matching_heuristics': True}`.
// detectron2's DetectionCheckpointer reads a .pkl with `pickle.load(f, encoding='latin1')`.
// Tests: Detectron2ConverterTests against scripts/reference/make_detectron2_fixtures.py.
import Foundation
import Support

/// The detectron2 backbone pickle of a torchvision-named ResNet state dict.
public enum Detectron2Converter {
  /// The author the reference converter writes (detectron2 only logs it).
  public static let author = "MMSelfSup"

  /// The reference's renaming, in its order: a name without "layer" gets the prefix "stem."; layer1…4 →
  /// res2…5; bn1/2/3 → conv1/2/3.norm; downsample.0 → shortcut; downsample.1 → shortcut.norm (each a
  /// substring replacement of every occurrence, as Python's str.replace).
  /// `conv1.weight` → `stem.conv1.weight`, `layer2.0.bn3.running_var` → `res3.0.conv3.norm.running_var`.
  public static func detectron2Name(_ torchvisionName: String) -> String {
    var name = torchvisionName.contains("layer") ? torchvisionName : "stem." + torchvisionName
    for stage in 1...4 { name = name.replacingOccurrences(of: "layer\(stage)", with: "res\(stage + 1)") }
    for index in 1...3 { name = name.replacingOccurrences(of: "bn\(index)", with: "conv\(index).norm") }
    name = name.replacingOccurrences(of: "downsample.0", with: "shortcut")
    return name.replacingOccurrences(of: "downsample.1", with: "shortcut.norm")
  }

  /// The renamed tensors, sorted by their detectron2 names.
  /// - Throws: `Detectron2ConversionError.nameCollision` when two names map to one (not for a ResNet).
  public static func renamed(_ backbone: [String: StoredTensor], source: String) throws
    -> [(name: String, tensor: StoredTensor)] {
    var byName: [String: (source: String, tensor: StoredTensor)] = [:]
    for (name, tensor) in backbone.sorted(by: { $0.key < $1.key }) {
      let target = detectron2Name(name)
      if let earlier = byName[target] {
        throw Detectron2ConversionError.nameCollision(path: source, names: [earlier.source, name], target: target)
      }
      byName[target] = (name, tensor)
    }
    return byName.sorted { $0.key < $1.key }.map { ($0.key, $0.value.tensor) }
  }

  /// The pickle (protocol 3) of `{'model': {name: ndarray}, '__author__': author, 'matching_heuristics': True}`:
  /// F32 tensors become float32 arrays, I64 ones (`num_batches_tracked`) int64 arrays, as `tensor.numpy()` does;
  /// shapes as stored (PyTorch layout, OIHW for convolutions); C order.
  public static func pickle(_ renamed: [(name: String, tensor: StoredTensor)], author: String = author) -> [UInt8] {
    var writer = PickleWriter(protocolVersion: 3)
    writer.emptyDict()
    writer.mark()
    writer.string("model")
    writer.emptyDict()
    writer.mark()
    for (name, tensor) in renamed {
      writer.string(name)
      writeArray(tensor, into: &writer)
    }
    writer.setItemsFromMark()
    writer.string("__author__")
    writer.string(author)
    writer.string("matching_heuristics")
    writer.bool(true)
    writer.setItemsFromMark()
    writer.stop()
    return writer.bytes
  }

  /// Renames `backbone` and writes its pickle to `url` atomically.
  /// - Throws: `Detectron2ConversionError` for a name collision; `CheckpointError.unwritableFile` naming `url`.
  public static func write(backbone: [String: StoredTensor], source: String, to url: URL) throws {
    let bytes = pickle(try renamed(backbone, source: source))
    do {
      try AtomicFile.write(Data(bytes), to: url)
    } catch {
      throw CheckpointError.unwritableFile(path: url.path, reason: error.reason)
    }
  }

  /// `ndarray.__reduce__` as numpy pickles it: `_reconstruct(ndarray, (0,), b'b')`, then BUILD with the state
  /// `(1, shape, dtype, is_fortran=False, raw bytes)`, the dtype being `dtype(code, False, True)` BUILT with
  /// `(3, '<', None, None, None, -1, -1, 0)`. `numpy.core.multiarray` loads in numpy 1.x and 2.x alike.
  private static func writeArray(_ tensor: StoredTensor, into writer: inout PickleWriter) {
    writer.global("numpy.core.multiarray", "_reconstruct")
    writer.mark()
    writer.global("numpy", "ndarray")
    writer.intTuple([0])
    writer.binaryBytes(Array("b".utf8))
    writer.tupleFromMark()
    writer.reduce()
    writer.mark()
    writer.int(1)
    writer.intTuple(tensor.value.shape)
    writer.global("numpy", "dtype")
    writer.mark()
    writer.string(tensor.dtype == .i64 ? "i8" : "f4")
    writer.bool(false)
    writer.bool(true)
    writer.tupleFromMark()
    writer.reduce()
    writer.mark()
    writer.int(3)
    writer.string("<")
    writer.none()
    writer.none()
    writer.none()
    writer.int(-1)
    writer.int(-1)
    writer.int(0)
    writer.tupleFromMark()
    writer.build()
    writer.bool(false)
    writer.binaryBytes(littleEndianBytes(tensor))
    writer.tupleFromMark()
    writer.build()
  }

  /// The elements in the array's dtype, little-endian (float32, or int64 for I64 tensors).
  static func littleEndianBytes(_ tensor: StoredTensor) -> [UInt8] {
    var bytes: [UInt8] = []
    if tensor.dtype == .i64 {
      bytes.reserveCapacity(8 * tensor.value.count)
      for scalar in tensor.value.scalars {
        withUnsafeBytes(of: Int64(scalar.rounded()).littleEndian) { bytes += $0 }
      }
    } else {
      bytes.reserveCapacity(4 * tensor.value.count)
      for scalar in tensor.value.scalars {
        withUnsafeBytes(of: scalar.bitPattern.littleEndian) { bytes += $0 }
      }
    }
    return bytes
  }
}

/// A backbone that cannot be written as a detectron2 pickle.
public enum Detectron2ConversionError: Error, Equatable, CustomStringConvertible {
  /// Two tensor names of the input become one detectron2 name.
  case nameCollision(path: String, names: [String], target: String)

  public var description: String {
    switch self {
    case let .nameCollision(path, names, target):
      return "Cannot convert \(path) for detectron2: \(names.joined(separator: " and ")) would both become "
        + "'\(target)'. The input must be a torchvision-named ResNet backbone; extract it with "
        + "`simsiam-bench checkpoint extract-backbone` first."
    }
  }
}
