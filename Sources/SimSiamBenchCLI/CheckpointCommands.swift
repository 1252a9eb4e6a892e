// `simsiam-bench checkpoint …`: inspect, convert and extract backbones of safetensors and PyTorch checkpoints in
// every layout of PROTOCOLS §6. The work lives in Checkpoints (CheckpointLayout, BackboneLoader).
import ArgumentParser
import Checkpoints
import Datasets
import Foundation
import Layers
import Models
import Tensors

extension CheckpointLayout: ExpressibleByArgument {}

/// How a `.pth` file is to be written: a state dict, bare or wrapped as `{'state_dict': …, **metadata}`.
struct PyTorchWriteRequest: Sendable {
  /// Tensor names within the state dict, in the order to write them.
  var tensors: [(String, StoredTensor)]
  /// String entries next to the state dict (or inside the file's metadata when it is bare).
  var metadata: [String: String]
  /// "state_dict" to write `{'state_dict': {names: tensors}, **metadata}`; nil for a bare `{names: tensors}`.
  var stateDictKey: String?
}

/// The `.pth` reader and writer the commands use; injected so tests can stand in for them.
struct PyTorchIO: Sendable {
  var read: @Sendable (URL) throws -> CheckpointContents
  var write: @Sendable (PyTorchWriteRequest, URL) throws -> Void

  /// The real reader and writer (Sources/Checkpoints/PyTorchCheckpoint*.swift); tests inject fakes.
  static let current = PyTorchIO(
    read: { url in
      let file = try PyTorchCheckpoint(contentsOf: url)
      return CheckpointContents(tensors: file.tensors, values: file.values, format: .pytorch, source: url.path)
    },
    write: { request, url in
      if request.stateDictKey == nil {
        // A bare state dict has no place for strings: torchvision-style files carry none.
        try PyTorchCheckpointWriter.write(request.tensors, metadata: [:], to: url)
      } else {
        try PyTorchCheckpointWriter.write(request.tensors, metadata: request.metadata, placement: .besideStateDict,
                                          to: url)
      }
    })
}

/// `--layout` and `--prefix`, shared by the checkpoint commands.
struct LayoutOptions: ParsableArguments {
  @Option(help: ArgumentHelp(
    "Use this layout instead of detecting it.",
    discussion: "One of: \(CheckpointLayout.allCases.map(\.rawValue).joined(separator: ", ")).",
    valueName: "layout"))
  var layout: CheckpointLayout?

  @Option(help: ArgumentHelp(
    "The state dict is under this dotted key prefix (e.g. module.encoder_q for a MoCo checkpoint); the rest of "
      + "the file is ignored.", valueName: "prefix"))
  var prefix: String?
}

/// The container a path's extension asks for.
enum OutputFormat {
  case safetensors, pytorch

  init(path: String) throws {
    let lowered = path.lowercased()
    if lowered.hasSuffix(".safetensors") {
      self = .safetensors
    } else if [".pth", ".pt", ".pth.tar", ".tar", ".ckpt"].contains(where: { lowered.hasSuffix($0) }) {
      self = .pytorch
    } else {
      throw ValidationError("Cannot tell the output format of '\(path)': name it *.safetensors or *.pth.")
    }
  }
}

/// Reads any checkpoint file, with `.pth` going through `io`.
func readCheckpoint(_ path: String, io: PyTorchIO) throws -> CheckpointContents {
  try CheckpointContents.read(URL(fileURLWithPath: path), readPyTorch: io.read)
}

/// SHA-256 of the file at `path`, lowercase hex.
func fileSHA256(_ path: String) throws -> String {
  let handle: FileHandle
  do { handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: path)) } catch {
    throw CheckpointError.unreadableFile(path: path, reason: "\(error.localizedDescription)")
  }
  defer { try? handle.close() }
  var hash = SHA256()
  try hash.update(reading: handle)
  return hash.finalize().map { String(format: "%02x", $0) }.joined()
}

/// Loads the backbone of the checkpoint at `path` into `backbone` through `BackboneLoader`, strictly unless
/// `allowMissing`, and records the file's SHA-256 in the report: the one path by which commands load weights.
func loadBackbone(_ path: String, into backbone: some Layer, layoutOptions: LayoutOptions, allowMissing: Bool,
                  io: PyTorchIO = .current) throws -> LoadReport {
  let mapped = try MappedCheckpoint(try readCheckpoint(path, io: io), layout: layoutOptions.layout,
                                    prefix: layoutOptions.prefix)
  return try loadBackbone(mapped, file: path, into: backbone, allowMissing: allowMissing)
}

/// `BackboneLoader.load` of an already mapped checkpoint read from `path`, with the file's SHA-256 recorded.
func loadBackbone(_ mapped: MappedCheckpoint, file path: String, into backbone: some Layer,
                  allowMissing: Bool) throws -> LoadReport {
  var report = try BackboneLoader.load(mapped, into: backbone, allowMissing: allowMissing)
  report.sha256 = try fileSHA256(path)
  return report
}

/// Writes a state dict to `path` in the container its extension names.
func writeCheckpoint(_ tensors: [String: StoredTensor], metadata: [String: String], wrapsStateDict: Bool,
                     to path: String, io: PyTorchIO) throws {
  switch try OutputFormat(path: path) {
  case .safetensors:
    try SafeTensors(tensors: tensors, metadata: metadata).write(to: URL(fileURLWithPath: path))
  case .pytorch:
    let request = PyTorchWriteRequest(tensors: tensors.sorted { $0.key < $1.key }.map { ($0.key, $0.value) },
                                      metadata: metadata, stateDictKey: wrapsStateDict ? "state_dict" : nil)
    try io.write(request, URL(fileURLWithPath: path))
  }
}

extension ResNetConfig {
  /// Our ResNet for a guessed architecture, or nil when we do not build that depth.
  init?(_ guess: ArchitectureGuess) {
    guard let depth = guess.depth, ResNetConfig.supportedDepths.contains(depth) else { return nil }
    self.init(depth: depth, widthMultiplier: guess.widthMultiplier, cifarStem: guess.cifarStem,
              inChannels: guess.inChannels)
  }
}

struct Checkpoint: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Inspect, convert and extract backbones of safetensors and PyTorch checkpoints.",
    discussion: """
      Layouts are detected from the keys: torchvision, mmselfsup-0.x (training checkpoint), mmselfsup-backbone \
      (model zoo / extracted), mmselfsup-1.x, official-simsiam (facebookresearch/simsiam), ours; see PROTOCOLS §6.
      """,
    subcommands: [Inspect.self, Convert.self, ExtractBackbone.self])

  struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Print a checkpoint's layout, tensor and parameter counts, architecture guess, epoch and metadata.",
      discussion: "Reads .safetensors and PyTorch zip (.pth, .pth.tar) files; never fails on an unknown layout.")

    @Argument(help: "The .safetensors or .pth file.")
    var file: String

    @Flag(name: .customLong("tensors"), help: "Also list every tensor with its dtype and shape.")
    var listsTensors = false

    @OptionGroup var layoutOptions: LayoutOptions

    /// The text `run` prints.
    func report(io: PyTorchIO = .current) throws -> String {
      let url = URL(fileURLWithPath: file)
      let contents: CheckpointContents
      do {
        contents = try readCheckpoint(file, io: io)
      } catch let error as CheckpointError {
        // Dtypes the tensor reader cannot load still have a header to show.
        guard case .unsupportedDType = error else { throw error }
        return try CheckpointSummary(contentsOf: url).rendered(listingTensors: listsTensors)
          + "\nsha256:      \(try fileSHA256(file))\nlayout:      not analysed (\(error))"
      }
      let byteCount = (try? FileManager.default.attributesOfItem(atPath: file)[.size] as? Int) ?? nil
      var inspection = CheckpointInspection(contents, byteCount: byteCount, layout: layoutOptions.layout,
                                            prefix: layoutOptions.prefix)
      inspection.sha256 = try fileSHA256(file)
      return inspection.rendered(listingTensors: listsTensors)
    }

    func run() throws { print(try report()) }
  }

  struct Convert: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Convert between safetensors and PyTorch .pth (torch.load(OUT, weights_only=True) loads it).",
      discussion: """
        Writes the state dict (the tensors under 'state_dict.' or --prefix; optimizer state is dropped) under \
        its own names, with the file's scalar values as metadata (a .pth with metadata holds \
        {'state_dict': …, key: value, …}; without any, the bare state dict). With --rename the names become ours \
        (backbone.*, neck.*, head.predictor.*) through the detected layout, e.g. to turn an official SimSiam \
        checkpoint into one `pretrain` could have written. The output format follows OUT's extension.
        """)

    @Argument(help: "The checkpoint to read (.safetensors or .pth).")
    var input: String

    @Argument(help: "The file to write: *.safetensors or *.pth.")
    var output: String

    @Flag(name: .customLong("rename"), help: "Map names onto ours through the detected layout.")
    var renamesToOurs = false

    @OptionGroup var layoutOptions: LayoutOptions

    func validate() throws { _ = try OutputFormat(path: output) }

    /// Converts and returns the line `run` prints.
    func convert(io: PyTorchIO = .current) throws -> String {
      let contents = try readCheckpoint(input, io: io)
      var tensors: [String: StoredTensor] = [:]
      var metadata = contents.values
      var note = ""
      if renamesToOurs {
        let mapped = try MappedCheckpoint(contents, layout: layoutOptions.layout, prefix: layoutOptions.prefix)
        tensors = mapped.tensors
        metadata["source_layout"] = mapped.layout.rawValue
        note = " (\(mapped.layout.displayName) → our names, \(mapped.ignored.count) tensors left out)"
      } else {
        let root = try CheckpointLayout.root(of: contents, prefix: layoutOptions.prefix)
        for (name, tensor) in contents.tensors where name.hasPrefix(root) {
          tensors[String(name.dropFirst(root.count))] = tensor
        }
        if !root.isEmpty { note = " (the state dict under '\(root)')" }
      }
      guard !tensors.isEmpty else {
        throw ValidationError("\(input) has no tensors to convert\(note); see `checkpoint inspect --tensors`.")
      }
      // A .pth has no metadata slot beside a bare state dict, so metadata (epoch, config, …) is kept by writing
      // mmcv's `{'state_dict': …, key: value, …}`; every peer loader (mmcv, mmdet, ours) finds the tensors there.
      try writeCheckpoint(tensors, metadata: metadata, wrapsStateDict: !metadata.isEmpty, to: output, io: io)
      return "wrote \(tensors.count) tensors to \(output)\(note)"
    }

    func run() throws { print(try convert()) }
  }

  struct ExtractBackbone: ParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "extract-backbone",
      abstract: "Write the ResNet backbone alone, under torchvision names without prefix.",
      discussion: """
        The input may be in any layout; the backbone is checked strictly against our ResNet of the guessed \
        architecture (18/34/50) before it is written. A .pth output is {'state_dict': {conv1.weight, …}, \
        'author': 'simsiam-bench'}, the shape of MMSelfSup's tools/model_converters/extract_backbone_weights.py: \
        mmcv's load_checkpoint (mmdet, mmseg) unwraps 'state_dict', and MMSelfSup's \
        convert-pretrain-to-detectron2.py reads ['state_dict']. With --bare it is the plain state dict that \
        torchvision's model.load_state_dict(torch.load(OUT), strict=False) takes (fc.* is absent). A \
        .safetensors output holds the plain state dict with the author and source layout as metadata.
        """)

    @Argument(help: "The checkpoint to read (.safetensors or .pth).")
    var input: String

    @Argument(help: "The file to write: *.pth or *.safetensors.")
    var output: String

    @OptionGroup var layoutOptions: LayoutOptions

    @Flag(help: "Write a bare state dict to .pth instead of {'state_dict': …, 'author': …}.")
    var bare = false

    @Flag(help: "Write what matches our ResNet and list what was skipped instead of failing.")
    var allowMissing = false

    func validate() throws { _ = try OutputFormat(path: output) }

    /// Extracts and returns the text `run` prints.
    func extract(io: PyTorchIO = .current) throws -> String {
      let contents = try readCheckpoint(input, io: io)
      let mapped = try MappedCheckpoint(contents, layout: layoutOptions.layout, prefix: layoutOptions.prefix)
      guard let guess = mapped.architecture else {
        throw CheckpointLayoutError.layoutNotFound(path: input, layout: mapped.layout.rawValue,
                                                   reason: "its backbone has no conv1.weight")
      }
      var backbone = mapped.backboneTensors
      var lines = ["arch:    \(guess)"]
      if let config = ResNetConfig(guess) {
        // Strict check against the model the evaluators will build; the random initial values are discarded.
        var generator = SplitMix64(seed: 0)
        let report = try loadBackbone(mapped, file: input, into: ResNet(config, using: &generator),
                                      allowMissing: allowMissing)
        backbone = backbone.filter { report.loaded.contains($0.key) || $0.key.hasSuffix("num_batches_tracked") }
        lines.append(report.rendered())
      } else {
        lines.append("layout:  \(mapped.layout.displayName); not checked (we build ResNet-18/34/50 only)")
      }
      let metadata = bare ? [:] : ["author": "simsiam-bench", "source_layout": mapped.layout.rawValue]
      try writeCheckpoint(backbone, metadata: metadata, wrapsStateDict: !bare, to: output, io: io)
      lines.append("wrote \(backbone.count) backbone tensors (torchvision names) to \(output)")
      return lines.joined(separator: "\n")
    }

    func run() throws { print(try extract()) }
  }
}
