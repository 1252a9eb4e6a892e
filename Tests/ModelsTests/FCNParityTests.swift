// Golden parity of the FCN-D8 segmentor with PyTorch 2.13: a width-1/32 dilated ResNet-50 with mmseg's decode and
// auxiliary FCNHeads, forward (both heads, both losses) + backward + one SGD step, inference logits, and the
// segmentation loss alone with both align_corners.
// Fixture: scripts/reference/make_fcn_fixtures.py → Tests/ModelsTests/Fixtures/fcn_d8_tiny.safetensors (its docstring
// lists every tensor).
//
// Tolerances (scaled error = max |ours − torch| / max |torch|): features, logits and losses 1e-4 (Float32 through
// ~60 layers, as in PyTorchParityTests); gradients and the updated weights 1e-3 (the backward sums over the batch
// and the bilinear scatter in a different order, and BN's batch-statistics backward amplifies rounding in the
// smallest channels). A wrong dilation, a missing contract_dilation, a dropped auxiliary gradient or a loss averaged
// over the non-ignored pixels only moves these by far more than 1e-2.
import Foundation
import Testing
import Tensors
import Layers
import Models
import Checkpoints
import TestSupport

enum FCNFixture {
  static let backbone = ResNetConfig(depth: 50, widthMultiplier: 1.0 / 32).dilatedD8()
  static let config = FCNConfig(classCount: 5).scalingHeads(by: 1.0 / 32)

  static func load() throws -> SafeTensors {
    let url = try #require(Bundle.module.url(forResource: "fcn_d8_tiny", withExtension: "safetensors",
                                             subdirectory: "Fixtures"))
    return try SafeTensors(contentsOf: url)
  }

  /// A segmentor holding the fixture's initial weights and buffers.
  static func makeSegmentor(_ file: SafeTensors) throws -> FCNSegmentor {
    var rng = SplitMix64(seed: 3)
    let segmentor = FCNSegmentor(backbone: backbone, config: config, using: &rng)
    try StateDict.load(file.tensors(withPrefix: "init."), into: segmentor.namedParameters, source: "fcn_d8_tiny")
    return segmentor
  }

  static func labels(_ file: SafeTensors, _ name: String) throws -> [UInt8] {
    try file.tensor(name).scalars.map { UInt8($0) }
  }
}

@Suite struct FCNParityTests {
  @Test func stateDictNamesAndShapesMatchMMSeg() throws {
    let file = try FCNFixture.load()
    var rng = SplitMix64(seed: 3)
    let segmentor = FCNSegmentor(backbone: FCNFixture.backbone, config: FCNFixture.config, using: &rng)
    let expected = file.tensors(withPrefix: "init.")
    #expect(Set(segmentor.namedParameters.map(\.name)) == Set(expected.keys))
    #expect(segmentor.namedParameters.count == expected.count)
    for (name, parameter) in segmentor.namedParameters {
      #expect(parameter.exportedShape == expected[name]?.value.shape, "shape of \(name)")
    }
  }

  @Test func trainingStepMatchesLossesGradientsAndSGDStep() throws {
    let file = try FCNFixture.load()
    let segmentor = try FCNFixture.makeSegmentor(file)
    let images = try file.tensor("input.images").nchwToNHWC()
    let labels = try FCNFixture.labels(file, "input.labels")
    let decodeMask = segmentor.decodeHead.dropout.mask(keeping: try file.tensor("input.decode_keep"))
    let auxiliaryHead = try #require(segmentor.auxiliaryHead)
    let auxiliaryMask = auxiliaryHead.dropout.mask(keeping: try file.tensor("input.auxiliary_keep"))

    segmentor.zeroGrad()
    let losses = segmentor.trainingStep(images: images, labels: labels, decodeDropoutMask: decodeMask,
                                        auxiliaryDropoutMask: auxiliaryMask)
    let expectedDecode = try file.tensor("loss.decode").scalars[0]
    let expectedAuxiliary = try file.tensor("loss.auxiliary").scalars[0]
    #expect(abs(losses.decodeLoss - expectedDecode) <= 1e-4 * abs(expectedDecode),
            "decode loss \(losses.decodeLoss) vs PyTorch \(expectedDecode)")
    #expect(abs(losses.auxiliaryLoss - expectedAuxiliary) <= 1e-4 * abs(expectedAuxiliary),
            "auxiliary loss \(losses.auxiliaryLoss) vs PyTorch \(expectedAuxiliary)")

    var compared = 0
    for (name, parameter) in segmentor.namedParameters where !parameter.isBuffer {
      let error = parameter.exportedGrad.scaledError(to: try file.tensor("grad.\(name)"))
      #expect(error <= 1e-3, "grad.\(name): scaled error \(error)")
      compared += 1
    }
    #expect(compared == file.tensors(withPrefix: "grad.").count)

    // torch.optim.SGD(lr=0.01, momentum=0.9, weight_decay=5e-4), one step; the buffers hold the running statistics
    // the training forward updated (num_batches_tracked = 1).
    let sgd = SGD(segmentor.parameters, learningRate: 0.01, momentum: 0.9, weightDecay: 5e-4)
    sgd.step()
    for (name, parameter) in segmentor.namedParameters {
      let error = parameter.exportedValue.scaledError(to: try file.tensor("step.\(name)"))
      #expect(error <= 1e-3, "step.\(name): scaled error \(error)")
    }
  }

  @Test func trainingFeaturesAndHeadLogitsMatch() throws {
    let file = try FCNFixture.load()
    let segmentor = try FCNFixture.makeSegmentor(file)
    let images = try file.tensor("input.images").nchwToNHWC()
    let (features, _) = segmentor.backbone.forwardFeatures(images, mode: .training)
    #expect(features[4].shape == [2, 5, 5, 64], "output stride 8: 40×40 → 5×5")
    for (index, name) in [(3, "train.feature4"), (4, "train.feature5")] {
      let error = features[index].nhwcToNCHW().scaledError(to: try file.tensor(name))
      #expect(error <= 1e-4, "\(name): scaled error \(error)")
    }
    let decodeMask = segmentor.decodeHead.dropout.mask(keeping: try file.tensor("input.decode_keep"))
    let decodeLogits = segmentor.decodeHead.forward(features[4], mode: .training, dropoutMask: decodeMask).0
    let decodeError = decodeLogits.nhwcToNCHW().scaledError(to: try file.tensor("train.decode_logits"))
    #expect(decodeError <= 1e-4, "train.decode_logits: scaled error \(decodeError)")
    let auxiliaryHead = try #require(segmentor.auxiliaryHead)
    let auxiliaryMask = auxiliaryHead.dropout.mask(keeping: try file.tensor("input.auxiliary_keep"))
    let auxiliaryLogits = auxiliaryHead.forward(features[3], mode: .training, dropoutMask: auxiliaryMask).0
    let auxiliaryError = auxiliaryLogits.nhwcToNCHW().scaledError(to: try file.tensor("train.auxiliary_logits"))
    #expect(auxiliaryError <= 1e-4, "train.auxiliary_logits: scaled error \(auxiliaryError)")
  }

  @Test func inferenceLogitsMatch() throws {
    let file = try FCNFixture.load()
    let segmentor = try FCNFixture.makeSegmentor(file)
    let logits = segmentor.predictLogits(try file.tensor("input.images").nchwToNHWC(), height: 40, width: 40)
    #expect(logits.shape == [2, 40, 40, 5])
    let error = logits.nhwcToNCHW().scaledError(to: try file.tensor("eval.logits"))
    #expect(error <= 1e-4, "eval.logits: scaled error \(error)")
  }

  /// mmseg's loss on its own: bilinear resize 7×6 → 23×17 with both align_corners, CE ignoring 255, mean over all
  /// pixels, loss weight 0.7.
  @Test(arguments: [false, true])
  func segmentationLossMatches(alignCorners: Bool) throws {
    let file = try FCNFixture.load()
    let logits = try file.tensor("lossonly.logits").nchwToNHWC()
    let labels = try FCNFixture.labels(file, "lossonly.labels")
    let result = segmentationCrossEntropy(logits: logits, labels: labels, labelHeight: 23, labelWidth: 17,
                                          alignCorners: alignCorners, weight: 0.7)
    let key = "lossonly.\(alignCorners)"
    let expected = try file.tensor("\(key).loss").scalars[0]
    #expect(abs(result.loss - expected) <= 1e-5 * abs(expected), "\(key).loss: \(result.loss) vs \(expected)")
    let error = result.gradient.nhwcToNCHW().scaledError(to: try file.tensor("\(key).grad"))
    #expect(error <= 1e-5, "\(key).grad: scaled error \(error)")
  }
}
