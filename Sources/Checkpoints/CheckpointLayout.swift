// The key layouts of the ResNet / SimSiam checkpoints users bring (PROTOCOLS §6), detected from the keys and
// mapped onto our names: torchvision names for the backbone (`ResNet.namedParameters`), MMSelfSup's
// `neck.*` / `head.predictor.*` names for the projector and predictor (`SimSiam.namedParameters`).

/// Where a checkpoint's tensors come from, and so how their names map onto ours.
public enum CheckpointLayout: String, CaseIterable, Sendable, Codable {
  /// `torch.save(resnet.state_dict())`: `conv1.weight`, `layer1.0.bn1.running_mean`, …; `fc.*` is the
  /// classifier and is ignored. Also any file whose backbone is found with `--prefix`.
  case torchvision = "torchvision"
  /// MMSelfSup 0.x `epoch_N.pth`: `state_dict` holds `backbone.*`, `neck.*`, `head.predictor.*` and again the
  /// backbone and neck as `encoder.0.*` / `encoder.1.*` (0.x `SimSiam.encoder = Sequential(backbone, neck)`).
  case mmselfsupTraining0x = "mmselfsup-0.x"
  /// MMSelfSup model-zoo or `extract_backbone_weights.py` output: `{'state_dict': {conv1.weight, …}}`.
  case mmselfsupBackbone = "mmselfsup-backbone"
  /// MMSelfSup 1.x: `state_dict` holds `backbone.*`, `neck.*`, `head.predictor.*`.
  case mmselfsup1x = "mmselfsup-1.x"
  /// facebookresearch/simsiam `checkpoint_NNNN.pth.tar`: `module.encoder.*` (torchvision names, with the
  /// projector as `fc.*`) and `module.predictor.*`, saved under DistributedDataParallel.
  case officialSimSiam = "official-simsiam"
  /// simsiam-bench's own safetensors: `backbone.*`, `neck.*`, `head.predictor.*` (the MMSelfSup 1.x names).
  case ours = "ours"

  /// A human-readable name for reports and errors.
  public var displayName: String {
    switch self {
    case .torchvision: "torchvision ResNet"
    case .mmselfsupTraining0x: "MMSelfSup 0.x training checkpoint"
    case .mmselfsupBackbone: "MMSelfSup backbone-only (model zoo / extracted)"
    case .mmselfsup1x: "MMSelfSup 1.x"
    case .officialSimSiam: "official SimSiam (facebookresearch/simsiam)"
    case .ours: "simsiam-bench safetensors"
    }
  }

  /// The key prefix under which a container keeps its state dict, as mmcv and the official code save it.
  static let stateDictRoot = "state_dict."

  /// The state-dict root of `contents`: `prefix` if given (with a final "." added), else `state_dict.` when
  /// the file has tensors under it, else the top level.
  ///
  /// A prefix is looked up from the top of the file first, then under `state_dict.`, so both
  /// `--prefix state_dict.module.encoder_q` and `--prefix module.encoder_q` work for a MoCo checkpoint.
  public static func root(of contents: CheckpointContents, prefix: String? = nil) throws -> String {
    if let prefix, !prefix.isEmpty {
      let dotted = prefix.hasSuffix(".") ? prefix : prefix + "."
      for candidate in [dotted, stateDictRoot + dotted] where contents.tensors.keys.contains(where: {
        $0.hasPrefix(candidate)
      }) {
        return candidate
      }
      throw CheckpointLayoutError.layoutNotFound(path: contents.source, layout: "--prefix \(prefix)",
                                                 reason: "no tensor name starts with '\(dotted)'")
    }
    return contents.tensors.keys.contains(where: { $0.hasPrefix(stateDictRoot) }) ? stateDictRoot : ""
  }

  /// The layout of the state-dict `keys` (root already stripped), or nil when none fits.
  ///
  /// Rules, first match wins: `module.encoder.*` → official SimSiam; `encoder.0.*` → MMSelfSup 0.x;
  /// `backbone.*` → ours for safetensors, MMSelfSup 1.x otherwise; `conv1.weight` → MMSelfSup backbone-only
  /// inside a `state_dict`, torchvision otherwise.
  public static func detect(keys: some Collection<String>, format: CheckpointContents.Format,
                            root: String) -> CheckpointLayout? {
    if keys.contains(where: { $0.hasPrefix("module.encoder.") }) { return .officialSimSiam }
    if keys.contains(where: { $0.hasPrefix("encoder.0.") }) { return .mmselfsupTraining0x }
    if keys.contains(where: { $0.hasPrefix("backbone.") }) { return format == .safetensors ? .ours : .mmselfsup1x }
    if keys.contains("conv1.weight") { return root == stateDictRoot ? .mmselfsupBackbone : .torchvision }
    return nil
  }

  /// A prefix under which torchvision ResNet names appear (`module.encoder_q.` for MoCo), for error hints:
  /// of the prefixes of a stem `conv1.weight`, the one holding the most tensors.
  static func suggestedPrefix(_ keys: some Collection<String>) -> String? {
    let candidates = keys.filter { $0.hasSuffix(".conv1.weight") && !$0.contains("layer") }
      .map { String($0.dropLast("conv1.weight".count)) }.sorted()
    return candidates.max { prefix, other in
      keys.count(where: { $0.hasPrefix(prefix) }) < keys.count(where: { $0.hasPrefix(other) })
    }
  }
}

/// A tensor of the file that is not loaded, and why.
public struct IgnoredTensor: Sendable, Equatable, CustomStringConvertible {
  public var name: String
  public var reason: String

  public init(name: String, reason: String) {
    self.name = name
    self.reason = reason
  }

  public var description: String { "\(name): \(reason)" }
}

/// A checkpoint with its tensors renamed to ours, and the record of what was left out.
public struct MappedCheckpoint: Sendable, Equatable {
  public var source: String
  public var layout: CheckpointLayout
  /// The stripped state-dict root: "", "state_dict." or the `--prefix`.
  public var root: String
  /// Our names: `backbone.<torchvision name>`, `neck.{fc0,bn0,…}.*`, `head.predictor.{fc0,bn0,fc1}.*`.
  public var tensors: [String: StoredTensor]
  /// Tensors of the file that map to nothing, with the reason (classifier, optimizer state, duplicates, …).
  public var ignored: [IgnoredTensor]
  /// Scalars of the file (epoch, arch, metadata), unchanged.
  public var values: [String: String]

  public static let backbonePrefix = "backbone."
  public static let projectorPrefix = "neck."
  public static let predictorPrefix = "head.predictor."

  /// Maps `contents` onto our names.
  ///
  /// - Parameters:
  ///   - layout: forces a layout instead of detecting it (`--layout`).
  ///   - prefix: the state-dict root (`--prefix`); tensors outside it are ignored. With a prefix and no layout
  ///     the detection still runs on the keys under it, so torchvision names under it give `.torchvision`.
  /// - Throws: `CheckpointLayoutError` when no layout fits, a forced one is absent, or MMSelfSup 0.x
  ///   duplicates differ.
  public init(_ contents: CheckpointContents, layout forcedLayout: CheckpointLayout? = nil,
              prefix: String? = nil) throws {
    let root = try CheckpointLayout.root(of: contents, prefix: prefix)
    var stateDict: [String: StoredTensor] = [:]
    var ignored: [IgnoredTensor] = []
    for (name, tensor) in contents.tensors {
      if name.hasPrefix(root) {
        stateDict[String(name.dropFirst(root.count))] = tensor
      } else {
        ignored.append(IgnoredTensor(name: name, reason: "outside the state dict '\(root)' (e.g. optimizer state)"))
      }
    }
    let detected = CheckpointLayout.detect(keys: stateDict.keys, format: contents.format, root: root)
    guard let layout = forcedLayout ?? detected else {
      throw CheckpointLayoutError.undetectedLayout(
        path: contents.source, sampleKeys: contents.tensors.keys.sorted(),
        suggestedPrefix: CheckpointLayout.suggestedPrefix(contents.tensors.keys))
    }

    var mapped: [String: StoredTensor] = [:]
    switch layout {
    case .torchvision, .mmselfsupBackbone:
      guard stateDict["conv1.weight"] != nil else {
        throw CheckpointLayoutError.layoutNotFound(path: contents.source, layout: layout.rawValue,
                                                   reason: "there is no 'conv1.weight' under '\(root)'")
      }
      for (name, tensor) in stateDict {
        if name.hasPrefix("fc.") {
          ignored.append(IgnoredTensor(name: root + name, reason: "the ImageNet classifier, not part of the backbone"))
        } else {
          mapped[MappedCheckpoint.backbonePrefix + name] = tensor
        }
      }
    case .mmselfsup1x, .ours:
      try Self.requirePrefix("backbone.", in: stateDict, layout: layout, source: contents.source, root: root)
      Self.keepOurNames(stateDict, root: root, into: &mapped, ignored: &ignored, layout: layout)
    case .mmselfsupTraining0x:
      try Self.requirePrefix("encoder.0.", in: stateDict, layout: layout, source: contents.source, root: root)
      var primary: [String: StoredTensor] = [:], duplicates: [String: StoredTensor] = [:]
      for (name, tensor) in stateDict {
        if name.hasPrefix("encoder.0.") {
          duplicates[MappedCheckpoint.backbonePrefix + name.dropFirst("encoder.0.".count)] = tensor
        } else if name.hasPrefix("encoder.1.") {
          duplicates[MappedCheckpoint.projectorPrefix + name.dropFirst("encoder.1.".count)] = tensor
        } else {
          primary[name] = tensor
        }
      }
      Self.keepOurNames(primary, root: root, into: &mapped, ignored: &ignored, layout: layout)
      // The same Parameter objects are reachable under both names, so the file must hold equal copies.
      var differing: [String] = []
      for (name, copy) in duplicates.sorted(by: { $0.key < $1.key }) {
        let fileName = root + (name.hasPrefix(MappedCheckpoint.backbonePrefix)
          ? "encoder.0." + name.dropFirst(MappedCheckpoint.backbonePrefix.count)
          : "encoder.1." + name.dropFirst(MappedCheckpoint.projectorPrefix.count))
        if let original = mapped[name] {
          if original.value == copy.value {
            ignored.append(IgnoredTensor(name: fileName, reason: "encoder.0/encoder.1 copy identical to its backbone./neck. twin"))
          } else {
            differing.append("\(fileName) ≠ \(root + name)")
          }
        } else {
          mapped[name] = copy  // only the encoder.* copy was saved
        }
      }
      guard differing.isEmpty else {
        throw CheckpointLayoutError.duplicatesDiffer(path: contents.source, keys: differing)
      }
    case .officialSimSiam:
      try Self.requirePrefix("module.encoder.", in: stateDict, layout: layout, source: contents.source, root: root)
      Self.mapOfficial(stateDict, root: root, into: &mapped, ignored: &ignored)
    }
    self.source = contents.source
    self.layout = layout
    self.root = root
    self.tensors = mapped
    self.ignored = ignored.sorted { $0.name < $1.name }
    self.values = contents.values
  }

  /// The backbone under torchvision names (our `ResNet.namedParameters`), without prefix.
  public var backboneTensors: [String: StoredTensor] { stripping(MappedCheckpoint.backbonePrefix) }
  /// The projector under our `Projector.namedParameters` names (`fc0.weight`, `bn0.running_mean`, …).
  public var projectorTensors: [String: StoredTensor] { stripping(MappedCheckpoint.projectorPrefix) }
  /// The predictor under our `Predictor.namedParameters` names.
  public var predictorTensors: [String: StoredTensor] { stripping(MappedCheckpoint.predictorPrefix) }

  /// The ResNet the backbone tensors describe, or nil without `conv1.weight`.
  public var architecture: ArchitectureGuess? { ArchitectureGuess(backbone: backboneTensors) }

  private func stripping(_ prefix: String) -> [String: StoredTensor] {
    var result: [String: StoredTensor] = [:]
    for (name, tensor) in tensors where name.hasPrefix(prefix) { result[String(name.dropFirst(prefix.count))] = tensor }
    return result
  }

  // MARK: - Per-layout rules

  private static func requirePrefix(_ prefix: String, in stateDict: [String: StoredTensor], layout: CheckpointLayout,
                                    source: String, root: String) throws {
    guard stateDict.keys.contains(where: { $0.hasPrefix(prefix) }) else {
      throw CheckpointLayoutError.layoutNotFound(path: source, layout: layout.rawValue,
                                                 reason: "no tensor name starts with '\(root + prefix)'")
    }
  }

  /// Keeps `backbone.*`, `neck.*`, `head.predictor.*` as they are; anything else is ignored.
  private static func keepOurNames(_ stateDict: [String: StoredTensor], root: String,
                                   into mapped: inout [String: StoredTensor], ignored: inout [IgnoredTensor],
                                   layout: CheckpointLayout) {
    let kept = [backbonePrefix, projectorPrefix, predictorPrefix]
    for (name, tensor) in stateDict {
      if kept.contains(where: { name.hasPrefix($0) }) {
        mapped[name] = tensor
      } else {
        ignored.append(IgnoredTensor(name: root + name,
                                     reason: "not a backbone, neck or head.predictor tensor of \(layout.displayName)"))
      }
    }
  }

  /// The official projector `module.encoder.fc` = Sequential(Linear, BN, ReLU, Linear, BN, ReLU, Linear, BN):
  /// indices of the modules with tensors → MMSelfSup's `NonLinearNeck` names (PROTOCOLS §6).
  static let officialProjectorNames = ["0": "fc0", "1": "bn0", "3": "fc1", "4": "bn1", "6": "fc2", "7": "bn2"]
  /// The official predictor `module.predictor` = Sequential(Linear, BN, ReLU, Linear) → MMSelfSup's names.
  static let officialPredictorNames = ["0": "fc0", "1": "bn0", "3": "fc1"]

  private static func mapOfficial(_ stateDict: [String: StoredTensor], root: String,
                                  into mapped: inout [String: StoredTensor], ignored: inout [IgnoredTensor]) {
    /// "6.weight" → ("6", "weight") → "fc2.weight" through `names`, or nil.
    func renamed(_ rest: Substring, _ names: [String: String]) -> String? {
      let parts = rest.split(separator: ".", maxSplits: 1)
      guard parts.count == 2, let module = names[String(parts[0])] else { return nil }
      return "\(module).\(parts[1])"
    }
    var lastBias: (name: String, tensor: StoredTensor)?
    for (name, tensor) in stateDict {
      if name.hasPrefix("module.encoder.fc.") {
        let rest = name.dropFirst("module.encoder.fc.".count)
        if rest == "6.bias" {
          lastBias = (root + name, tensor)
        } else if let ours = renamed(rest, officialProjectorNames) {
          mapped[projectorPrefix + ours] = tensor
        } else {
          ignored.append(IgnoredTensor(name: root + name, reason: "no projector slot for it"))
        }
      } else if name.hasPrefix("module.encoder.") {
        mapped[backbonePrefix + name.dropFirst("module.encoder.".count)] = tensor
      } else if name.hasPrefix("module.predictor."),
                let ours = renamed(name.dropFirst("module.predictor.".count), officialPredictorNames) {
        mapped[predictorPrefix + ours] = tensor
      } else {
        ignored.append(IgnoredTensor(name: root + name, reason: "not part of the official SimSiam encoder or predictor"))
      }
    }
    // fc.6 is torchvision's original `fc` (Linear with bias) reused as the projector's last layer; the official
    // code freezes its bias ("not use bias as it is followed by BN"), so it keeps its random initial value.
    // MMSelfSup's neck.fc2 has no bias. In training BN subtracts the batch mean, so the bias cancels; at
    // inference bn2 subtracts running_mean, which was accumulated from outputs *with* the bias, so dropping it
    // would shift z by −bias/√(running_var + ε). Folding it into the running mean keeps inference exact:
    // (Wx + b) − μ = Wx − (μ − b).
    if let (name, bias) = lastBias {
      let meanName = projectorPrefix + "bn2.running_mean"
      if let mean = mapped[meanName], mean.value.shape == bias.value.shape {
        var folded = mean
        folded.value.scalars = zip(mean.value.scalars, bias.value.scalars).map { $0 - $1 }
        mapped[meanName] = folded
        ignored.append(IgnoredTensor(
          name: name, reason: "folded into neck.bn2.running_mean (MMSelfSup's neck.fc2 has no bias; exact in eval)"))
      } else {
        ignored.append(IgnoredTensor(
          name: name, reason: "dropped: MMSelfSup's neck.fc2 has no bias and there is no bn2 running mean to fold "
            + "it into (no effect in training, shifts z at inference)"))
      }
    }
  }
}
