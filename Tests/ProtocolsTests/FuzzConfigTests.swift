// Seeded, time-bounded fuzzing of the YAML config loaders (issue 14 "Done when"): for the pretraining config and
// each benchmark config (voc-svm, linear, knn, fcn, faster-rcnn), 10,000 mutations of the committed config files —
// numbers replaced by huge, negative, NaN, infinite or non-numeric values, keys dropped and duplicated, nesting
// deepened, anchors and aliases (including exponential "billion laughs" expansions), truncation, line ends, NULs,
// bytes that are not UTF-8. Every document must load to a validated config or throw a `ConfigError` naming the file (or the
// key), each within a time bound; a crash kills the run.
import Foundation
import Testing
import Evaluation
import Support
import Tensors
import TestSupport
import Training
@testable import Protocols

@Suite struct FuzzConfigTests {
  /// YAML configs are one format to the issue's "10,000 inputs per format": 10,000 documents in all, spread evenly
  /// over the config types (each type's loader shares ConfigYAML; the types differ in keys and ranges).
  static let inputsInAll = 10_000
  static var inputsPerFormat: Int { (inputsInAll + formats.count - 1) / formats.count }

  /// One config format: its committed files (the seeds) and its loader (YAML text, source name).
  struct Format: CustomTestStringConvertible, Sendable {
    var name: String
    var files: [String]
    var load: @Sendable (String, String) throws -> Void
    var testDescription: String { name }
  }

  static let formats: [Format] = [
    Format(name: "pretrain", files: ["pretrain/simsiam_resnet18_fashion-mnist_quick.yaml",
                                     "pretrain/simsiam_resnet50_8xb32-coslr-200e_in1k.yaml",
                                     "pretrain/simsiam_resnet18_b512-coslr-800e_cifar10.yaml"]) {
      _ = try PretrainConfig.load(yaml: $0, source: $1)
    },
    Format(name: "voc-svm", files: ["benchmarks/voc07/svm_voc07.yaml", "benchmarks/voc07/svm_voc07_scenes_quick.yaml"]) {
      _ = try VOCSVMConfig.load(yaml: $0, source: $1)
    },
    Format(name: "linear", files: ["benchmarks/classification/imagenet/resnet50_8xb512-coslr-90e_in1k.yaml",
                                   "benchmarks/classification/places205/resnet50_mhead_8xb32-steplr-28e_places205.yaml",
                                   "benchmarks/classification/fashion-mnist/resnet18_linear_fashion-mnist_quick.yaml"]) {
      _ = try LinearProbeConfig.load(yaml: $0, source: $1)
    },
    Format(name: "knn", files: ["benchmarks/classification/imagenet/knn_imagenet.yaml",
                                "benchmarks/classification/fashion-mnist/knn_fashion-mnist_quick.yaml"]) {
      _ = try KNNConfig.load(yaml: $0, source: $1)
    },
    Format(name: "fcn", files: ["benchmarks/mmsegmentation/voc12aug/fcn_r50-d8_512x512_20k_voc12aug.yaml",
                                "benchmarks/mmsegmentation/cityscapes/fcn_r50-d8_769x769_40k_cityscapes.yaml",
                                "benchmarks/mmsegmentation/scenes/fcn_quick-d8_scenes.yaml"]) {
      _ = try FCNBenchmarkConfig.load(yaml: $0, source: $1)
    },
    Format(name: "faster-rcnn", files: ["benchmarks/mmdetection/voc0712/faster_rcnn_r50_c4_mstrain_24k_voc0712.yaml",
                                        "benchmarks/mmdetection/scenes/faster_rcnn_quick-c4_scenes.yaml"]) {
      _ = try FasterRCNNBenchmarkConfig.load(yaml: $0, source: $1)
    },
  ]

  static var configFolder: URL {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
      .appendingPathComponent("configs")
  }

  static func seeds(_ format: Format) throws -> [[UInt8]] {
    try format.files.map { [UInt8](try Data(contentsOf: configFolder.appendingPathComponent($0))) }
  }

  static func isClean(_ error: any Error, source: String) -> Bool {
    guard let error = error as? ConfigError else { return false }
    switch error {
    case .invalidValue: return true  // names the key, which the file holds
    case .malformedOverride: return false  // no overrides are given here
    default: return error.description.contains(source)
    }
  }

  @Test(arguments: formats)
  func theSeedsLoad(_ format: Format) throws {
    for (file, seed) in zip(format.files, try Self.seeds(format)) {
      try format.load(String(decoding: seed, as: UTF8.self), file)
    }
  }

  /// Slow (about 2–3 minutes for all formats in the debug build, where every load encodes and parses the defaults
  /// through Yams), so tagged and skipped by `make test-fast`; `make test` runs it.
  @Test(.tags(.slow), .enabled(if: runsSlowTests), arguments: formats)
  func mutatedConfigsLoadOrThrowConfigErrors(_ format: Format) throws {
    let seeds = try Self.seeds(format)
    var mutator = FuzzMutator(seed: 0x5eed_1405 ^ UInt64(format.name.utf8.reduce(0) { $0 &* 31 &+ Int($1) }))
    // 5 s rather than 2 s per input: 64 KiB lines and 50,000-deep flow nesting take up to 2.5 s in the debug
    // build when the formats run side by side on two cores. A hang still ends the run through the watchdog.
    var outcomes = FuzzOutcomes(perInputBound: .seconds(5))
    let watchdog = FuzzWatchdog("config-\(format.name)")
    defer { watchdog.stop() }
    // Each document is written to a file and read back as the CLI reads --config (readConfigFile), so bytes that
    // are not UTF-8 meet the same check.
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("fuzz-config-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: folder) }
    let file = folder.appendingPathComponent("fuzz-\(format.name).yaml")
    for trial in 0..<Self.inputsPerFormat {
      let seed = seeds[trial % seeds.count]
      let bytes = trial % 4 == 3 ? Self.yamlMutation(seed, &mutator) : mutator.mutateText(seed, donors: seeds)
      try Data(bytes).write(to: file)
      outcomes.run("\(format.name) trial \(trial)", input: bytes, watchdog: watchdog,
                   isExpected: { Self.isClean($0, source: file.path) }) {
        try format.load(try readConfigFile(file.path), file.path)
      }
    }
    outcomes.check(inputs: Self.inputsPerFormat, minimumRefused: Self.inputsPerFormat / 3, "\(format.name) config")
  }

  /// YAML-specific moves: a value replaced by an anchor's alias, an alias to an exponential expansion, a flow
  /// collection nested deeply, a merge key, a complex (non-scalar) key, tags.
  static func yamlMutation(_ seed: [UInt8], _ mutator: inout FuzzMutator) -> [UInt8] {
    var lines = String(decoding: seed, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
      .map(String.init)
    let valueLines = lines.indices.filter { lines[$0].contains(": ") && !lines[$0].hasPrefix("#") }
    guard let target = valueLines.isEmpty ? nil : mutator.pick(valueLines) else { return seed }
    let colon = lines[target].range(of: ": ")!
    let key = String(lines[target][..<colon.upperBound])
    let indent = String(key.prefix { $0 == " " })
    switch mutator.int(0..<7) {
    case 0:  // the value anchored, and another value replaced by its alias
      lines[target] = key + "&v " + lines[target][colon.upperBound...]
      let other = mutator.pick(valueLines)
      let otherColon = lines[other].range(of: ": ")!
      lines[other] = String(lines[other][..<otherColon.upperBound]) + "*v"
    case 1:  // a "billion laughs" expansion (9^depth elements) as a value
      lines.insert(contentsOf: billionLaughs(depth: mutator.int(3...9), indent: indent, key: "laughs"), at: target)
      lines[target + 10] = key + "*l\(mutator.int(0...8))"
    case 2:  // a billion-laughs alias as a mapping key
      lines.insert(contentsOf: billionLaughs(depth: mutator.int(3...9), indent: indent, key: "laughs"), at: target)
      lines.insert(indent + "? *l\(mutator.int(0...8))\n\(indent): 1", at: target + 10)
    case 3:  // a deeply nested flow collection as a value
      let depth = mutator.pick([10, 100, 1000, 5000, 50_000])
      let open = mutator.chance(0.5) ? "[" : "{a: "
      lines[target] = key + String(repeating: open, count: depth)
        + (mutator.chance(0.5) ? String(repeating: open == "[" ? "]" : "}", count: depth) : "")
    case 4:  // deeply nested block mappings
      let depth = mutator.pick([10, 200, 2000])
      lines.insert(contentsOf: (0..<depth).map { String(repeating: " ", count: indent.count + $0) + "k\($0):" },
                   at: target)
    case 5:  // a merge key, an undefined alias, a tag
      lines[target] = mutator.pick([indent + "<<: *v", key + "*undefined", key + "!!binary AAAA",
                                    key + "!custom 3", key + "!!float 3", key + "!!int 3.5", key + "!!str",
                                    key + "!!map {}", key + "!!seq []", key + "|\n" + indent + "  text"])
    default:  // a key duplicated with another value, or with a sequence or mapping value
      lines.insert(key + mutator.pick(["1", "[1, 2]", "{a: 1}", "", "-1e999", "\"\""]), at: target + 1)
    }
    return Array(lines.joined(separator: "\n").utf8)
  }

  /// Nine lines defining l0 … l8, each l(i) a list of nine l(i−1): l8 expands to 9^9 scalars.
  static func billionLaughs(depth: Int, indent: String, key: String) -> [String] {
    var lines: [String] = []
    for level in 0..<9 {
      let element = level == 0 ? "lol" : "*l\(level - 1)"
      let value: String = level < depth ? "[" + [String](repeating: element, count: 9).joined(separator: ", ") + "]" : "x"
      lines.append("\(indent)\(key)\(level): &l\(level) \(value)")
    }
    return lines + ["\(indent)\(key)_end: 0"]
  }
}
