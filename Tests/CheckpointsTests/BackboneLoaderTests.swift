import Foundation
import Testing
import Tensors
import Layers
import Models
import Checkpoints

@Suite struct BackboneLoaderTests {
  static var source: SimSiam { LayoutFixtures.simSiam(seed: 11) }

  @Test(arguments: [CheckpointLayout.torchvision, .mmselfsupBackbone, .mmselfsup1x, .mmselfsupTraining0x,
                    .officialSimSiam, .ours])
  func loadsTheBackboneStrictlyFromEveryLayout(_ layout: CheckpointLayout) throws {
    let source = Self.source
    let contents: CheckpointContents = switch layout {
    case .torchvision: LayoutFixtures.torchvision(source.backbone)
    case .mmselfsupBackbone: LayoutFixtures.mmselfsupBackbone(source.backbone)
    case .mmselfsup1x: LayoutFixtures.mmselfsup1x(source)
    case .mmselfsupTraining0x: LayoutFixtures.mmselfsupTraining0x(source)
    case .officialSimSiam: LayoutFixtures.official(source)
    case .ours: LayoutFixtures.oursFile(source)
    }
    let target = LayoutFixtures.resNet(seed: 99)
    #expect(target.stateDict() != source.backbone.stateDict())
    let report = try BackboneLoader.load(contents, into: target)
    #expect(target.stateDict() == source.backbone.stateDict())
    #expect(report.layout == layout && report.isComplete)
    #expect(report.loaded.count == target.namedParameters.count)
    #expect(report.sha256 == nil)  // the CLI fills it in
    if [.mmselfsup1x, .officialSimSiam, .ours].contains(layout) {
      #expect(report.ignored.contains { $0.name == "neck.fc0.weight" && $0.reason.contains("not loaded into") })
    }
  }

  @Test func missingUnexpectedAndWrongShapesAreListedAndNothingChanges() throws {
    var contents = LayoutFixtures.mmselfsup1x(Self.source)
    contents.tensors["state_dict.backbone.layer1.0.conv1.weight"] = nil
    contents.tensors["state_dict.backbone.layer5.0.conv1.weight"] = StoredTensor(Tensor.zeros([1]))
    contents.tensors["state_dict.backbone.bn1.weight"] = StoredTensor(Tensor.zeros([3]))
    let target = LayoutFixtures.resNet(seed: 99)
    let before = target.stateDict()
    #expect {
      try BackboneLoader.load(contents, into: target)
    } throws: { error in
      guard case let .mismatch(_, layout, missing, unexpected, wrongShapes) = error as? CheckpointLayoutError else {
        return false
      }
      let text = String(describing: error)
      return layout == CheckpointLayout.mmselfsup1x.displayName
        && missing == ["layer1.0.conv1.weight"] && unexpected == ["layer5.0.conv1.weight"]
        && wrongShapes == [ShapeMismatch(name: "bn1.weight", expected: [2], found: [3])]
        && text.contains("detected layout: MMSelfSup 1.x") && text.contains("layer1.0.conv1.weight")
        && text.contains("--allow-missing")
    }
    #expect(target.stateDict() == before)
  }

  @Test func aWiderCheckpointIsAShapeErrorOnEveryTensor() throws {
    let wide = LayoutFixtures.resNet(seed: 1, config: ResNetConfig(depth: 18, widthMultiplier: 1.0 / 16))
    let target = LayoutFixtures.resNet(seed: 2)
    #expect {
      try BackboneLoader.load(LayoutFixtures.torchvision(wide), into: target)
    } throws: { error in
      guard case let .mismatch(_, _, missing, unexpected, wrongShapes) = error as? CheckpointLayoutError else {
        return false
      }
      // Every tensor but the scalar counters has a channel dimension that doubled.
      let counters = target.namedParameters.filter { $0.name.hasSuffix("num_batches_tracked") }.count
      return missing.isEmpty && unexpected.isEmpty && wrongShapes.count == target.namedParameters.count - counters
        && wrongShapes.first == ShapeMismatch(name: "conv1.weight", expected: [2, 3, 7, 7], found: [4, 3, 7, 7])
    }
  }

  @Test func allowMissingLoadsWhatMatchesAndReportsTheRest() throws {
    let source = Self.source
    var contents = LayoutFixtures.oursFile(source)
    contents.tensors["backbone.layer4.1.bn2.running_var"] = nil
    contents.tensors["backbone.conv1.weight"] = StoredTensor(Tensor.zeros([2, 3, 3, 3]))
    contents.tensors["backbone.extra.weight"] = StoredTensor(Tensor.zeros([1]))
    let target = LayoutFixtures.resNet(seed: 99)
    let untouched = target.stateDict()
    let report = try BackboneLoader.load(contents, into: target, allowMissing: true)
    #expect(!report.isComplete)
    #expect(report.missing == ["layer4.1.bn2.running_var"])
    #expect(report.unexpected == ["extra.weight"])
    #expect(report.wrongShapes.map(\.name) == ["conv1.weight"])
    #expect(report.loaded.count == target.namedParameters.count - 2)
    let loaded = target.stateDict(), expected = source.backbone.stateDict()
    for (name, tensor) in loaded {
      let skipped = name == "layer4.1.bn2.running_var" || name == "conv1.weight"
      #expect(tensor == (skipped ? untouched[name] : expected[name]), "\(name)")
    }
    let text = report.rendered()
    #expect(text.contains("SKIPPED, missing from the file (1): layer4.1.bn2.running_var"))
    #expect(text.contains("SKIPPED, wrong shape (1): conv1.weight (model [2, 3, 7, 7], file [2, 3, 3, 3])"))
  }

  @Test func absentBatchCountersDefaultToZeroAsInPyTorch() throws {
    var contents = LayoutFixtures.torchvision(Self.source.backbone)
    for name in contents.tensors.keys where name.hasSuffix("num_batches_tracked") { contents.tensors[name] = nil }
    let target = LayoutFixtures.resNet(seed: 99)
    for (name, parameter) in target.namedParameters where name.hasSuffix("num_batches_tracked") {
      parameter.value = Tensor(shape: [], scalars: [7])
    }
    let report = try BackboneLoader.load(contents, into: target)
    #expect(report.isComplete && report.defaulted.count == 20)  // stem + 8 blocks × 2 BN + 3 downsample BN
    for (name, tensor) in target.stateDict() where name.hasSuffix("num_batches_tracked") {
      #expect(tensor.value.scalars == [0], "\(name)")
    }
  }

  @Test(arguments: [CheckpointLayout.officialSimSiam, .mmselfsupTraining0x, .mmselfsup1x, .ours])
  func loadsAWholeSimSiam(_ layout: CheckpointLayout) throws {
    let source = Self.source
    let contents: CheckpointContents = switch layout {
    case .officialSimSiam: LayoutFixtures.official(source)
    case .mmselfsupTraining0x: LayoutFixtures.mmselfsupTraining0x(source)
    case .mmselfsup1x: LayoutFixtures.mmselfsup1x(source)
    default: LayoutFixtures.oursFile(source)
    }
    let target = LayoutFixtures.simSiam(seed: 77)
    let report = try BackboneLoader.loadSimSiam(MappedCheckpoint(contents), into: target.namedParameters)
    #expect(report.isComplete && report.loaded.count == target.namedParameters.count)
    #expect(StateDict.tensors(of: target.namedParameters) == LayoutFixtures.ours(source))
  }

  @Test func aBackboneOnlyFileIntoSimSiamNeedsAllowMissing() throws {
    let mapped = try MappedCheckpoint(LayoutFixtures.mmselfsupBackbone(Self.source.backbone))
    let target = LayoutFixtures.simSiam(seed: 77)
    #expect {
      try BackboneLoader.loadSimSiam(mapped, into: target.namedParameters)
    } throws: { error in
      guard case let .mismatch(_, _, missing, _, _) = error as? CheckpointLayoutError else { return false }
      return missing.contains("neck.fc0.weight") && missing.contains("head.predictor.fc1.bias")
        && !missing.contains { $0.hasPrefix("backbone.") }
    }
    let report = try BackboneLoader.loadSimSiam(mapped, into: target.namedParameters, allowMissing: true)
    #expect(report.missing.allSatisfy { $0.hasPrefix("neck.") || $0.hasPrefix("head.predictor.") })
    #expect(target.backbone.stateDict() == Self.source.backbone.stateDict())
  }
}
