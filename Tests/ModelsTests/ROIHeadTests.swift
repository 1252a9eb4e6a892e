// Golden parity of the C4 ROI head with mmdet 2.x re-implemented in PyTorch 2.13: assignment (MaxIoUAssigner 0.5 with
// the GT boxes prepended), training targets for fixed sampled indices, the train-mode forward, both losses and every
// gradient (head parameters and the C4 features), the eval-mode forward, and the test-time post-processing
// (softmax, mmdet delta2bbox with its two-sided clamp, per-class NMS, max_per_img) on fixed logits.
// Fixture: scripts/reference/make_roi_head_fixtures.py → Tests/ModelsTests/Fixtures/roi_head_tiny.safetensors.
//
// Tolerances (scaled error = max |ours − torch| / max |torch|): targets and test-time boxes 1e-5 (a few Float32
// operations); logits, losses and gradients 1e-4 (ROIAlign, three bottlenecks and two BatchNorms with batch
// statistics over 30 rois, summed in another order). A background label at 0 instead of last, a missing extra norm,
// a ReLU after it, an L1 divided by the positives instead of all rois, or a one-sided dw clamp move them far more.
import Foundation
import Testing
import Tensors
import Layers
import Models
import Checkpoints
import TestSupport

enum ROIHeadFixture {
  static let config = ROIHeadConfig(classCount: 3, batchSizePerImage: 16)

  static func load(_ name: String = "roi_head_tiny") throws -> SafeTensors {
    let url = try #require(Bundle.module.url(forResource: name, withExtension: "safetensors", subdirectory: "Fixtures"))
    return try SafeTensors(contentsOf: url)
  }

  /// A head on the layer4 of a width-1/32 ResNet-50 (32 → 64 channels) holding the fixture's initial weights.
  static func makeHead(_ file: SafeTensors) throws -> C4ROIHead {
    var rng = SplitMix64(seed: 5)
    let resNet = ResNet(ResNetConfig(depth: 50, widthMultiplier: 1.0 / 32), using: &rng)
    let head = C4ROIHead(res5: resNet.stages[3], config: config, using: &rng)
    try StateDict.load(file.tensors(withPrefix: "init."), into: head.namedParameters, source: "roi_head_tiny")
    return head
  }

  static func indices(_ file: SafeTensors, _ name: String) throws -> [Int] {
    try file.tensor(name).scalars.map { Int($0) }
  }

  /// Each image's proposals, GT boxes and labels, and the fixture's sampled candidate indices.
  static func samples(_ file: SafeTensors, config: ROIHeadConfig = config) throws -> [ROISample] {
    try (0..<2).map { image in
      config.sampleROIs(proposals: try file.tensor("input.proposals\(image)"),
                        gtBoxes: try file.tensor("input.gt_boxes\(image)"),
                        gtLabels: try indices(file, "input.gt_labels\(image)"),
                        positives: try indices(file, "sample.positive\(image)"),
                        negatives: try indices(file, "sample.negative\(image)"))
    }
  }
}

@Suite struct ROIHeadTests {
  @Test func stateDictNamesAndShapesMatchMMDet() throws {
    let file = try ROIHeadFixture.load()
    let head = try ROIHeadFixture.makeHead(file)
    let expected = file.tensors(withPrefix: "init.")
    #expect(head.namedParameters.map(\.name).sorted() == expected.keys.sorted())
    #expect(head.namedParameters.contains { $0.name == "shared_head.norm.running_var" })
    #expect(head.classifier.weight.value.shape == [4, 64], "fc_cls: classes + 1 outputs")
    #expect(head.regressor.weight.value.shape == [12, 64], "fc_reg: 4 deltas per class")
  }

  @Test func assignmentMatchesMaxIoUAssignerWithGroundTruthPrepended() throws {
    let file = try ROIHeadFixture.load()
    for image in 0..<2 {
      let assignment = ROIHeadFixture.config.assign(proposals: try file.tensor("input.proposals\(image)"),
                                                    gtBoxes: try file.tensor("input.gt_boxes\(image)"))
      let expectedLabels = try ROIHeadFixture.indices(file, "assign.labels\(image)")
      let expectedMatches = try ROIHeadFixture.indices(file, "assign.matched\(image)")
      #expect(assignment.labels.map { Int($0.rawValue) } == expectedLabels, "image \(image) labels")
      for index in assignment.positiveIndices {
        #expect(assignment.matchedGroundTruth[index] == expectedMatches[index], "image \(image) candidate \(index)")
      }
      #expect(assignment.positiveIndices.count > ROIHeadFixture.config.expectedPositivesPerImage,
              "the fixture has more positives than the sampler keeps")
    }
  }

  @Test func targetsForFixedSamplesMatch() throws {
    let file = try ROIHeadFixture.load()
    let samples = try ROIHeadFixture.samples(file)
    #expect(samples.flatMap(\.labels) == (try ROIHeadFixture.indices(file, "target.labels")))
    let targets = Tensor(shape: [samples.reduce(0) { $0 + $1.labels.count }, 4],
                         scalars: samples.flatMap(\.boxTargets.scalars))
    let error = targets.scaledError(to: try file.tensor("target.deltas"))
    #expect(error <= 1e-5, "target deltas: scaled error \(error)")
    #expect(roisForBatch(samples.map(\.boxes)) == (try file.tensor("rois")))
  }

  @Test func trainingForwardLossesAndGradientsMatch() throws {
    let file = try ROIHeadFixture.load()
    let head = try ROIHeadFixture.makeHead(file)
    let features = try file.tensor("input.features").nchwToNHWC()
    let samples = try ROIHeadFixture.samples(file)
    let rois = roisForBatch(samples.map(\.boxes))
    for parameter in head.parameters { parameter.zeroGrad() }
    let (logits, deltas, cache) = head.forward(features: features, rois: rois, mode: .training)
    for (value, name) in [(logits, "train.class_logits"), (deltas, "train.box_deltas")] {
      let error = value.scaledError(to: try file.tensor(name))
      #expect(error <= 1e-4, "\(name): scaled error \(error)")
    }
    let losses = roiHeadLosses(classLogits: logits, boxDeltas: deltas, samples: samples, classCount: 3)
    for (value, name) in [(losses.classLoss, "loss.cls"), (losses.boxLoss, "loss.bbox")] {
      let expected = try file.tensor(name).scalars[0]
      #expect(abs(value - expected) <= 1e-4 * abs(expected), "\(name): \(value) vs PyTorch \(expected)")
    }
    let featureGradient = head.backward(classLogitGradient: losses.classLogitGradient,
                                        boxDeltaGradient: losses.boxDeltaGradient, cache)
    let featureError = featureGradient.nhwcToNCHW().scaledError(to: try file.tensor("grad.features"))
    #expect(featureError <= 1e-4, "grad.features: scaled error \(featureError)")
    var compared = 0
    for (name, parameter) in head.namedParameters where !parameter.isBuffer {
      let error = parameter.exportedGrad.scaledError(to: try file.tensor("grad.\(name)"))
      #expect(error <= 1e-4, "grad.\(name): scaled error \(error)")
      compared += 1
    }
    #expect(compared == file.tensors(withPrefix: "grad.").count - 1)
  }

  @Test func inferenceForwardMatchesEvalMode() throws {
    let file = try ROIHeadFixture.load()
    let head = try ROIHeadFixture.makeHead(file)
    let features = try file.tensor("input.features").nchwToNHWC()
    let rois = try file.tensor("rois")
    let (logits, deltas, _) = head.forward(features: features, rois: rois, mode: .inference)
    let chunked = head.infer(features: features, rois: rois, chunk: 7)
    for (values, name) in [([logits, chunked.classLogits], "eval.class_logits"),
                           ([deltas, chunked.boxDeltas], "eval.box_deltas")] {
      for value in values {
        let error = value.scaledError(to: try file.tensor(name))
        #expect(error <= 1e-4, "\(name): scaled error \(error)")
      }
    }
  }

  @Test func testTimeDetectionsMatchGetBBoxesAndMulticlassNMS() throws {
    let file = try ROIHeadFixture.load()
    var config = ROIHeadFixture.config
    config.detectionsPerImage = 10
    let detections = config.detections(classLogits: try file.tensor("test.logits"),
                                       boxDeltas: try file.tensor("test.deltas"),
                                       proposals: try file.tensor("test.proposals"), imageHeight: 100, imageWidth: 150)
    #expect(detections.labels == (try ROIHeadFixture.indices(file, "test.labels")))
    let expectedScores = try file.tensor("test.scores")
    let scoreError = Tensor(shape: [detections.count], scalars: detections.scores).scaledError(to: expectedScores)
    #expect(scoreError <= 1e-5, "test.scores: scaled error \(scoreError)")
    let boxError = detections.boxes.scaledError(to: try file.tensor("test.boxes"))
    #expect(boxError <= 1e-5, "test.boxes: scaled error \(boxError)")
  }

  @Test func decodeClampsBothWaysAndClipsToTheImage() {
    // A 20×10 proposal centred at (30, 20): dw = −30·0.2 = −6 is clamped to −log(1000/16) (mmdet; detectron2 would
    // not clamp below), dh = 25·0.2 = 5 to +log(1000/16); dx = 1 moves the centre by one width.
    let proposals = Tensor(shape: [1, 4], scalars: [20, 15, 40, 25])
    let deltas = Tensor(shape: [1, 4], scalars: [10, 0, -30, 25])
    let box = decodedForTest(deltas, proposals)
    let ratio = Float(1000.0 / 16.0)
    let (width, height) = (20 / ratio, 10 * ratio)
    #expect(abs(box[0] - (50 - width / 2)) < 1e-4 && abs(box[2] - (50 + width / 2)) < 1e-4)
    #expect(box[1] == 0 && box[3] == 60, "clipped to the 60-pixel-high image: \(box)")
  }

  @Test func randomSamplingKeepsTheQuotasAndTheOrder() throws {
    let file = try ROIHeadFixture.load()
    let config = ROIHeadFixture.config
    let proposals = try file.tensor("input.proposals0"), gtBoxes = try file.tensor("input.gt_boxes0")
    let assignment = config.assign(proposals: proposals, gtBoxes: gtBoxes)
    var rng = SplitMix64(seed: 99)
    var seen = Set<[Int]>()
    for _ in 0..<8 {
      let sample = config.sampleROIs(proposals: proposals, gtBoxes: gtBoxes,
                                     gtLabels: try ROIHeadFixture.indices(file, "input.gt_labels0"), using: &rng)
      let positives = Array(sample.indices.prefix(sample.positiveCount))
      let negatives = Array(sample.indices.dropFirst(sample.positiveCount))
      #expect(positives.count == 4 && negatives.count == 12)
      #expect(positives == positives.sorted() && negatives == negatives.sorted())
      #expect(Set(positives).isSubset(of: assignment.positiveIndices) && Set(negatives).isSubset(of: assignment.negativeIndices))
      seen.insert(sample.indices)
    }
    #expect(seen.count > 1, "different draws pick different rois")
  }
}

/// The test-time decode of one [1, 4] delta row in a 60 × 100 image.
private func decodedForTest(_ deltas: Tensor, _ proposals: Tensor) -> [Float] {
  // Route through `detections` with one class whose score passes: logits (big, 0) → background loses.
  var config = ROIHeadConfig(classCount: 1)
  config.scoreThreshold = 0
  let result = config.detections(classLogits: Tensor(shape: [1, 2], scalars: [5, 0]), boxDeltas: deltas,
                                 proposals: proposals, imageHeight: 60, imageWidth: 100)
  return result.boxes.scalars
}
