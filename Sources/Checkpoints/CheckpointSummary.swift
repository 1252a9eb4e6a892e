// What `simsiam-bench checkpoint inspect` prints: counts, shapes by module and metadata, from the header alone.
import Foundation
import Tensors

/// A summary of a safetensors file, computed from its header without reading the tensor data.
public struct CheckpointSummary: Sendable, Equatable {
  /// Tensors and scalars under one top-level module name (`layer1`, `fc`, …).
  public struct Group: Sendable, Equatable {
    public var prefix: String
    public var tensorCount: Int
    public var scalarCount: Int
  }

  public var path: String
  public var byteCount: Int
  public var entries: [SafeTensorsEntry]
  public var metadata: [String: String]

  public init(header: SafeTensorsHeader, path: String) {
    self.path = path
    self.byteCount = header.dataStart + header.dataByteCount
    self.entries = header.entries
    self.metadata = header.metadata
  }

  /// Reads the header of `url` and summarises it.
  public init(contentsOf url: URL) throws {
    self.init(header: try SafeTensors.readHeader(of: url), path: url.path)
  }

  public var tensorCount: Int { entries.count }
  /// Elements over all tensors, buffers included.
  public var scalarCount: Int { entries.reduce(0) { $0 + $1.elementCount } }
  /// Elements of the learnable tensors: everything but BatchNorm's running statistics and counters.
  public var parameterCount: Int {
    entries.filter { !StateDictNames.isBuffer($0.name) }.reduce(0) { $0 + $1.elementCount }
  }

  /// Tensor counts per dtype, e.g. ["F32": 318, "I64": 53].
  public var dtypeCounts: [String: Int] {
    entries.reduce(into: [:]) { $0[$1.dtype.rawValue, default: 0] += 1 }
  }

  /// Groups by the first component of the name, in order of first appearance in name order.
  public var groups: [Group] {
    var groups: [Group] = []
    var indexOf: [String: Int] = [:]
    for entry in entries {
      let prefix = String(entry.name.split(separator: ".", maxSplits: 1).first ?? Substring(entry.name))
      if indexOf[prefix] == nil {
        indexOf[prefix] = groups.count
        groups.append(Group(prefix: prefix, tensorCount: 0, scalarCount: 0))
      }
      groups[indexOf[prefix]!].tensorCount += 1
      groups[indexOf[prefix]!].scalarCount += entry.elementCount
    }
    return groups
  }

  /// The human-readable report; `listingTensors` adds one line per tensor.
  public func rendered(listingTensors: Bool = false) -> String {
    let dtypes = dtypeCounts.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
    var lines = [
      "file:        \(path)",
      "size:        \(byteCount) bytes",
      "tensors:     \(tensorCount) (\(dtypes))",
      "parameters:  \(parameterCount) (all scalars incl. BN running statistics: \(scalarCount))",
    ]
    if !entries.isEmpty {
      lines.append("modules:")
      let width = groups.map(\.prefix.count).max() ?? 0
      for group in groups {
        lines.append("  \(group.prefix.padding(toLength: width, withPad: " ", startingAt: 0))  "
                       + "\(counted(group.tensorCount, "tensor")), \(counted(group.scalarCount, "scalar"))")
      }
    }
    if listingTensors && !entries.isEmpty {
      lines.append("tensors:")
      let width = entries.map(\.name.count).max() ?? 0
      for entry in entries {
        lines.append("  \(entry.name.padding(toLength: width, withPad: " ", startingAt: 0))  "
                       + "\(entry.dtype.rawValue) \(entry.shape)")
      }
    }
    if metadata.isEmpty {
      lines.append("metadata:    (none)")
    } else {
      lines.append("metadata:")
      for (key, value) in metadata.sorted(by: { $0.key < $1.key }) { lines.append("  \(key) = \(value)") }
    }
    return lines.joined(separator: "\n")
  }
}

/// "1 tensor", "3 tensors".
private func counted(_ count: Int, _ noun: String) -> String { "\(count) \(noun)\(count == 1 ? "" : "s")" }

/// Conventions of PyTorch state-dict keys.
public enum StateDictNames {
  /// True for BatchNorm's buffers (`running_mean`, `running_var`, `num_batches_tracked`).
  public static func isBuffer(_ name: String) -> Bool {
    name.hasSuffix(".running_mean") || name.hasSuffix(".running_var") || name.hasSuffix(".num_batches_tracked")
  }
}
