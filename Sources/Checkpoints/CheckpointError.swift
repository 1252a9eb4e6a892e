// The one error type of the Checkpoints module (bad files and mismatched state dicts).

/// A tensor whose shape in a checkpoint differs from the model's.
public struct ShapeMismatch: Sendable, Equatable, CustomStringConvertible {
  public var name: String
  public var expected: [Int]
  public var found: [Int]

  public init(name: String, expected: [Int], found: [Int]) {
    self.name = name
    self.expected = expected
    self.found = found
  }

  public var description: String { "\(name) (model \(expected), file \(found))" }
}

/// An error reading, writing or applying a checkpoint. Every message names the file and ends with a hint.
public enum CheckpointError: Error, Equatable, CustomStringConvertible {
  /// The file does not exist or could not be read.
  case unreadableFile(path: String, reason: String)
  /// The file could not be written.
  case unwritableFile(path: String, reason: String)
  /// The file ends before the header or the tensor data it declares.
  case truncated(path: String, expectedBytes: Int, actualBytes: Int)
  /// The header is not a safetensors JSON header: bad length, not JSON, wrong field types, unknown dtype.
  case corruptHeader(path: String, reason: String)
  /// A tensor's dtype, shape and data offsets disagree, or the data regions overlap or leave gaps.
  case invalidTensor(path: String, name: String, reason: String)
  /// A tensor is stored in a dtype this version cannot load into a `Tensor` (`SafeTensorsDType.isLoadable`).
  case unsupportedDType(path: String, name: String, dtype: String)
  /// The checkpoint's tensors do not match the model's state dict (strict loading).
  case stateDictMismatch(path: String, missing: [String], unexpected: [String], wrongShapes: [ShapeMismatch])

  public var description: String {
    switch self {
    case let .unreadableFile(path, reason):
      return "Cannot read checkpoint \(path): \(reason). Check the path and its permissions."
    case let .unwritableFile(path, reason):
      return "Cannot write checkpoint \(path): \(reason). Check that the folder exists and has free space."
    case let .truncated(path, expectedBytes, actualBytes):
      return "Checkpoint \(path) is truncated: its header declares \(expectedBytes) bytes, the file has "
        + "\(actualBytes). The download or write was probably interrupted; fetch or write it again."
    case let .corruptHeader(path, reason):
      return "Checkpoint \(path) is not a valid safetensors file: \(reason). PyTorch .pth/.pt files must be "
        + "converted first, e.g. with safetensors.torch.save_file(state_dict, path)."
    case let .invalidTensor(path, name, reason):
      return "Checkpoint \(path): tensor '\(name)' \(reason). The file is corrupt or was written by a faulty tool."
    case let .unsupportedDType(path, name, dtype):
      return "Checkpoint \(path): tensor '\(name)' is stored as \(dtype), but this version loads only "
        + SafeTensorsDType.allCases.filter(\.isLoadable).map(\.rawValue).joined(separator: ", ")
        + ". Convert it in PyTorch with tensor.float() before saving."
    case let .stateDictMismatch(path, missing, unexpected, wrongShapes):
      var parts: [String] = []
      if !missing.isEmpty { parts.append("missing \(missing.count): \(listed(missing))") }
      if !unexpected.isEmpty { parts.append("unexpected \(unexpected.count): \(listed(unexpected))") }
      if !wrongShapes.isEmpty {
        parts.append("wrong shape \(wrongShapes.count): \(listed(wrongShapes.map(\.description)))")
      }
      return "Checkpoint \(path) does not match the model's state dict; " + parts.joined(separator: "; ")
        + ". Was it written for another architecture, or does it need a name map (the official SimSiam "
        + "checkpoints prefix the encoder with 'module.encoder.')?"
    }
  }
}

/// The first few names, then how many more (a ResNet-50 state dict has 320 keys).
private func listed(_ names: [String], limit: Int = 12) -> String {
  let shown = names.prefix(limit).joined(separator: ", ")
  return names.count > limit ? "\(shown), … and \(names.count - limit) more" : shown
}
