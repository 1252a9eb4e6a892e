import Foundation
import Testing
import Tensors
import Layers
import Models
@testable import Checkpoints

/// Features of our ResNet-50 (width 1/32) loaded from the committed .pth fixtures against PyTorch's features for
/// the same weights (Fixtures/pth/features.safetensors: torchvision.pth loaded into the reference ResNet of
/// make_engine_fixtures.py, which is torchvision's resnet50 minus avgpool/fc, then model.eval()).
@Suite struct FeatureParityTests {
  /// The files whose backbone holds the weights of torchvision.pth, each in its own layout.
  static let fixtures: [(String, CheckpointLayout)] = [
    ("torchvision.pth", .torchvision), ("simsiam_official.pth.tar", .officialSimSiam),
    ("mmselfsup0_train.pth", .mmselfsupTraining0x), ("mmselfsup_zoo_backbone.pth", .mmselfsupBackbone),
    ("mmselfsup1.pth", .mmselfsup1x),
  ]

  /// Reads a fixture the way the CLI does: magic-byte dispatch, .pth through the pickle reader.
  static func read(_ name: String) throws -> CheckpointContents {
    try CheckpointContents.read(try pthFixture(name)) { url in
      let file = try PyTorchCheckpoint(contentsOf: url)
      return CheckpointContents(tensors: file.tensors, values: file.values, format: .pytorch, source: url.path)
    }
  }

  @Test(arguments: fixtures.map(\.0))
  func featuresMatchPyTorchForTheSameWeights(fixture: String) throws {
    let layout = try #require(Self.fixtures.first { $0.0 == fixture }?.1)
    let reference = try SafeTensors(contentsOf: try pthFixture("features.safetensors"))
    let input = try #require(reference.tensors["input"]).value  // [2, 3, 64, 64] NCHW
    var generator = SplitMix64(seed: 5)
    let model = ResNet(ResNetConfig(depth: 50, widthMultiplier: 1.0 / 32), using: &generator)
    let report = try BackboneLoader.load(try Self.read(fixture), into: model)
    #expect(report.layout == layout && report.isComplete)
    #expect(report.loaded.count == model.namedParameters.count)

    let x = input.nchwToNHWC()
    let (forward, _) = model.forwardFeatures(x, mode: .inference)
    let folded = model.inferFeatures(x)
    #expect(forward.count == 5 && folded.count == 5)
    for index in 0..<min(5, forward.count, folded.count) {
      let expected = try #require(reference.tensors["eval.feature\(index + 1)"]).value
      let forwardError = forward[index].nhwcToNCHW().scaledError(to: expected)
      let foldedError = folded[index].nhwcToNCHW().scaledError(to: expected)
      #expect(forwardError <= 1e-4, "\(fixture) forwardFeatures feature\(index + 1): scaled error \(forwardError)")
      #expect(foldedError <= 1e-4, "\(fixture) inferFeatures feature\(index + 1): scaled error \(foldedError)")
    }
  }

  /// The check can fail: a backbone whose last BatchNorm's running variance is perturbed gives other features.
  @Test func aPerturbedWeightIsCaught() throws {
    let reference = try SafeTensors(contentsOf: try pthFixture("features.safetensors"))
    var contents = try Self.read("torchvision.pth")
    let key = "layer4.2.bn3.running_var"
    let original = try #require(contents.tensors[key]).value
    contents.tensors[key] = StoredTensor(Tensor(shape: original.shape, scalars: original.scalars.map { $0 * 4 }))
    var generator = SplitMix64(seed: 5)
    let model = ResNet(ResNetConfig(depth: 50, widthMultiplier: 1.0 / 32), using: &generator)
    _ = try BackboneLoader.load(contents, into: model)
    let feature5 = model.inferFeatures(try #require(reference.tensors["input"]).value.nchwToNHWC())[4]
    let error = feature5.nhwcToNCHW().scaledError(to: try #require(reference.tensors["eval.feature5"]).value)
    #expect(error > 1e-3)
  }
}
