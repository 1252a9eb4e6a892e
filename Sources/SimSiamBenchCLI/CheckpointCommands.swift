// `simsiam-bench checkpoint …`: inspect, convert and extract backbones of safetensors and PyTorch checkpoints in
// every layout of PROTOCOLS §6. The work lives in Checkpoints (CheckpointLayout, BackboneLoader).
import ArgumentParser
import Checkpoints
import Datasets
import Foundation
import Layers
import Models
import Protocols
import Tensors

extension CheckpointLayout: ExpressibleByArgument {}

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
      let hashed: HashedCheckpoint
      do {
        hashed = try readCheckpoint(file, io: io)
      } catch let error as CheckpointError {
        // Dtypes the tensor reader cannot load still have a header to show.
        guard case .unsupportedDType = error else { throw error }
        return try CheckpointSummary(contentsOf: url).rendered(listingTensors: listsTensors)
          + "\nsha256:      \(try fileSHA256(file))\nlayout:      not analysed (\(error))"
      }
      let byteCount = (try? FileManager.default.attributesOfItem(atPath: file)[.size] as? Int) ?? nil
      var inspection = CheckpointInspection(hashed.contents, byteCount: byteCount, layout: layoutOptions.layout,
                                            prefix: layoutOptions.prefix)
      inspection.sha256 = hashed.sha256
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

        With --to detectron2, OUT is a .pkl for detectron2 (PROTOCOLS §5.5): the ResNet backbone of INPUT (any \
        layout, checked as extract-backbone checks it) renamed by MMSelfSup's convert-pretrain-to-detectron2.py \
        rules (stem.*, res2..res5, convN.norm, shortcut) as numpy arrays in {'model': …, '__author__': \
        'MMSelfSup', 'matching_heuristics': True}, for MODEL.WEIGHTS of the reference R50-C4 pipeline.
        """)

    @Argument(help: "The checkpoint to read (.safetensors or .pth).")
    var input: String

    @Argument(help: "The file to write: *.safetensors or *.pth.")
    var output: String

    @Flag(name: .customLong("rename"), help: "Map names onto ours through the detected layout.")
    var renamesToOurs = false

    @Option(name: .customLong("to"), help: ArgumentHelp(
      "Write another framework's file instead: detectron2 (a .pkl of the backbone).", valueName: "framework"))
    var target: ConvertTarget?

    @OptionGroup var layoutOptions: LayoutOptions

    func validate() throws {
      guard target == .detectron2 else {
        _ = try OutputFormat(path: output)
        return
      }
      if renamesToOurs { throw ValidationError("--rename and --to detectron2 do not combine: drop --rename.") }
      guard output.lowercased().hasSuffix(".pkl") else {
        throw ValidationError("--to detectron2 writes a pickle: name the output *.pkl, not '\(output)'.")
      }
    }

    /// Converts and returns the line `run` prints.
    func convert(io: PyTorchIO = .current) throws -> String {
      if target == .detectron2 { return try convertToDetectron2(io: io) }
      let contents = try readCheckpoint(input, io: io).contents
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

    /// `--to detectron2`: the backbone, strictly checked, as detectron2's pickle.
    func convertToDetectron2(io: PyTorchIO) throws -> String {
      let hashed = try readCheckpoint(input, io: io)
      let mapped = try MappedCheckpoint(hashed.contents, layout: layoutOptions.layout, prefix: layoutOptions.prefix)
      var (backbone, lines) = try checkedBackbone(mapped, path: input, sha256: hashed.sha256, allowMissing: false)
      if mapped.layout != .torchvision && mapped.layout != .mmselfsupBackbone {
        lines.append("note:    the backbone of this \(mapped.layout.displayName) checkpoint (neck and predictor "
                       + "left out)")
      }
      backbone = backbone.filter { !$0.key.hasPrefix("fc.") }
      try Detectron2Converter.write(backbone: backbone, source: input, to: URL(fileURLWithPath: output))
      lines.append("wrote \(backbone.count) backbone tensors (detectron2 names) to \(output)")
      return lines.joined(separator: "\n")
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
      let hashed = try readCheckpoint(input, io: io)
      let mapped = try MappedCheckpoint(hashed.contents, layout: layoutOptions.layout, prefix: layoutOptions.prefix)
      let (backbone, checkLines) = try checkedBackbone(mapped, path: input, sha256: hashed.sha256,
                                                       allowMissing: allowMissing)
      var lines = checkLines
      let metadata = bare ? [:] : ["author": "simsiam-bench", "source_layout": mapped.layout.rawValue]
      try writeCheckpoint(backbone, metadata: metadata, wrapsStateDict: !bare, to: output, io: io)
      lines.append("wrote \(backbone.count) backbone tensors (torchvision names) to \(output)")
      return lines.joined(separator: "\n")
    }

    func run() throws { print(try extract()) }
  }
}

/// The values of `--to` of `checkpoint convert`.
enum ConvertTarget: String, ExpressibleByArgument, CaseIterable {
  case detectron2
}
