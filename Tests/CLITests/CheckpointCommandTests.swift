import Protocols
import ArgumentParser
import Foundation
import Testing
import Tensors
import Models
import Layers
import Checkpoints
@testable import SimSiamBenchCLI

/// Tiny models and files for the checkpoint commands (ResNet-18 at width 1/32).
private enum Files {
  static func simSiam(seed: UInt64) -> SimSiam {
    var generator = SplitMix64(seed: seed)
    return SimSiam(SimSiamConfig(backbone: ResNetConfig(depth: 18, widthMultiplier: 1.0 / 32),
                                 projectorHiddenFeatures: 8, features: 8, predictorHiddenFeatures: 4),
                   using: &generator)
  }

  static func ours(_ model: SimSiam) -> [String: StoredTensor] { StateDict.tensors(of: model.namedParameters) }

  /// The official SimSiam layout of `model` as the .pth reader would return it.
  static func official(_ model: SimSiam, source: String) -> CheckpointContents {
    let projector = ["fc0": "fc.0", "bn0": "fc.1", "fc1": "fc.3", "bn1": "fc.4", "fc2": "fc.6", "bn2": "fc.7"]
    let predictor = ["fc0": "0", "bn0": "1", "fc1": "3"]
    var tensors: [String: StoredTensor] = ["optimizer.state.0.momentum_buffer": StoredTensor(Tensor.zeros([3]))]
    for (name, tensor) in ours(model) {
      let parts = name.split(separator: ".")
      let key: String = if name.hasPrefix("backbone.") {
        "module.encoder." + name.dropFirst("backbone.".count)
      } else if name.hasPrefix("neck.") {
        "module.encoder.\(projector[String(parts[1])]!).\(parts[2])"
      } else {
        "module.predictor.\(predictor[String(parts[2])]!).\(parts[3])"
      }
      tensors["state_dict." + key] = tensor
    }
    tensors["state_dict.module.encoder.fc.6.bias"] = StoredTensor(Tensor.zeros([8]))
    return CheckpointContents(tensors: tensors, values: ["epoch": "100", "arch": "resnet18"], format: .pytorch,
                              source: source)
  }

  /// A folder removed when `body` returns.
  static func withFolder<T>(_ body: (URL) throws -> T) throws -> T {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("simsiam-ckpt-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: folder) }
    return try body(folder)
  }

  /// A file that starts like a zip, so the dispatch sends it to the (fake) PyTorch reader.
  static func writeZipStub(_ url: URL) throws { try Data([0x50, 0x4B, 0x03, 0x04, 0, 0, 0, 0, 0]).write(to: url) }
}

/// Stands in for the .pth reader and writer: returns `contents` and records write requests.
private final class FakePyTorch: @unchecked Sendable {
  private let lock = NSLock()
  private var written: [(PyTorchWriteRequest, URL)] = []
  let contents: CheckpointContents?

  init(contents: CheckpointContents? = nil) { self.contents = contents }

  var requests: [(PyTorchWriteRequest, URL)] { lock.withLock { written } }

  var io: PyTorchIO {
    PyTorchIO(read: { [contents] _, path in
      guard let contents else { throw CheckpointLayoutError.pytorchUnavailable(path: path) }
      return contents
    }, write: { [self] request, url in lock.withLock { written.append((request, url)) } })
  }
}

@Suite struct CheckpointCommandTests {
  private func parse<T: ParsableCommand>(_ arguments: [String], as type: T.Type) throws -> T {
    try #require(try SimSiamBench.parseAsRoot(["checkpoint"] + arguments) as? T)
  }

  @Test func inspectShowsLayoutArchitectureAndEpochOfOurSafetensors() throws {
    let model = Files.simSiam(seed: 1)
    try Files.withFolder { folder in
      let url = folder.appendingPathComponent("ours.safetensors")
      try SafeTensors(tensors: Files.ours(model), metadata: ["epoch": "3"]).write(to: url)
      let text = try parse(["inspect", url.path], as: Checkpoint.Inspect.self).report()
      #expect(text.contains("format:      safetensors"))
      #expect(text.contains("layout:      simsiam-bench safetensors (ours)"))
      #expect(text.contains("arch:        ResNet-18 (basic blocks 2-2-2-2), width ×1/32, ImageNet stem"))
      let backboneCount = model.backbone.namedParameters.count
      #expect(text.contains("parts:       backbone \(backboneCount) tensors, projector 16, predictor 8"))  // 3 fc + 2 × 5 BN + 3 BN (no affine)
      #expect(text.contains("epoch:       3"))
      #expect(text.contains("  head.predictor  8 tensors, "))
    }
  }

  @Test func inspectReadsPyTorchFilesThroughTheReader() throws {
    try Files.withFolder { folder in
      let url = folder.appendingPathComponent("checkpoint_0099.pth.tar")
      try Files.writeZipStub(url)
      let fake = FakePyTorch(contents: Files.official(Files.simSiam(seed: 2), source: url.path))
      let text = try parse(["inspect", url.path], as: Checkpoint.Inspect.self).report(io: fake.io)
      #expect(text.contains("format:      PyTorch zip"))
      #expect(text.contains("layout:      official SimSiam (facebookresearch/simsiam) (official-simsiam), "
                              + "state dict under 'state_dict.'"))
      #expect(text.contains("; 1 more outside the state dict"))
      #expect(text.contains("epoch:       100"))
      #expect(text.contains("  arch = resnet18"))
      #expect(text.contains("  module.encoder  "))
      // Without a reader, a .pth is a typed error that says what to do.
      #expect(throws: CheckpointLayoutError.pytorchUnavailable(path: url.path)) {
        try parse(["inspect", url.path], as: Checkpoint.Inspect.self).report(io: FakePyTorch().io)
      }
    }
  }

  @Test func inspectOfAnUnknownLayoutSaysSoWithoutFailing() throws {
    try Files.withFolder { folder in
      let url = folder.appendingPathComponent("odd.safetensors")
      try SafeTensors(tensors: ["encoder_q.stem.weight": StoredTensor(Tensor.zeros([2, 3]))]).write(to: url)
      let text = try parse(["inspect", url.path], as: Checkpoint.Inspect.self).report()
      #expect(text.contains("layout:      not recognised: "))
      #expect(text.contains("tensors:     1 (1 F32)"))
      #expect(!text.contains("arch:"))
    }
  }

  @Test func convertRenamesAnOfficialCheckpointOntoOurNames() throws {
    let model = Files.simSiam(seed: 3)
    try Files.withFolder { folder in
      let input = folder.appendingPathComponent("checkpoint_0099.pth.tar"), output = folder.appendingPathComponent("o.safetensors")
      try Files.writeZipStub(input)
      let fake = FakePyTorch(contents: Files.official(model, source: input.path))
      let line = try parse(["convert", input.path, output.path, "--rename"], as: Checkpoint.Convert.self)
        .convert(io: fake.io)
      #expect(line.contains("official SimSiam (facebookresearch/simsiam) → our names"))
      let written = try SafeTensors(contentsOf: output)
      #expect(written.tensors == Files.ours(model))
      #expect(written.metadata == ["epoch": "100", "arch": "resnet18", "source_layout": "official-simsiam"])
      // It now loads strictly into our SimSiam.
      let target = Files.simSiam(seed: 4)
      let report = try BackboneLoader.loadSimSiam(MappedCheckpoint(CheckpointContents(written, source: output.path)),
                                                  into: target.namedParameters)
      #expect(report.layout == .ours && report.isComplete)
    }
  }

  @Test func convertKeepsNamesAndHandsTheStateDictToThePyTorchWriter() throws {
    let model = Files.simSiam(seed: 5)
    try Files.withFolder { folder in
      let input = folder.appendingPathComponent("ours.safetensors"), output = folder.appendingPathComponent("ours.pth")
      try SafeTensors(tensors: Files.ours(model), metadata: ["epoch": "7"]).write(to: input)
      let fake = FakePyTorch()
      _ = try parse(["convert", input.path, output.path], as: Checkpoint.Convert.self).convert(io: fake.io)
      let (request, url) = try #require(fake.requests.first)
      #expect(url.path == output.path)
      // Metadata survives: the state dict is wrapped as mmcv does, with the metadata beside it.
      #expect(request.stateDictKey == "state_dict")
      #expect(request.metadata == ["epoch": "7"])
      #expect(request.tensors.map(\.0) == Files.ours(model).keys.sorted())
      #expect(Dictionary(uniqueKeysWithValues: request.tensors) == Files.ours(model))
    }
  }

  @Test func convertOfAPyTorchFileWritesItsStateDictWithoutTheOptimizer() throws {
    let model = Files.simSiam(seed: 6)
    try Files.withFolder { folder in
      let input = folder.appendingPathComponent("in.pth"), output = folder.appendingPathComponent("out.safetensors")
      try Files.writeZipStub(input)
      let fake = FakePyTorch(contents: Files.official(model, source: input.path))
      _ = try parse(["convert", input.path, output.path], as: Checkpoint.Convert.self).convert(io: fake.io)
      let written = try SafeTensors(contentsOf: output)
      #expect(written.tensors.count == Files.ours(model).count + 1)  // + fc.6.bias, kept under its own name
      #expect(written.tensors["module.encoder.fc.6.bias"] != nil)
      #expect(!written.tensors.keys.contains { $0.hasPrefix("optimizer.") || $0.hasPrefix("state_dict.") })
    }
  }

  @Test func extractBackboneWritesTorchvisionNamesInEachContainer() throws {
    let model = Files.simSiam(seed: 7)
    try Files.withFolder { folder in
      let input = folder.appendingPathComponent("ours.safetensors")
      try SafeTensors(tensors: Files.ours(model)).write(to: input)
      let expected = model.backbone.stateDict()

      let safetensors = folder.appendingPathComponent("backbone.safetensors")
      let text = try parse(["extract-backbone", input.path, safetensors.path], as: Checkpoint.ExtractBackbone.self)
        .extract()
      #expect(text.contains("loaded:     \(expected.count) tensors"))
      let written = try SafeTensors(contentsOf: safetensors)
      #expect(written.tensors == expected)
      #expect(written.metadata == ["author": "simsiam-bench", "source_layout": "ours"])

      let fake = FakePyTorch()
      let pth = folder.appendingPathComponent("backbone.pth")
      _ = try parse(["extract-backbone", input.path, pth.path], as: Checkpoint.ExtractBackbone.self)
        .extract(io: fake.io)
      _ = try parse(["extract-backbone", input.path, pth.path, "--bare"], as: Checkpoint.ExtractBackbone.self)
        .extract(io: fake.io)
      let requests = fake.requests
      try #require(requests.count == 2)
      // MMSelfSup's extract_backbone_weights.py shape: {'state_dict': …, 'author': …}; --bare: the plain dict.
      #expect(requests[0].0.stateDictKey == "state_dict" && requests[0].0.metadata["author"] == "simsiam-bench")
      #expect(requests[1].0.stateDictKey == nil && requests[1].0.metadata.isEmpty)
      for (request, _) in requests { #expect(Dictionary(uniqueKeysWithValues: request.tensors) == expected) }
    }
  }

  @Test func extractBackboneIsStrictUnlessAllowMissing() throws {
    let model = Files.simSiam(seed: 8)
    try Files.withFolder { folder in
      let input = folder.appendingPathComponent("ours.safetensors")
      var tensors = Files.ours(model)
      tensors["backbone.layer2.0.downsample.0.weight"] = nil
      try SafeTensors(tensors: tensors).write(to: input)
      let output = folder.appendingPathComponent("backbone.safetensors")
      #expect {
        try parse(["extract-backbone", input.path, output.path], as: Checkpoint.ExtractBackbone.self).extract()
      } throws: { error in
        String(describing: error).contains("missing 1: layer2.0.downsample.0.weight")
      }
      #expect(!FileManager.default.fileExists(atPath: output.path))
      let text = try parse(["extract-backbone", input.path, output.path, "--allow-missing"],
                           as: Checkpoint.ExtractBackbone.self).extract()
      #expect(text.contains("SKIPPED, missing from the file (1): layer2.0.downsample.0.weight"))
      #expect(try SafeTensors(contentsOf: output).tensors.count == model.backbone.namedParameters.count - 1)
    }
  }

  @Test func optionsParseAndBadOutputNamesAreRejected() throws {
    let command = try parse(["convert", "a.pth", "b.safetensors", "--layout", "official-simsiam",
                             "--prefix", "module", "--rename"], as: Checkpoint.Convert.self)
    #expect(command.layoutOptions.layout == .officialSimSiam)
    #expect(command.layoutOptions.prefix == "module")
    #expect(command.renamesToOurs)
    #expect(throws: (any Error).self) { try SimSiamBench.parseAsRoot(["checkpoint", "convert", "a.pth", "b.npz"]) }
    #expect(throws: (any Error).self) {
      try SimSiamBench.parseAsRoot(["checkpoint", "inspect", "a.pth", "--layout", "mmdet"])
    }
    let names = Checkpoint.configuration.subcommands.map { $0._commandName }
    #expect(names == ["inspect", "convert", "extract-backbone"])
  }
}

/// The commands with the real .pth reader and writer: an official-layout file written by PyTorchCheckpointWriter
/// goes through `extract-backbone` to a .pth whose tensors equal the model's backbone.
@Suite struct CheckpointCommandRealPyTorchTests {
  @Test func extractBackboneFromAnOfficialPthWritesTheSameWeights() throws {
    let model = Files.simSiam(seed: 4)
    try Files.withFolder { folder in
      let input = folder.appendingPathComponent("checkpoint_0099.pth.tar")
      let official = Files.official(model, source: input.path)
      let stateDict = official.tensors.filter { $0.key.hasPrefix("state_dict.") }
        .map { (String($0.key.dropFirst("state_dict.".count)), $0.value) }.sorted { $0.0 < $1.0 }
      try PyTorchCheckpointWriter.write(stateDict, metadata: ["arch": "resnet18"], to: input)
      let output = folder.appendingPathComponent("backbone.pth")
      let command = try #require(
        try SimSiamBench.parseAsRoot(["checkpoint", "extract-backbone", input.path, output.path])
          as? Checkpoint.ExtractBackbone)
      _ = try command.extract()
      let written = try PyTorchCheckpoint(contentsOf: output)
      #expect(written.values["author"] == "simsiam-bench")
      let expected = StateDict.tensors(of: prefixedBackbone(model))
      #expect(Set(written.tensors.keys) == Set(expected.keys.map { "state_dict." + $0 }))
      for (name, tensor) in expected {
        #expect(written.tensors["state_dict." + name]?.value == tensor.value, "\(name)")
      }
    }
  }

  private func prefixedBackbone(_ model: SimSiam) -> [NamedParameter] { model.backbone.namedParameters }
}
