import Foundation
import Testing
import Tensors
import Layers
import Models
import Checkpoints

/// Synthetic checkpoints in every layout of PROTOCOLS §6, built from tiny models (ResNet-18 at width 1/32:
/// stem 2 channels) so the key sets and shapes are exactly those our models expect.
enum LayoutFixtures {
  static let backboneConfig = ResNetConfig(depth: 18, widthMultiplier: 1.0 / 32)

  static func simSiam(seed: UInt64, backbone: ResNetConfig = backboneConfig) -> SimSiam {
    var generator = SplitMix64(seed: seed)
    let model = SimSiam(SimSiamConfig(backbone: backbone, projectorHiddenFeatures: 8, features: 8,
                                      predictorHiddenFeatures: 4), using: &generator)
    // Distinct non-trivial running statistics, so that mapping mistakes between BN layers show.
    for (index, (name, parameter)) in model.namedParameters.enumerated() where parameter.isBuffer {
      let shift = Float(index) + (name.hasSuffix("running_var") ? 1 : 0)
      parameter.value = Tensor(shape: parameter.value.shape, scalars: parameter.value.scalars.map { _ in shift })
    }
    return model
  }

  static func resNet(seed: UInt64, config: ResNetConfig = backboneConfig) -> ResNet {
    var generator = SplitMix64(seed: seed)
    return ResNet(config, using: &generator)
  }

  /// Our names: backbone.*, neck.*, head.predictor.*.
  static func ours(_ model: SimSiam) -> [String: StoredTensor] { StateDict.tensors(of: model.namedParameters) }

  static func prefixed(_ tensors: [String: StoredTensor], _ prefix: String) -> [String: StoredTensor] {
    Dictionary(uniqueKeysWithValues: tensors.map { (prefix + $0.key, $0.value) })
  }

  /// `torch.save(resnet.state_dict())` of a torchvision ResNet: backbone names plus the classifier.
  static func torchvision(_ backbone: ResNet) -> CheckpointContents {
    var tensors = backbone.stateDict()
    tensors["fc.weight"] = StoredTensor(Tensor(repeating: 0.5, shape: [10, backbone.outChannels]))
    tensors["fc.bias"] = StoredTensor(Tensor.zeros([10]))
    return CheckpointContents(tensors: tensors, format: .pytorch, source: "resnet18.pth")
  }

  /// MMSelfSup model zoo: {'state_dict': {conv1.weight, …}, 'author': 'MMSelfSup'}.
  static func mmselfsupBackbone(_ backbone: ResNet) -> CheckpointContents {
    CheckpointContents(tensors: prefixed(backbone.stateDict(), "state_dict."), values: ["author": "MMSelfSup"],
                       format: .pytorch, source: "simsiam_zoo.pth")
  }

  /// MMSelfSup 1.x: {'meta', 'state_dict': {backbone.*, neck.*, head.predictor.*}, 'optimizer'}.
  static func mmselfsup1x(_ model: SimSiam) -> CheckpointContents {
    var tensors = prefixed(ours(model), "state_dict.")
    tensors["optimizer.state.0.momentum_buffer"] = StoredTensor(Tensor.zeros([2, 3, 7, 7]))
    return CheckpointContents(tensors: tensors, values: ["meta.epoch": "200"], format: .pytorch,
                              source: "epoch_200.pth")
  }

  /// MMSelfSup 0.x: like 1.x plus encoder.0.* = backbone.* and encoder.1.* = neck.*.
  static func mmselfsupTraining0x(_ model: SimSiam) -> CheckpointContents {
    var stateDict = ours(model)
    for (name, tensor) in stateDict {
      if name.hasPrefix("backbone.") { stateDict["encoder.0." + name.dropFirst("backbone.".count)] = tensor }
      if name.hasPrefix("neck.") { stateDict["encoder.1." + name.dropFirst("neck.".count)] = tensor }
    }
    return CheckpointContents(tensors: prefixed(stateDict, "state_dict."), values: ["meta.epoch": "100"],
                              format: .pytorch, source: "epoch_100.pth")
  }

  /// facebookresearch/simsiam: {'epoch', 'arch', 'state_dict': {module.encoder.*, module.predictor.*}, …},
  /// with the projector's frozen fc.6.bias set to `lastBias`.
  static func official(_ model: SimSiam, lastBias: Float = 0) -> CheckpointContents {
    let projector = ["fc0": "fc.0", "bn0": "fc.1", "fc1": "fc.3", "bn1": "fc.4", "fc2": "fc.6", "bn2": "fc.7"]
    let predictor = ["fc0": "0", "bn0": "1", "fc1": "3"]
    var stateDict: [String: StoredTensor] = [:]
    for (name, tensor) in ours(model) {
      let parts = name.split(separator: ".")
      if name.hasPrefix("backbone.") {
        stateDict["module.encoder." + name.dropFirst("backbone.".count)] = tensor
      } else if name.hasPrefix("neck.") {
        stateDict["module.encoder.\(projector[String(parts[1])]!).\(parts[2])"] = tensor
      } else {
        stateDict["module.predictor.\(predictor[String(parts[2])]!).\(parts[3])"] = tensor
      }
    }
    stateDict["module.encoder.fc.6.bias"] = StoredTensor(Tensor(repeating: lastBias, shape: [model.config.features]))
    var tensors = prefixed(stateDict, "state_dict.")
    tensors["optimizer.state.0.momentum_buffer"] = StoredTensor(Tensor.zeros([8]))
    return CheckpointContents(tensors: tensors, values: ["epoch": "100", "arch": "resnet18"], format: .pytorch,
                              source: "checkpoint_0099.pth.tar")
  }

  /// Our safetensors.
  static func oursFile(_ model: SimSiam, metadata: [String: String] = [:]) -> CheckpointContents {
    CheckpointContents(tensors: ours(model), values: metadata, format: .safetensors, source: "ours.safetensors")
  }
}

/// A temporary file URL removed when `body` returns.
func withScratchFile<T>(_ name: String, _ body: (URL) throws -> T) throws -> T {
  let folder = FileManager.default.temporaryDirectory.appendingPathComponent("simsiam-layout-\(UUID().uuidString)")
  try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
  defer { try? FileManager.default.removeItem(at: folder) }
  return try body(folder.appendingPathComponent(name))
}

@Suite struct CheckpointLayoutDetectionTests {
  static var model: SimSiam { LayoutFixtures.simSiam(seed: 1) }  // deterministic: a fresh equal model per use

  @Test(arguments: [
    (LayoutFixtures.torchvision(model.backbone), CheckpointLayout.torchvision, ""),
    (LayoutFixtures.mmselfsupBackbone(model.backbone), .mmselfsupBackbone, "state_dict."),
    (LayoutFixtures.mmselfsup1x(model), .mmselfsup1x, "state_dict."),
    (LayoutFixtures.mmselfsupTraining0x(model), .mmselfsupTraining0x, "state_dict."),
    (LayoutFixtures.official(model), .officialSimSiam, "state_dict."),
    (LayoutFixtures.oursFile(model), .ours, ""),
  ])
  func detectsEachLayout(_ contents: CheckpointContents, _ expected: CheckpointLayout, _ root: String) throws {
    let mapped = try MappedCheckpoint(contents)
    #expect(mapped.layout == expected)
    #expect(mapped.root == root)
  }

  @Test(arguments: [
    (LayoutFixtures.mmselfsup1x(model), true), (LayoutFixtures.mmselfsupTraining0x(model), true),
    (LayoutFixtures.official(model), true), (LayoutFixtures.oursFile(model), true),
    (LayoutFixtures.torchvision(model.backbone), false), (LayoutFixtures.mmselfsupBackbone(model.backbone), false),
  ])
  func everyLayoutMapsOntoOurNames(_ contents: CheckpointContents, _ hasHeads: Bool) throws {
    let mapped = try MappedCheckpoint(contents)
    // The backbone under torchvision names is exactly our ResNet's state dict, in every layout.
    #expect(mapped.backboneTensors == Self.model.backbone.stateDict())
    if hasHeads {
      #expect(mapped.tensors == LayoutFixtures.ours(Self.model))  // fc.6.bias is 0 here, so folding is exact
    } else {
      #expect(mapped.projectorTensors.isEmpty && mapped.predictorTensors.isEmpty)
    }
  }

  @Test func officialProjectorAndPredictorIndicesMapToMMSelfSupNames() throws {
    let mapped = try MappedCheckpoint(LayoutFixtures.official(Self.model))
    let ours = LayoutFixtures.ours(Self.model)
    // Spot checks of the table in PROTOCOLS §6, tensor by tensor.
    #expect(mapped.tensors["neck.fc0.weight"] == ours["neck.fc0.weight"])      // fc.0
    #expect(mapped.tensors["neck.bn1.running_var"] == ours["neck.bn1.running_var"])  // fc.4
    #expect(mapped.tensors["neck.fc2.weight"] == ours["neck.fc2.weight"])      // fc.6.weight
    #expect(mapped.tensors["neck.bn2.num_batches_tracked"] == ours["neck.bn2.num_batches_tracked"])  // fc.7
    #expect(mapped.tensors["head.predictor.bn0.weight"] == ours["head.predictor.bn0.weight"])  // predictor.1
    #expect(mapped.tensors["head.predictor.fc1.bias"] == ours["head.predictor.fc1.bias"])      // predictor.3
    #expect(mapped.tensors["neck.fc2.bias"] == nil)
    let ignored = Set(mapped.ignored.map(\.name))
    #expect(ignored == ["state_dict.module.encoder.fc.6.bias", "optimizer.state.0.momentum_buffer"])
  }

  @Test func officialLastBiasIsFoldedIntoTheRunningMean() throws {
    let mapped = try MappedCheckpoint(LayoutFixtures.official(Self.model, lastBias: 0.25))
    let mean = try #require(LayoutFixtures.ours(Self.model)["neck.bn2.running_mean"]).value.scalars
    // bn2 at inference: (Wx + b − μ)/σ = (Wx − (μ − b))/σ.
    #expect(mapped.tensors["neck.bn2.running_mean"]?.value.scalars == mean.map { $0 - 0.25 })
    let note = try #require(mapped.ignored.first { $0.name.hasSuffix("fc.6.bias") })
    #expect(note.reason.contains("folded into neck.bn2.running_mean"))
  }

  @Test func torchvisionClassifierAndOptimizerStateAreIgnoredWithReasons() throws {
    let mapped = try MappedCheckpoint(LayoutFixtures.torchvision(Self.model.backbone))
    #expect(mapped.ignored.map(\.name) == ["fc.bias", "fc.weight"])
    #expect(mapped.ignored.allSatisfy { $0.reason.contains("classifier") })
    let training = try MappedCheckpoint(LayoutFixtures.mmselfsup1x(Self.model))
    #expect(training.ignored.map(\.name) == ["optimizer.state.0.momentum_buffer"])
  }

  @Test func mmselfsup0xDuplicatesAreVerifiedAndIgnored() throws {
    let mapped = try MappedCheckpoint(LayoutFixtures.mmselfsupTraining0x(Self.model))
    let duplicates = mapped.ignored.filter { $0.reason.hasPrefix("encoder.0/encoder.1 copy identical") }
    let expected = LayoutFixtures.ours(Self.model).keys.filter { !$0.hasPrefix("head.") }.count
    #expect(duplicates.count == expected)
    #expect(duplicates.contains { $0.name == "state_dict.encoder.1.bn2.running_mean" })
  }

  @Test func mmselfsup0xDuplicatesThatDifferAreAnError() throws {
    var contents = LayoutFixtures.mmselfsupTraining0x(Self.model)
    var tensor = try #require(contents.tensors["state_dict.encoder.0.layer2.1.conv2.weight"])
    tensor.value.scalars[0] += 1
    contents.tensors["state_dict.encoder.0.layer2.1.conv2.weight"] = tensor
    #expect {
      try MappedCheckpoint(contents)
    } throws: { error in
      guard case let .duplicatesDiffer(_, keys) = error as? CheckpointLayoutError else { return false }
      return keys == ["state_dict.encoder.0.layer2.1.conv2.weight ≠ state_dict.backbone.layer2.1.conv2.weight"]
        && String(describing: error).contains("MMSelfSup 0.x")
    }
  }

  @Test func unknownLayoutSuggestsThePrefixWhereTorchvisionNamesAre() throws {
    // A MoCo v2 checkpoint keeps the query encoder under module.encoder_q.
    let contents = CheckpointContents(
      tensors: LayoutFixtures.prefixed(Self.model.backbone.stateDict(), "state_dict.module.encoder_q."),
      format: .pytorch, source: "moco.pth.tar")
    #expect {
      try MappedCheckpoint(contents)
    } throws: { error in
      guard case let .undetectedLayout(_, _, suggestion) = error as? CheckpointLayoutError else { return false }
      return suggestion == "state_dict.module.encoder_q." && String(describing: error).contains("--prefix")
    }
    // Both the full and the state-dict-relative prefix work, with or without the final dot.
    for prefix in ["module.encoder_q", "state_dict.module.encoder_q."] {
      let mapped = try MappedCheckpoint(contents, prefix: prefix)
      #expect(mapped.layout == .torchvision)
      #expect(mapped.root == "state_dict.module.encoder_q.")
      #expect(mapped.backboneTensors == Self.model.backbone.stateDict())
    }
  }

  @Test func overridesThatDoNotFitTheFileAreErrors() {
    let contents = LayoutFixtures.mmselfsup1x(Self.model)
    #expect(throws: CheckpointLayoutError.self) { try MappedCheckpoint(contents, layout: .officialSimSiam) }
    #expect(throws: CheckpointLayoutError.self) { try MappedCheckpoint(contents, prefix: "module.encoder_q") }
    // Forcing a layout that fits works: the backbone-only reading of a torchvision file.
    #expect(throws: Never.self) {
      try MappedCheckpoint(LayoutFixtures.torchvision(Self.model.backbone), layout: .mmselfsupBackbone)
    }
  }
}

@Suite struct CheckpointArchitectureGuessTests {
  @Test func guessesResNet18WidthAndStem() throws {
    let guess = try #require(ArchitectureGuess(backbone: LayoutFixtures.resNet(seed: 1).stateDict()))
    #expect(guess.depth == 18)
    #expect(guess.blockKind == .basic)
    #expect(guess.blocksPerStage == [2, 2, 2, 2])
    #expect(guess.stemWidth == 2 && guess.widthMultiplier == 1.0 / 32)
    #expect(!guess.cifarStem && guess.inChannels == 3)
    #expect(guess.description == "ResNet-18 (basic blocks 2-2-2-2), width ×1/32, ImageNet stem (7×7 conv1 + "
              + "max-pool), 3 input channels")
  }

  @Test func guessesResNet50FromBottlenecks() throws {
    let model = LayoutFixtures.resNet(seed: 1, config: ResNetConfig(depth: 50, widthMultiplier: 1.0 / 16))
    let guess = try #require(ArchitectureGuess(backbone: model.stateDict()))
    #expect(guess.depth == 50 && guess.blockKind == .bottleneck && guess.blocksPerStage == [3, 4, 6, 3])
    #expect(guess.stemWidth == 4)
  }

  @Test func guessesResNet34AndTheCIFARStem() throws {
    let model = LayoutFixtures.resNet(seed: 1, config: ResNetConfig(depth: 34, widthMultiplier: 1.0 / 32,
                                                                    cifarStem: true))
    let guess = try #require(ArchitectureGuess(backbone: model.stateDict()))
    #expect(guess.depth == 34 && guess.blockKind == .basic && guess.cifarStem)
    #expect(guess.description.contains("CIFAR stem"))
  }

  @Test func nonStandardBlockCountsHaveNoDepthAndNoConv1MeansNoGuess() throws {
    var tensors = LayoutFixtures.resNet(seed: 1).stateDict()
    for name in tensors.keys where name.hasPrefix("layer3.1.") { tensors[name] = nil }
    let guess = try #require(ArchitectureGuess(backbone: tensors))
    #expect(guess.blocksPerStage == [2, 2, 1, 2] && guess.depth == nil)
    tensors["conv1.weight"] = nil
    #expect(ArchitectureGuess(backbone: tensors) == nil)
  }
}

@Suite struct CheckpointLayoutFileTests {
  @Test func dispatchesOnMagicBytes() throws {
    let model = LayoutFixtures.simSiam(seed: 2)
    try withScratchFile("ours.safetensors") { url in
      try SafeTensors(tensors: LayoutFixtures.ours(model), metadata: ["epoch": "3"]).write(to: url)
      let contents = try CheckpointContents.read(url) { _ in
        Issue.record("a safetensors file went to the PyTorch reader")
        throw CancellationError()
      }
      #expect(contents.format == .safetensors && contents.epoch == "3")
      #expect(try MappedCheckpoint(contents).layout == .ours)
    }
    try withScratchFile("zipped.pth") { url in
      try Data([0x50, 0x4B, 0x03, 0x04, 0, 0, 0, 0, 0, 0]).write(to: url)
      let contents = try CheckpointContents.read(url) { url in
        CheckpointContents(tensors: [:], values: ["epoch": "9"], format: .pytorch, source: url.path)
      }
      #expect(contents.format == .pytorch && contents.values == ["epoch": "9"])
    }
  }

  @Test func legacyTorchFormatIsRefusedWithAHint() throws {
    try withScratchFile("legacy.pth") { url in
      // torch.save(…, _use_new_zipfile_serialization=False) starts with PROTO 2 and a LONG1 magic number.
      try Data([0x80, 0x02, 0x8A, 0x0A, 0x6C, 0xFC, 0x9C, 0x46, 0xF9, 0x20]).write(to: url)
      #expect {
        try CheckpointContents.read(url) { _ in throw CancellationError() }
      } throws: { error in
        guard case .unrecognizedFile = error as? CheckpointLayoutError else { return false }
        return String(describing: error).contains("torch.save(torch.load(")
      }
    }
  }
}
