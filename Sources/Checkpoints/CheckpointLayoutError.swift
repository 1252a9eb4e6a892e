// Errors of layout detection, name mapping and strict loading. Every message names the file and the layout.

/// An error recognising a checkpoint's layout or loading it into a model.
public enum CheckpointLayoutError: Error, Equatable, CustomStringConvertible {
  /// The file is neither safetensors nor a zip-format PyTorch checkpoint.
  case unrecognizedFile(path: String, reason: String)
  /// No known layout matches the keys; `suggestedPrefix` is a prefix under which torchvision names were found.
  case undetectedLayout(path: String, sampleKeys: [String], suggestedPrefix: String?)
  /// `--layout` or `--prefix` named something the file does not contain.
  case layoutNotFound(path: String, layout: String, reason: String)
  /// MMSelfSup 0.x duplicates (`encoder.0.*` / `backbone.*`, `encoder.1.*` / `neck.*`) that differ.
  case duplicatesDiffer(path: String, keys: [String])
  /// Strict loading failed: the (mapped) checkpoint does not match the model.
  case mismatch(path: String, layout: String, missing: [String], unexpected: [String], wrongShapes: [ShapeMismatch])
  /// Reading `.pth` files is not available in this build.
  case pytorchUnavailable(path: String)

  public var description: String {
    switch self {
    case let .unrecognizedFile(path, reason):
      return "Checkpoint \(path) is not a checkpoint this tool reads: \(reason)."
    case let .undetectedLayout(path, sampleKeys, suggestedPrefix):
      var text = "Checkpoint \(path) has no known layout (torchvision, MMSelfSup 0.x/1.x, MMSelfSup backbone, "
        + "official SimSiam, simsiam-bench); its keys begin \(listedKeys(sampleKeys, limit: 6)). "
      if let suggestedPrefix {
        text += "torchvision ResNet names appear under '\(suggestedPrefix)': try --prefix \(suggestedPrefix)"
      } else {
        text += "Use --prefix to name where the ResNet's torchvision-named tensors are, or --layout to force one."
      }
      return text
    case let .layoutNotFound(path, layout, reason):
      return "Checkpoint \(path) does not have the \(layout) layout: \(reason). Run `simsiam-bench checkpoint "
        + "inspect --tensors` to see its keys, and drop or change --layout/--prefix."
    case let .duplicatesDiffer(path, keys):
      return "Checkpoint \(path) (MMSelfSup 0.x) holds the encoder twice, as encoder.0/encoder.1 and as "
        + "backbone/neck, but these differ: \(listedKeys(keys)). The file is inconsistent; re-extract it with "
        + "MMSelfSup's tools/model_converters/extract_backbone_weights.py or pass --prefix state_dict.backbone."
    case let .mismatch(path, layout, missing, unexpected, wrongShapes):
      var parts: [String] = []
      if !missing.isEmpty { parts.append("missing \(missing.count): \(listedKeys(missing))") }
      if !unexpected.isEmpty { parts.append("unexpected \(unexpected.count): \(listedKeys(unexpected))") }
      if !wrongShapes.isEmpty {
        parts.append("wrong shape \(wrongShapes.count): \(listedKeys(wrongShapes.map(\.description)))")
      }
      return "Checkpoint \(path) (detected layout: \(layout)) does not match the model; "
        + parts.joined(separator: "; ")
        + ". Check the architecture (`checkpoint inspect` guesses it), force another layout with --layout or "
        + "--prefix, or pass --allow-missing to load what matches."
    case let .pytorchUnavailable(path):
      return "Checkpoint \(path) is a PyTorch zip file, but this build cannot read .pth files yet. Convert it to "
        + "safetensors in Python: safetensors.torch.save_file(torch.load(path)['state_dict'], out)."
    }
  }
}

/// The first few keys, then how many more.
func listedKeys(_ names: [String], limit: Int = 12) -> String {
  let shown = names.prefix(limit).joined(separator: ", ")
  return names.count > limit ? "\(shown), … and \(names.count - limit) more" : shown
}
