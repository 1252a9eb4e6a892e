// Model ↔ named tensors in PyTorch's layout and names (`nn.Module.state_dict()` / `load_state_dict(strict=True)`).
import Foundation
import Tensors
import Layers

/// Converts between a model's named parameters and a PyTorch-layout state dict.
public enum StateDict {
  /// Every parameter and buffer in PyTorch's layout under its state-dict key; `.int64` storage becomes I64.
  public static func tensors(of namedParameters: [NamedParameter]) -> [String: StoredTensor] {
    var tensors: [String: StoredTensor] = [:]
    for (name, parameter) in namedParameters {
      precondition(tensors[name] == nil, "State-dict key '\(name)' appears twice in the model's named parameters.")
      tensors[name] = StoredTensor(parameter.exportedValue, dtype: parameter.storageType == .int64 ? .i64 : .f32)
    }
    return tensors
  }

  /// Loads `tensors` into `namedParameters` strictly, like `load_state_dict(strict=True)`.
  ///
  /// Nothing is changed unless every key matches: missing, unexpected and wrong-shape keys are all listed in
  /// one `CheckpointError.stateDictMismatch`. The dtype may differ (as in PyTorch's copy); `source` names the
  /// file in errors.
  public static func load(_ tensors: [String: StoredTensor], into namedParameters: [NamedParameter],
                          source: String) throws {
    var missing: [String] = [], wrongShapes: [ShapeMismatch] = []
    for (name, parameter) in namedParameters {
      guard let stored = tensors[name] else {
        missing.append(name)
        continue
      }
      if stored.value.shape != parameter.exportedShape {
        wrongShapes.append(ShapeMismatch(name: name, expected: parameter.exportedShape, found: stored.value.shape))
      }
    }
    let known = Set(namedParameters.map(\.name))
    let unexpected = tensors.keys.filter { !known.contains($0) }.sorted()
    guard missing.isEmpty, unexpected.isEmpty, wrongShapes.isEmpty else {
      throw CheckpointError.stateDictMismatch(path: source, missing: missing, unexpected: unexpected,
                                              wrongShapes: wrongShapes)
    }
    for (name, parameter) in namedParameters {
      parameter.importValue(tensors[name]!.value)
    }
  }

  /// Writes the state dict of `namedParameters` with `metadata` as a safetensors file.
  public static func save(_ namedParameters: [NamedParameter], metadata: [String: String] = [:],
                          to url: URL) throws {
    try SafeTensors(tensors: tensors(of: namedParameters), metadata: metadata).write(to: url)
  }

  /// Loads a safetensors file strictly into `namedParameters` and returns the file's metadata.
  @discardableResult
  public static func load(from url: URL, into namedParameters: [NamedParameter]) throws -> [String: String] {
    let file = try SafeTensors(contentsOf: url)
    try load(file.tensors, into: namedParameters, source: url.path)
    return file.metadata
  }
}

extension Layer {
  /// This layer's state dict in PyTorch's layout.
  public func stateDict() -> [String: StoredTensor] { StateDict.tensors(of: namedParameters) }

  /// Loads a state dict strictly (see `StateDict.load(_:into:source:)`).
  public func loadStateDict(_ tensors: [String: StoredTensor], source: String) throws {
    try StateDict.load(tensors, into: namedParameters, source: source)
  }
}
