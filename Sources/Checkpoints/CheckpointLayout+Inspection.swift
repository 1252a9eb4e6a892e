// What `simsiam-bench checkpoint inspect` prints for any container: layout, counts, architecture, epoch, metadata.

/// A description of a checkpoint's contents. Unlike loading, it never fails on an unknown layout: it says so.
public struct CheckpointInspection: Sendable {
  public var contents: CheckpointContents
  /// The file size, when known.
  public var byteCount: Int?
  /// SHA-256 of the file, hex; filled in by the caller that read the file (the CLI).
  public var sha256: String?
  /// The state-dict root the counts refer to.
  public var root: String
  /// The mapped checkpoint, or nil when no layout fits (`layoutProblem` says why).
  public var mapped: MappedCheckpoint?
  public var layoutProblem: String?

  public init(_ contents: CheckpointContents, byteCount: Int? = nil, layout: CheckpointLayout? = nil,
              prefix: String? = nil) {
    self.contents = contents
    self.byteCount = byteCount
    do {
      root = try CheckpointLayout.root(of: contents, prefix: prefix)
      mapped = try MappedCheckpoint(contents, layout: layout, prefix: prefix)
    } catch {
      root = (try? CheckpointLayout.root(of: contents)) ?? ""
      mapped = nil
      layoutProblem = String(describing: error)
    }
  }

  /// Tensors under the state-dict root, by their full names.
  public var stateDictTensors: [String: StoredTensor] { contents.tensors.filter { $0.key.hasPrefix(root) } }

  /// Elements of the learnable state-dict tensors (BatchNorm running statistics and counters excluded).
  public var parameterCount: Int {
    stateDictTensors.filter { !StateDictNames.isBuffer($0.key) }.reduce(0) { $0 + $1.value.value.count }
  }

  /// The human-readable report; `listingTensors` adds one line per tensor.
  public func rendered(listingTensors: Bool = false) -> String {
    let stateDict = stateDictTensors
    let dtypeCounts = stateDict.values.reduce(into: [String: Int]()) { $0[$1.dtype.rawValue, default: 0] += 1 }
    let dtypes = dtypeCounts.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
    let scalarCount = stateDict.values.reduce(0) { $0 + $1.value.count }
    let outside = contents.tensors.count - stateDict.count
    var lines = ["file:        \(contents.source)",
                 "format:      \(contents.format == .safetensors ? "safetensors" : "PyTorch zip (torch.save)")"]
    if let byteCount { lines.append("size:        \(byteCount) bytes") }
    if let sha256 { lines.append("sha256:      \(sha256)") }
    if let mapped {
      lines.append("layout:      \(mapped.layout.displayName) (\(mapped.layout.rawValue))"
                     + (root.isEmpty ? "" : ", state dict under '\(root)'"))
    } else {
      lines.append("layout:      not recognised: \(layoutProblem ?? "")")
    }
    lines.append("tensors:     \(stateDict.count) (\(dtypes))"
                   + (outside > 0 ? "; \(outside) more outside the state dict (optimizer state etc.)" : ""))
    lines.append("parameters:  \(parameterCount) (all scalars incl. BN running statistics: \(scalarCount))")
    if let mapped {
      lines.append("arch:        \(mapped.architecture.map(String.init(describing:)) ?? "unknown (no conv1.weight)")")
      lines.append("parts:       backbone \(mapped.backboneTensors.count) tensors, projector "
                     + "\(mapped.projectorTensors.count), predictor \(mapped.predictorTensors.count)")
    }
    if let epoch = contents.epoch { lines.append("epoch:       \(epoch)") }

    if !stateDict.isEmpty {
      lines.append("modules:")
      var groups: [(prefix: String, tensors: Int, scalars: Int)] = []
      for (name, tensor) in stateDict.sorted(by: { $0.key < $1.key }) {
        let prefix = groupName(String(name.dropFirst(root.count)))
        if groups.last?.prefix != prefix { groups.append((prefix, 0, 0)) }
        groups[groups.count - 1].tensors += 1
        groups[groups.count - 1].scalars += tensor.value.count
      }
      let width = groups.map(\.prefix.count).max() ?? 0
      for group in groups {
        lines.append("  \(group.prefix.padding(toLength: width, withPad: " ", startingAt: 0))  "
                       + "\(counted(group.tensors, "tensor")), \(counted(group.scalars, "scalar"))")
      }
    }
    if listingTensors && !contents.tensors.isEmpty {
      lines.append("tensors:")
      let width = contents.tensors.keys.map(\.count).max() ?? 0
      for (name, tensor) in contents.tensors.sorted(by: { $0.key < $1.key }) {
        lines.append("  \(name.padding(toLength: width, withPad: " ", startingAt: 0))  "
                       + "\(tensor.dtype.rawValue) \(tensor.value.shape)")
      }
    }
    if contents.values.isEmpty {
      lines.append("metadata:    (none)")
    } else {
      lines.append("metadata:")
      for (key, value) in contents.values.sorted(by: { $0.key < $1.key }) { lines.append("  \(key) = \(short(value))") }
    }
    return lines.joined(separator: "\n")
  }

  /// The module a state-dict key belongs to: its first component, or two for wrappers (`module.encoder`,
  /// `encoder.0`, `head.predictor`).
  private func groupName(_ key: String) -> String {
    let parts = key.split(separator: ".")
    guard parts.count > 2, ["module", "encoder", "head"].contains(parts[0]) else { return String(parts.first ?? "") }
    return "\(parts[0]).\(parts[1])"
  }
}

/// "1 tensor", "3 tensors".
private func counted(_ count: Int, _ noun: String) -> String { "\(count) \(noun)\(count == 1 ? "" : "s")" }

/// One line of at most 100 characters (mmcv stores the whole config text in `meta.config`).
private func short(_ value: String) -> String {
  let firstLine = value.prefix { $0 != "\n" }
  guard firstLine.count < value.count || value.count > 100 else { return value }
  return "\(firstLine.prefix(100))… (\(value.count) characters)"
}
