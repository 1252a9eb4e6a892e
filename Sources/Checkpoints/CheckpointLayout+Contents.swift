// What a checkpoint file holds, independent of its container: named tensors plus scalar values, and the
// magic-byte dispatch between safetensors and PyTorch's zip container.
import Support
import Foundation

/// A checkpoint's tensors and scalar values, flattened to dotted paths from the top of the file.
///
/// For a safetensors file the tensors are its tensors and `values` its `__metadata__`. For a PyTorch `.pth`
/// (a pickled dict) both are dotted paths through the nested dicts: `state_dict.conv1.weight`,
/// `optimizer.state.0.momentum_buffer`; `epoch` → "99", `arch` → "resnet50", `meta.epoch` → "100".
public struct CheckpointContents: Sendable, Equatable {
  /// The container the contents came from.
  public enum Format: String, Sendable, Equatable {
    case safetensors
    /// torch.save's zip container (PyTorch ≥ 1.6): `.pth`, `.pth.tar`, `.pt`.
    case pytorch
  }

  public var tensors: [String: StoredTensor]
  public var values: [String: String]
  public var format: Format
  /// The file's path; names the source in errors and reports.
  public var source: String

  public init(tensors: [String: StoredTensor], values: [String: String] = [:], format: Format, source: String) {
    self.tensors = tensors
    self.values = values
    self.format = format
    self.source = source
  }

  /// A safetensors file's tensors, with its metadata as the values.
  public init(_ file: SafeTensors, source: String) {
    self.init(tensors: file.tensors, values: file.metadata, format: .safetensors, source: source)
  }

  /// Reads `url`, choosing the container from its first bytes (`CheckpointFileFormat.detect`).
  ///
  /// - Parameter readPyTorch: reads a PyTorch zip checkpoint; the caller supplies it (the CLI wires the
  ///   `.pth` reader), so this module does not depend on how pickles are parsed.
  public static func read(_ url: URL, readPyTorch: (URL) throws -> CheckpointContents) throws -> CheckpointContents {
    switch try CheckpointFileFormat.detect(url) {
    case .safetensors: return CheckpointContents(try SafeTensors(contentsOf: url), source: url.path)
    case .pytorchZip: return try readPyTorch(url)
    }
  }

  /// The epoch recorded by the training code, if any: the official SimSiam `epoch` (the number of finished
  /// epochs), mmcv's `meta.epoch`, or an `epoch` metadata entry of our safetensors.
  public var epoch: String? { values["epoch"] ?? values["meta.epoch"] }
}

/// The container of a checkpoint file, told by its first bytes.
public enum CheckpointFileFormat: Sendable, Equatable {
  case safetensors
  case pytorchZip

  /// "PK\u{3}\u{4}": a zip local-file header, which is how torch.save (≥ 1.6) files start.
  static let zipMagic: [UInt8] = [0x50, 0x4B, 0x03, 0x04]

  /// Reads the first 9 bytes of `url`: a zip header means PyTorch; `{` after the 8-byte length means
  /// safetensors; a pickle opcode (0x80 PROTO) at byte 0 means the legacy pre-zip torch format, refused with a
  /// hint. Anything else (and files too short to tell) goes to the safetensors reader, whose errors are precise.
  public static func detect(_ url: URL) throws -> CheckpointFileFormat {
    switch PathKind(url.path) {
    case .directory:
      throw CheckpointError.unreadableFile(path: url.path, reason: "it is a folder; give the checkpoint file inside "
                                             + "it (.safetensors or .pth)")
    case .missing, .file:
      break  // a missing file is reported by the open below, with the system's reason
    }
    let prefix: [UInt8]
    do {
      let handle = try FileHandle(forReadingFrom: url)
      defer { try? handle.close() }
      prefix = [UInt8](try handle.read(upToCount: 9) ?? Data())
    } catch {
      throw CheckpointError.unreadableFile(path: url.path, reason: SafeTensors.reason(error))
    }
    if prefix.isEmpty {
      throw CheckpointError.unreadableFile(path: url.path, reason: "the file is empty (0 bytes); it was probably "
                                             + "not written to the end — write or download it again")
    }
    if prefix.starts(with: zipMagic) { return .pytorchZip }
    if prefix.count == 9 && prefix[8] == UInt8(ascii: "{") { return .safetensors }
    if prefix.first == 0x80 {
      throw CheckpointLayoutError.unrecognizedFile(
        path: url.path,
        reason: "it starts with a pickle header: the legacy (pre-1.6) torch.save format, which is not supported. "
          + "Re-save it with a current PyTorch: torch.save(torch.load(path, map_location='cpu'), new_path)")
    }
    return .safetensors
  }
}
