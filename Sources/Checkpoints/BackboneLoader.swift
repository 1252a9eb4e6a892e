// The one loader every evaluator uses: a checkpoint in any known layout → our ResNet (or whole SimSiam),
// strict by default like `load_state_dict(strict=True)`, with a report of what was loaded and skipped.
import Layers
import Tensors

/// What a load did: the detected layout, what was loaded, and everything skipped or ignored.
public struct LoadReport: Sendable, Equatable {
  public var source: String
  public var layout: CheckpointLayout
  /// The stripped state-dict root ("", "state_dict." or a `--prefix`).
  public var root: String
  /// Model keys loaded from the file.
  public var loaded: [String]
  /// Model keys the file lacks (only with `allowMissing`; strict loading throws instead).
  public var missing: [String]
  /// File tensors (in the model's names) the model has no slot for (only with `allowMissing`).
  public var unexpected: [String]
  /// Tensors skipped because their shapes differ (only with `allowMissing`).
  public var wrongShapes: [ShapeMismatch]
  /// `num_batches_tracked` counters absent from the file (torchvision's older model-zoo files), set to 0 as
  /// PyTorch's `_BatchNorm._load_from_state_dict` does for state dicts saved before the counter existed.
  public var defaulted: [String]
  /// File tensors deliberately not loaded (classifier, optimizer state, duplicates, the other parts of SimSiam).
  public var ignored: [IgnoredTensor]
  /// SHA-256 of the file, hex. Filled in by the caller (the CLI), which reads the file; nil until then.
  public var sha256: String?

  /// True when every model key was loaded from the file with the right shape.
  public var isComplete: Bool { missing.isEmpty && unexpected.isEmpty && wrongShapes.isEmpty }

  /// A few lines for the run log: layout, counts, and the skipped keys.
  public func rendered() -> String {
    var lines = ["checkpoint: \(source)",
                 "layout:     \(layout.displayName) (\(layout.rawValue))\(root.isEmpty ? "" : ", under '\(root)'")",
                 "loaded:     \(loaded.count) tensors"]
    if let sha256 { lines.insert("sha256:     \(sha256)", at: 1) }
    if !defaulted.isEmpty { lines.append("defaulted:  \(defaulted.count) num_batches_tracked counters set to 0") }
    if !missing.isEmpty { lines.append("SKIPPED, missing from the file (\(missing.count)): \(listedKeys(missing))") }
    if !unexpected.isEmpty {
      lines.append("SKIPPED, not in the model (\(unexpected.count)): \(listedKeys(unexpected))")
    }
    if !wrongShapes.isEmpty {
      lines.append("SKIPPED, wrong shape (\(wrongShapes.count)): \(listedKeys(wrongShapes.map(\.description)))")
    }
    if !ignored.isEmpty { lines.append("ignored:    \(ignored.count) file tensors (\(ignoredSummary))") }
    return lines.joined(separator: "\n")
  }

  /// Ignored tensors counted by reason, e.g. "2 × the ImageNet classifier, not part of the backbone".
  private var ignoredSummary: String {
    var counts: [(String, Int)] = []
    for item in ignored {
      if let index = counts.firstIndex(where: { $0.0 == item.reason }) { counts[index].1 += 1 } else {
        counts.append((item.reason, 1))
      }
    }
    return counts.map { "\($0.1) × \($0.0)" }.joined(separator: "; ")
  }
}

/// Loads checkpoints of any `CheckpointLayout` into our models.
public enum BackboneLoader {
  /// Loads the backbone of `checkpoint` into `backbone` (our `ResNet`, whose names are torchvision's).
  ///
  /// Strict unless `allowMissing`: missing, unexpected and wrong-shape backbone tensors throw
  /// `CheckpointLayoutError.mismatch` naming every key and the detected layout, and nothing is changed. With
  /// `allowMissing` it loads what matches and the report lists the rest. The projector and predictor of a full
  /// checkpoint are listed as ignored.
  public static func load(_ checkpoint: MappedCheckpoint, into backbone: some Layer,
                          allowMissing: Bool = false) throws -> LoadReport {
    var report = try load(checkpoint.backboneTensors, into: backbone.namedParameters, checkpoint: checkpoint,
                          allowMissing: allowMissing)
    let others = checkpoint.tensors.keys.filter { !$0.hasPrefix(MappedCheckpoint.backbonePrefix) }.sorted()
    report.ignored += others.map { IgnoredTensor(name: $0, reason: "projector or predictor, not loaded into a backbone") }
    return report
  }

  /// Detects the layout of `contents` (or uses `layout` / `prefix`), maps it and loads the backbone.
  public static func load(_ contents: CheckpointContents, into backbone: some Layer, layout: CheckpointLayout? = nil,
                          prefix: String? = nil, allowMissing: Bool = false) throws -> LoadReport {
    try load(MappedCheckpoint(contents, layout: layout, prefix: prefix), into: backbone, allowMissing: allowMissing)
  }

  /// Loads backbone, projector and predictor into a SimSiam model's `namedParameters` (`backbone.*`, `neck.*`,
  /// `head.predictor.*`), with the same strictness. A backbone-only file is missing the projector and
  /// predictor, so it needs `allowMissing`.
  public static func loadSimSiam(_ checkpoint: MappedCheckpoint, into namedParameters: [NamedParameter],
                                 allowMissing: Bool = false) throws -> LoadReport {
    try load(checkpoint.tensors, into: namedParameters, checkpoint: checkpoint, allowMissing: allowMissing)
  }

  /// The matching core: `tensors` and `namedParameters` use the same names.
  static func load(_ tensors: [String: StoredTensor], into namedParameters: [NamedParameter],
                   checkpoint: MappedCheckpoint, allowMissing: Bool) throws -> LoadReport {
    var matched: [NamedParameter] = [], missing: [String] = [], defaulted: [NamedParameter] = []
    var wrongShapes: [ShapeMismatch] = []
    for (name, parameter) in namedParameters {
      guard let stored = tensors[name] else {
        if name.hasSuffix(".num_batches_tracked") { defaulted.append((name, parameter)) } else { missing.append(name) }
        continue
      }
      if stored.value.shape == parameter.exportedShape {
        matched.append((name, parameter))
      } else {
        wrongShapes.append(ShapeMismatch(name: name, expected: parameter.exportedShape, found: stored.value.shape))
      }
    }
    let known = Set(namedParameters.map(\.name))
    let unexpected = tensors.keys.filter { !known.contains($0) }.sorted()
    if !allowMissing && !(missing.isEmpty && unexpected.isEmpty && wrongShapes.isEmpty) {
      throw CheckpointLayoutError.mismatch(path: checkpoint.source, layout: checkpoint.layout.displayName,
                                           missing: missing, unexpected: unexpected, wrongShapes: wrongShapes)
    }
    for (name, parameter) in matched { parameter.importValue(tensors[name]!.value) }
    for (_, parameter) in defaulted { parameter.importValue(.zeros(parameter.exportedShape)) }
    return LoadReport(source: checkpoint.source, layout: checkpoint.layout, root: checkpoint.root,
                      loaded: matched.map(\.name), missing: missing, unexpected: unexpected,
                      wrongShapes: wrongShapes, defaulted: defaulted.map(\.name), ignored: checkpoint.ignored,
                      sha256: nil)
  }
}
