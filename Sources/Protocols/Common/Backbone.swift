// The one way any protocol gets a backbone: read a checkpoint once (hashing the bytes it decodes, so the SHA-256
// in the results is of exactly what was loaded and the file is not read a second time), detect its layout, build
// our ResNet for its architecture, load it strictly through `BackboneLoader`, or keep the random initialisation
// for a baseline.
import Support
import Checkpoints
import Datasets
import Foundation
import Models
import Tensors

/// How `.pth` files are read and written; the CLI uses `.current`, tests inject fakes.
public struct PyTorchIO: Sendable {
  /// Decodes a torch.save zip from its bytes; the path names it in errors.
  public var read: @Sendable (Data, String) throws -> CheckpointContents
  public var write: @Sendable (PyTorchWriteRequest, URL) throws -> Void

  public init(read: @escaping @Sendable (Data, String) throws -> CheckpointContents,
              write: @escaping @Sendable (PyTorchWriteRequest, URL) throws -> Void) {
    self.read = read
    self.write = write
  }

  /// The real reader and writer (Sources/Checkpoints/PyTorchCheckpoint*.swift).
  public static let current = PyTorchIO(
    read: { data, path in
      let file = try PyTorchCheckpoint(decoding: data, path: path)
      return CheckpointContents(tensors: file.tensors, values: file.values, format: .pytorch, source: path)
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

/// What `PyTorchIO.write` writes.
public struct PyTorchWriteRequest: Sendable {
  /// Tensor names within the state dict, in the order to write them.
  public var tensors: [(String, StoredTensor)]
  /// String entries next to the state dict (or inside the file's metadata when it is bare).
  public var metadata: [String: String]
  /// "state_dict" to write `{'state_dict': {names: tensors}, **metadata}`; nil for a bare `{names: tensors}`.
  public var stateDictKey: String?

  public init(tensors: [(String, StoredTensor)], metadata: [String: String], stateDictKey: String?) {
    self.tensors = tensors
    self.metadata = metadata
    self.stateDictKey = stateDictKey
  }
}

/// A checkpoint file's contents and the SHA-256 (lowercase hex) of the bytes they were decoded from.
public struct HashedCheckpoint: Sendable {
  public var contents: CheckpointContents
  public var sha256: String
}

/// Reads `path` once, hashing the bytes as they arrive (`readFileHashing`), and decodes the contents from those same
/// bytes, choosing the container from the first bytes.
public func readCheckpoint(_ path: String, io: PyTorchIO = .current) throws -> HashedCheckpoint {
  let url = URL(fileURLWithPath: path)
  let format = try CheckpointFileFormat.detect(url)
  let file: (data: Data, sha256Hex: String)
  do { file = try readFileHashing(url) } catch {
    throw CheckpointError.unreadableFile(path: path, reason: "\(error)")
  }
  let contents = switch format {
  case .safetensors: CheckpointContents(try SafeTensors(decoding: file.data, path: path), source: path)
  case .pytorchZip: try io.read(file.data, path)
  }
  return HashedCheckpoint(contents: contents, sha256: file.sha256Hex)
}

/// A backbone ready for frozen or fine-tuned evaluation, with the provenance of its weights.
public struct EvaluationBackbone {
  public let backbone: ResNet
  /// What the load did (nil for a random initialisation).
  public let report: LoadReport?
  /// SHA-256 of the checkpoint file (for a random initialisation: of the file whose architecture was used).
  public let sha256: String
  public let layout: String
  public let isRandomInit: Bool
  /// The seed of the random initialisation (`BackboneBuilder.initialisationGenerator`).
  public let seed: UInt64

  /// Feature-cache key: the file's hash, or the seed for a random initialisation.
  public var featureKey: String { isRandomInit ? "random-init-\(seed)-\(sha256)" : sha256 }

  /// The checkpoint file name without extension (plus `-random-init`).
  public func defaultLabel(_ path: String) -> String {
    var stem = URL(fileURLWithPath: path).lastPathComponent
    for suffix in [".safetensors", ".pth.tar", ".pth", ".pt", ".ckpt", ".tar"] where stem.hasSuffix(suffix) {
      stem = String(stem.dropLast(suffix.count))
      break
    }
    return isRandomInit ? stem + "-random-init" : stem
  }
}

/// What to load and how.
public struct BackboneRequest: Sendable {
  public var checkpoint: String
  /// Use this layout instead of detecting it.
  public var layout: CheckpointLayout?
  /// The state dict sits under this dotted prefix (e.g. `module.encoder_q`).
  public var prefix: String?
  /// Keep the architecture's random initialisation instead of loading the weights (a baseline).
  public var randomInit = false
  /// Load what matches and list the rest instead of refusing an incomplete backbone.
  public var allowMissing = false
  /// The seed of the random initialisation (and of tensors `allowMissing` leaves unloaded).
  public var seed: UInt64 = 0

  public init(checkpoint: String, layout: CheckpointLayout? = nil, prefix: String? = nil, randomInit: Bool = false,
              allowMissing: Bool = false, seed: UInt64 = 0) {
    self.checkpoint = checkpoint
    self.layout = layout
    self.prefix = prefix
    self.randomInit = randomInit
    self.allowMissing = allowMissing
    self.seed = seed
  }
}

public enum BackboneBuilder {
  /// Every evaluation backbone is initialised from `SplitMix64.derived(seed, 0xBAC4B0E)` before its weights are
  /// loaded: the random-init baseline of `--random-init`, and whatever `allowMissing` leaves unloaded. (The
  /// pretraining's own initial weights come from `SplitMix64(seed:)` in `Pretrainer`; quickstart saves those as a
  /// file, so its random-init baseline is that file loaded strictly.)
  public static func initialisationGenerator(seed: UInt64) -> SplitMix64 { SplitMix64.derived(seed, 0xBAC4B0E) }

  /// Reads the checkpoint once, builds our ResNet for its architecture and loads it (strictly unless
  /// `allowMissing`), or keeps the random initialisation. `configure` adjusts the architecture before it is built
  /// in ways that keep every parameter's name and shape (the FCN's strides and dilations).
  public static func build(_ request: BackboneRequest, io: PyTorchIO = .current,
                           configure: (ResNetConfig) -> ResNetConfig = { $0 }) throws -> EvaluationBackbone {
    let file = try readCheckpoint(request.checkpoint, io: io)
    let mapped = try MappedCheckpoint(file.contents, layout: request.layout, prefix: request.prefix)
    guard let guess = mapped.architecture else {
      throw CheckpointLayoutError.layoutNotFound(path: request.checkpoint, layout: mapped.layout.rawValue,
                                                 reason: "its backbone has no conv1.weight")
    }
    guard let guessed = ResNetConfig(guess) else {
      throw ProtocolError.unsupportedBackbone(path: request.checkpoint, architecture: "\(guess)")
    }
    let config = configure(guessed)
    var generator = initialisationGenerator(seed: request.seed)
    let backbone = ResNet(config, using: &generator)
    if request.randomInit {
      return EvaluationBackbone(backbone: backbone, report: nil, sha256: file.sha256, layout: mapped.layout.rawValue,
                                isRandomInit: true, seed: request.seed)
    }
    var report = try BackboneLoader.load(mapped, into: backbone, allowMissing: request.allowMissing)
    report.sha256 = file.sha256
    return EvaluationBackbone(backbone: backbone, report: report, sha256: file.sha256,
                              layout: mapped.layout.rawValue, isRandomInit: false, seed: request.seed)
  }
}

/// SHA-256 (lowercase hex) of the file at `path`, read in chunks.
public func fileSHA256(_ path: String) throws -> String {
  do { return try SHA256.hexDigest(ofFileAt: URL(fileURLWithPath: path)) } catch {
    throw CheckpointError.unreadableFile(path: path, reason: "\(error)")
  }
}

extension ResNetConfig {
  /// Our ResNet for a guessed architecture, or nil when we do not build that depth.
  public init?(_ guess: ArchitectureGuess) {
    guard let depth = guess.depth, ResNetConfig.supportedDepths.contains(depth) else { return nil }
    self.init(depth: depth, widthMultiplier: guess.widthMultiplier, cifarStem: guess.cifarStem,
              inChannels: guess.inChannels)
  }
}

/// The backbone of `mapped` under torchvision names, checked strictly against our ResNet of its architecture when
/// we build it (18/34/50), with the report lines; shared by `checkpoint extract-backbone` and
/// `checkpoint convert --to detectron2`.
public func checkedBackbone(_ mapped: MappedCheckpoint, path: String, sha256: String, allowMissing: Bool) throws
  -> (tensors: [String: StoredTensor], lines: [String]) {
  guard let guess = mapped.architecture else {
    throw CheckpointLayoutError.layoutNotFound(path: path, layout: mapped.layout.rawValue,
                                               reason: "its backbone has no conv1.weight")
  }
  var backbone = mapped.backboneTensors
  var lines = ["arch:    \(guess)"]
  if let config = ResNetConfig(guess) {
    // Strict check against the model the evaluators will build; the random initial values are discarded.
    var generator = SplitMix64(seed: 0)
    var report = try BackboneLoader.load(mapped, into: ResNet(config, using: &generator), allowMissing: allowMissing)
    report.sha256 = sha256
    backbone = backbone.filter { report.loaded.contains($0.key) || $0.key.hasSuffix("num_batches_tracked") }
    lines.append(report.rendered())
  } else {
    lines.append("layout:  \(mapped.layout.displayName); not checked (we build ResNet-18/34/50 only)")
  }
  return (backbone, lines)
}
