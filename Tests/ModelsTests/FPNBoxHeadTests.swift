// Golden parity of the FPN ROI extractor and the Shared4Conv1FC box head with mmdet 2.x re-implemented in PyTorch
// 2.13 (mask_rcnn_r50_fpn as MMSelfSup v0.8.0 configures it): map_roi_levels at its boundaries, MaxIoUAssigner with
// low-quality matches (a planted proposal re-matched to the GT that claims it), targets for fixed sampled indices,
// the pooled features over four levels, the train-mode head (BN batch statistics), both losses and every gradient
// (head parameters and all four pyramid levels), eval mode and the chunked `infer`, detections from the head's
// outputs, and the head without norm (conv biases). Plus a dot-product test of the extractor's backward and finite
// differences of the norm-free head.
// Fixture: scripts/reference/make_fpn_box_head_fixtures.py → Tests/ModelsTests/Fixtures/fpn_box_head_tiny.safetensors.
//
// Tolerances (scaled error = max |ours − torch| / max |torch|): targets and test-time boxes 1e-5; pooled features,
// logits, losses and gradients 1e-4 (ROIAlign, four convs with batch-statistics BatchNorms over 61·49 rows and an
// fc, summed in another order). A roi on the wrong level, an NHWC flatten instead of PyTorch's (c, h, w), or the
// C4 assigner without low-quality matches move them far more.
import Foundation
import Testing
import Tensors
import Layers
import Models
import Checkpoints
import TestSupport

enum FPNBoxHeadFixture {
  static let classCount = 3
  static let roiConfig = ROIHeadConfig.mmdetFPN(classCount: classCount)
  static let headConfig = ConvFCBoxHeadConfig(classCount: classCount, inChannels: 2, convChannels: 8, fcChannels: 16)

  static func load() throws -> SafeTensors {
    let url = try #require(Bundle.module.url(forResource: "fpn_box_head_tiny", withExtension: "safetensors",
                                             subdirectory: "Fixtures"))
    return try SafeTensors(contentsOf: url)
  }

  static func makeHead(_ file: SafeTensors, prefix: String = "init.", usesNorm: Bool = true) throws -> ConvFCBoxHead {
    var rng = SplitMix64(seed: 7)
    var config = headConfig
    config.usesNorm = usesNorm
    let head = ConvFCBoxHead(config: config, using: &rng)
    try StateDict.load(file.tensors(withPrefix: prefix), into: head.namedParameters, source: "fpn_box_head_tiny")
    return head
  }

  static func levels(_ file: SafeTensors) throws -> [Tensor] {
    try (0..<4).map { try file.tensor("input.features\($0)").nchwToNHWC() }
  }

  static func indices(_ file: SafeTensors, _ name: String) throws -> [Int] {
    try file.tensor(name).scalars.map { Int($0) }
  }

  static func samples(_ file: SafeTensors, config: ROIHeadConfig = roiConfig) throws -> [ROISample] {
    try (0..<2).map { image in
      config.sampleROIs(proposals: try file.tensor("input.proposals\(image)"),
                        gtBoxes: try file.tensor("input.gt_boxes\(image)"),
                        gtLabels: try indices(file, "input.gt_labels\(image)"),
                        positives: try indices(file, "sample.positive\(image)"),
                        negatives: try indices(file, "sample.negative\(image)"))
    }
  }
}

@Suite struct FPNBoxHeadTests {
  @Test func levelMappingMatchesMapROILevels() throws {
    let file = try FPNBoxHeadFixture.load()
    let extractor = MultiLevelROIExtractor.mmdetBox
    #expect(extractor.levels(of: try file.tensor("mapping.rois")) == (try FPNBoxHeadFixture.indices(file, "mapping.levels")))
    let levels = extractor.levels(of: try file.tensor("rois"))
    #expect(levels == (try FPNBoxHeadFixture.indices(file, "levels")))
    #expect(Set(levels) == [0, 1, 2, 3], "the fixture's rois cover every level")
    // Hand-computed: scale 111.9 → P2, 112 → P3 (log2(2 + 1e-6) ≥ 1), 448 → P5, 5000 → P5 (clamped).
    let rois = Tensor(shape: [4, 5], scalars: [0, 0, 0, 111.9, 111.9, 0, 0, 0, 112, 112, 0, 0, 0, 448, 448,
                                               0, 0, 0, 5000, 5000])
    #expect(extractor.levels(of: rois) == [0, 1, 3, 3])
  }

  @Test func stateDictNamesOrderAndShapesMatchMMDet() throws {
    let file = try FPNBoxHeadFixture.load()
    let head = try FPNBoxHeadFixture.makeHead(file)  // StateDict.load checks every shape
    #expect(head.namedParameters.map(\.name).sorted() == file.tensors(withPrefix: "init.").keys.sorted())
    #expect(head.namedParameters.prefix(5).map(\.name)
              == ["fc_cls.weight", "fc_cls.bias", "fc_reg.weight", "fc_reg.bias", "shared_convs.0.conv.weight"])
    #expect(head.sharedFCs[0].weight.value.shape == [16, 8 * 7 * 7])
    let plain = try FPNBoxHeadFixture.makeHead(file, prefix: "nonorm.init.", usesNorm: false)
    #expect(plain.namedParameters.contains { $0.name == "shared_convs.3.conv.bias" })
    #expect(!plain.namedParameters.contains { $0.name.contains(".bn.") })
  }

  @Test func assignmentRematchesLowQualityProposalsLikeMaxIoUAssigner() throws {
    let file = try FPNBoxHeadFixture.load()
    for image in 0..<2 {
      let proposals = try file.tensor("input.proposals\(image)"), gtBoxes = try file.tensor("input.gt_boxes\(image)")
      let assignment = FPNBoxHeadFixture.roiConfig.assign(proposals: proposals, gtBoxes: gtBoxes)
      #expect(assignment.labels.map { Int($0.rawValue) } == (try FPNBoxHeadFixture.indices(file, "assign.labels\(image)")))
      let matched = try FPNBoxHeadFixture.indices(file, "assign.matched\(image)")
      for index in assignment.positiveIndices {
        #expect(assignment.matchedGroundTruth[index] == matched[index], "image \(image) candidate \(index)")
      }
    }
    // Image 1's first proposal (candidate 3, after its 3 GTs) overlaps GT 0 most but is GT 1's best: mmdet's
    // low-quality pass re-matches it to GT 1; the C4 config (no low-quality matches) keeps GT 0.
    let proposals = try file.tensor("input.proposals1"), gtBoxes = try file.tensor("input.gt_boxes1")
    #expect(FPNBoxHeadFixture.roiConfig.assign(proposals: proposals, gtBoxes: gtBoxes).matchedGroundTruth[3] == 1)
    #expect(ROIHeadConfig.mmdetC4(classCount: 3).assign(proposals: proposals, gtBoxes: gtBoxes)
              .matchedGroundTruth[3] == 0)
  }

  @Test func targetsForFixedSamplesMatch() throws {
    let file = try FPNBoxHeadFixture.load()
    let samples = try FPNBoxHeadFixture.samples(file)
    #expect(samples.flatMap(\.labels) == (try FPNBoxHeadFixture.indices(file, "target.labels")))
    let targets = Tensor(shape: [samples.reduce(0) { $0 + $1.labels.count }, 4],
                         scalars: samples.flatMap(\.boxTargets.scalars))
    let error = targets.scaledError(to: try file.tensor("target.deltas"))
    #expect(error <= 1e-5, "target deltas: scaled error \(error)")
    #expect(roisForBatch(samples.map(\.boxes)) == (try file.tensor("rois")))
  }

  @Test func extractorPoolsEachROIFromItsLevel() throws {
    let file = try FPNBoxHeadFixture.load()
    // A fifth (P6-like) level is passed and ignored, as mmdet passes x[:num_inputs].
    var levels = try FPNBoxHeadFixture.levels(file)
    levels.append(Tensor(repeating: 1e6, shape: [2, 8, 8, 2]))
    let (pooled, _) = MultiLevelROIExtractor.mmdetBox.forward(features: levels, rois: try file.tensor("rois"))
    let error = pooled.nhwcToNCHW().scaledError(to: try file.tensor("pooled"))
    #expect(error <= 1e-5, "pooled: scaled error \(error)")
  }

  @Test func trainingForwardLossesAndEveryGradientMatch() throws {
    let file = try FPNBoxHeadFixture.load()
    let head = try FPNBoxHeadFixture.makeHead(file)
    let levels = try FPNBoxHeadFixture.levels(file)
    let samples = try FPNBoxHeadFixture.samples(file)
    let rois = roisForBatch(samples.map(\.boxes))
    let extractor = MultiLevelROIExtractor.mmdetBox
    let (pooled, extractorCache) = extractor.forward(features: levels, rois: rois)
    let (logits, deltas, cache) = head.forward(pooled, mode: .training)
    for (value, name) in [(logits, "train.class_logits"), (deltas, "train.box_deltas")] {
      let error = value.scaledError(to: try file.tensor(name))
      #expect(error <= 1e-4, "\(name): scaled error \(error)")
    }
    let losses = roiHeadLosses(classLogits: logits, boxDeltas: deltas, samples: samples, classCount: 3)
    for (value, name) in [(losses.classLoss, "loss.cls"), (losses.boxLoss, "loss.bbox")] {
      let expected = try file.tensor(name).scalars[0]
      #expect(abs(value - expected) <= 1e-4 * abs(expected), "\(name): \(value) vs PyTorch \(expected)")
    }
    let pooledGradient = head.backward(classLogitGradient: losses.classLogitGradient,
                                       boxDeltaGradient: losses.boxDeltaGradient, cache)
    let levelGradients = extractor.backward(outputGradient: pooledGradient, extractorCache)
    #expect(levelGradients.count == 4)
    for (level, gradient) in levelGradients.enumerated() {
      let error = gradient.nhwcToNCHW().scaledError(to: try file.tensor("grad.features\(level)"))
      #expect(error <= 1e-4, "grad.features\(level): scaled error \(error)")
    }
    var compared = 0
    for (name, parameter) in head.namedParameters where !parameter.isBuffer {
      let error = parameter.exportedGrad.scaledError(to: try file.tensor("grad.\(name)"))
      #expect(error <= 1e-4, "grad.\(name): scaled error \(error)")
      compared += 1
    }
    #expect(compared == file.tensors(withPrefix: "grad.").count - 4)
    // Training mode updated the running statistics (momentum 0.1), as PyTorch's train-mode forward does.
    #expect(head.norms[0].numBatchesTracked.value.scalars == [1])
  }

  @Test func inferenceForwardAndChunkedInferMatchEvalMode() throws {
    let file = try FPNBoxHeadFixture.load()
    let head = try FPNBoxHeadFixture.makeHead(file)
    let levels = try FPNBoxHeadFixture.levels(file)
    let rois = try file.tensor("rois")
    let (pooled, _) = MultiLevelROIExtractor.mmdetBox.forward(features: levels, rois: rois)
    let (logits, deltas, _) = head.forward(pooled, mode: .inference)
    let chunked = head.infer(features: levels, rois: rois, chunk: 7)
    for (values, name) in [([logits, chunked.classLogits], "eval.class_logits"),
                           ([deltas, chunked.boxDeltas], "eval.box_deltas")] {
      for value in values {
        let error = value.scaledError(to: try file.tensor(name))
        #expect(error <= 1e-4, "\(name): scaled error \(error)")
      }
    }
  }

  /// How the lead turns the head's test-time outputs into detections: `ROIHeadConfig.mmdetFPN.detections` (softmax,
  /// mmdet delta2bbox, multiclass NMS 0.5, score 0.05, 100 per image) on one image's rows.
  @Test func detectionsFromHeadOutputsMatchGetBBoxes() throws {
    let file = try FPNBoxHeadFixture.load()
    let head = try FPNBoxHeadFixture.makeHead(file)
    let rois = try file.tensor("rois")
    let firstImage = (0..<rois.shape[0]).filter { rois.scalars[5 * $0] == 0 }
    let imageROIs = gatherRows(rois, firstImage)
    let (logits, deltas) = head.infer(features: try FPNBoxHeadFixture.levels(file), rois: imageROIs)
    let proposals = Tensor(shape: [firstImage.count, 4],
                           scalars: firstImage.flatMap { rois.scalars[(5 * $0 + 1)..<(5 * $0 + 5)] })
    let detections = FPNBoxHeadFixture.roiConfig.detections(classLogits: logits, boxDeltas: deltas,
                                                            proposals: proposals, imageHeight: 480, imageWidth: 512)
    #expect(detections.count > 10)
    #expect(detections.labels == (try FPNBoxHeadFixture.indices(file, "test.labels")))
    let scoreError = Tensor(shape: [detections.count], scalars: detections.scores)
      .scaledError(to: try file.tensor("test.scores"))
    #expect(scoreError <= 1e-4, "test.scores: scaled error \(scoreError)")
    let boxError = detections.boxes.scaledError(to: try file.tensor("test.boxes"))
    #expect(boxError <= 1e-5, "test.boxes: scaled error \(boxError)")
  }

  @Test func headWithoutNormMatchesConvModuleWithBias() throws {
    let file = try FPNBoxHeadFixture.load()
    let head = try FPNBoxHeadFixture.makeHead(file, prefix: "nonorm.init.", usesNorm: false)
    let input = try file.tensor("nonorm.input").nchwToNHWC()
    let (logits, deltas, cache) = head.forward(input, mode: .training)
    for (value, name) in [(logits, "nonorm.class_logits"), (deltas, "nonorm.box_deltas")] {
      let error = value.scaledError(to: try file.tensor(name))
      #expect(error <= 1e-4, "\(name): scaled error \(error)")
    }
    let inputGradient = head.backward(classLogitGradient: try file.tensor("nonorm.d_logits"),
                                      boxDeltaGradient: try file.tensor("nonorm.d_deltas"), cache)
    let inputError = inputGradient.nhwcToNCHW().scaledError(to: try file.tensor("nonorm.grad.input"))
    #expect(inputError <= 1e-4, "nonorm.grad.input: scaled error \(inputError)")
    for (name, parameter) in head.namedParameters {
      let error = parameter.exportedGrad.scaledError(to: try file.tensor("nonorm.grad.\(name)"))
      #expect(error <= 1e-4, "nonorm.grad.\(name): scaled error \(error)")
    }
    let inferred = head.infer(input)
    #expect(inferred.classLogits.scaledError(to: logits) <= 1e-5)
  }

  /// The extractor is linear in the features, so its backward must be the exact adjoint:
  /// ⟨backward(g), x⟩ = ⟨g, forward(x)⟩ for random x and g, with rois on every level of two images.
  @Test func extractorBackwardIsTheAdjointOfForward() {
    var rng = SplitMix64(seed: 31)
    let extractor = MultiLevelROIExtractor(outputSize: 3, featureStrides: [4, 8, 16, 32], finestScale: 8)
    let levels = [4, 8, 16, 32].map { Tensor.randomNormal([2, 128 / $0, 96 / $0, 3], using: &rng) }
    // Scales 10, 20, 40, 90 with finestScale 8 → levels 0, 1, 2, 3.
    let rois = Tensor(shape: [5, 5], scalars: [0, 3, 5, 13, 15, 1, 10, 20, 30, 40, 0, 30, 40, 70, 80,
                                               1, 2, 7, 92, 97, 0, 50.5, 60.25, 61, 70])
    #expect(extractor.levels(of: rois) == [0, 1, 2, 3, 0])
    let (pooled, cache) = extractor.forward(features: levels, rois: rois)
    let g = Tensor.randomNormal(pooled.shape, using: &rng)
    let gradients = extractor.backward(outputGradient: g, cache)
    var lhs = 0.0
    for (gradient, level) in zip(gradients, levels) {
      lhs += zip(gradient.scalars, level.scalars).reduce(0) { $0 + Double($1.0) * Double($1.1) }
    }
    let rhs = zip(g.scalars, pooled.scalars).reduce(0) { $0 + Double($1.0) * Double($1.1) }
    #expect(abs(lhs - rhs) <= 1e-4 * max(abs(rhs), 1), "⟨backward(g), x⟩ = \(lhs), ⟨g, forward(x)⟩ = \(rhs)")
    #expect(gradients.allSatisfy { $0.scalars.contains { $0 != 0 } }, "every level receives gradient")
  }

  @Test func normFreeHeadGradientsMatchFiniteDifferences() {
    var rng = SplitMix64(seed: 41)
    let config = ConvFCBoxHeadConfig(classCount: 2, inChannels: 3, roiSize: 3, convCount: 2, convChannels: 4,
                                     fcCount: 2, fcChannels: 5, usesNorm: false)
    let head = ConvFCBoxHead(config: config, using: &rng)
    for parameter in head.parameters { parameter.value = .randomNormal(parameter.value.shape, std: 0.5, using: &rng) }
    let input = Tensor.randomNormal([2, 3, 3, 3], using: &rng)
    let dLogits = Tensor.randomNormal([2, 3], using: &rng), dDeltas = Tensor.randomNormal([2, 8], using: &rng)
    func loss() -> Double {
      let (logits, deltas, _) = head.forward(input, mode: .inference)
      return zip(logits.scalars, dLogits.scalars).reduce(0) { $0 + Double($1.0 * $1.1) }
        + zip(deltas.scalars, dDeltas.scalars).reduce(0) { $0 + Double($1.0 * $1.1) }
    }
    for parameter in head.parameters { parameter.zeroGrad() }
    let (_, _, cache) = head.forward(input, mode: .inference)
    _ = head.backward(classLogitGradient: dLogits, boxDeltaGradient: dDeltas, cache)
    for (name, parameter) in head.namedParameters {
      expectGradientsMatch(loss, wrt: parameter, named: name, step: 1e-3, tolerance: 1e-2, samples: 24,
                           kinkThreshold: 0.02)
    }
  }

  /// mmdet's init_weights at the real sizes' proportions (smaller channel counts): kaiming-normal fan_out convs
  /// without bias, Xavier-uniform shared fc with zero bias, fc_cls N(0, 0.01²), fc_reg N(0, 0.001²), BN γ 1 β 0.
  @Test func initialisationFollowsMMDetInitWeights() {
    var rng = SplitMix64(seed: 3)
    let config = ConvFCBoxHeadConfig(classCount: 20, inChannels: 32, convChannels: 64, fcChannels: 256)
    let head = ConvFCBoxHead(config: config, using: &rng)
    func std(_ t: Tensor) -> Float {
      let mean = t.scalars.reduce(0, +) / Float(t.count)
      return (t.scalars.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Float(t.count)).squareRoot()
    }
    let convStd = (2 / Float(64 * 9)).squareRoot()
    #expect(abs(std(head.convs[1].weight.value) / convStd - 1) < 0.05)
    #expect(head.convs.allSatisfy { $0.bias == nil })
    let bound = (6 / Float(64 * 49 + 256)).squareRoot()
    let fc = head.sharedFCs[0]
    #expect(fc.weight.value.scalars.allSatisfy { abs($0) <= bound })
    #expect(abs(std(fc.weight.value) / (bound / Float(3).squareRoot()) - 1) < 0.05)
    #expect(fc.bias!.value.scalars.allSatisfy { $0 == 0 })
    #expect(abs(std(head.classifier.weight.value) / 0.01 - 1) < 0.1)
    #expect(abs(std(head.regressor.weight.value) / 0.001 - 1) < 0.1)
    #expect(head.classifier.bias!.value.scalars.allSatisfy { $0 == 0 } && head.regressor.bias!.value.scalars.allSatisfy { $0 == 0 })
    #expect(head.norms[0].weight!.value.scalars.allSatisfy { $0 == 1 })
  }

  @Test func mmdetPresetsMatchTheConfig() {
    let config = ROIHeadConfig.mmdetFPN(classCount: 80)
    #expect(config.matchesLowQuality && config.minPositiveIoU == 0.5 && config.positiveIoU == 0.5
              && config.negativeIoU == 0.5)
    #expect(config.batchSizePerImage == 512 && config.positiveFraction == 0.25 && config.addsGroundTruthAsProposals)
    #expect(config.scoreThreshold == 0.05 && config.nmsThreshold == 0.5 && config.detectionsPerImage == 100)
    #expect(!ROIHeadConfig.mmdetC4(classCount: 20).matchesLowQuality)
    let head = ConvFCBoxHeadConfig.shared4Conv1FC(classCount: 80)
    #expect(head.inChannels == 256 && head.convCount == 4 && head.convChannels == 256 && head.fcCount == 1
              && head.fcChannels == 1024 && head.roiSize == 7 && head.usesNorm)
    #expect(MultiLevelROIExtractor.mmdetBox.featureStrides == [4, 8, 16, 32]
              && MultiLevelROIExtractor.mmdetBox.outputSize == 7 && MultiLevelROIExtractor.mmdetMask.outputSize == 14)
    #expect(MultiLevelROIExtractor.mmdetBox.aligners.map(\.spatialScale) == [0.25, 0.125, 0.0625, 0.03125])
    #expect(MultiLevelROIExtractor.mmdetBox.aligners.allSatisfy { $0.aligned && $0.samplingRatio == 0 })
  }
}
