// The region proposal network against mmdet 2.x, re-implemented in torch by scripts/reference/make_rpn_fixtures.py
// (Fixtures/detection/rpn.json; its docstring names the upstream functions): head outputs in mmdet's order, the
// MaxIoUAssigner's labels and matches, both losses with PyTorch's sampled anchors, the gradients w.r.t. every head
// parameter and the features (autograd), and the proposals (top-k, decode with both clamps, clip, min size, NMS).
//
// Tolerance: scaled error (max |ours − torch| / max |torch|) ≤ 1e-5 for every tensor, relative 1e-5 for the losses;
// the assignment and the number of proposals must match exactly.
import Foundation
import Testing
import Tensors
import Layers
import Models
import TestSupport

struct RPNGolden: Decodable {
  struct Config: Decodable {
    var anchorSizes: [Float], aspectRatios: [Float], stride: Int, inChannels: Int, featureChannels: Int
    var batchSizePerImage: Int, positiveFraction: Double
  }
  struct NamedValue: Decodable { var shape: [Int], value: [Float] }
  struct Training: Decodable {
    var featureShape: [Int], features: [Float], parameters: [String: NamedValue], anchors: [Float]
    var objectness: [Float], deltas: [Float], labels: [[Int]], matches: [[Int]]
    var sampledPositive: [[Int]], sampledNegative: [[Int]], avgFactor: Int, lossCls: Float, lossBbox: Float
    var gradients: [String: [Float]], featureGradient: [Float], proposals: [[Float]], proposalScores: [[Float]]
  }
  struct ProposalCase: Decodable {
    var height: Int, width: Int, preNmsTopK: Int, postNmsTopK: Int, nmsThreshold: Double, minBoxSize: Float
    var objectness: [Float], deltas: [Float], boxes: [Float], scores: [Float]
  }
  var config: Config
  var imageSizes: [[Int]]
  var gtBoxes: [[Float]]
  var training: Training
  var proposalCases: [ProposalCase]

  static let shared: RPNGolden = {
    let url = Bundle.module.resourceURL!.appendingPathComponent("Fixtures/detection/rpn.json")
    let decoder = JSONDecoder()
    decoder.keyDecodingStrategy = .convertFromSnakeCase
    do { return try decoder.decode(RPNGolden.self, from: Data(contentsOf: url)) } catch {
      fatalError("Fixtures/detection/rpn.json does not load (rerun make_rpn_fixtures.py): \(error)")
    }
  }()

  var rpnConfig: RPNConfig {
    RPNConfig(anchorSizes: config.anchorSizes, aspectRatios: config.aspectRatios, stride: config.stride,
              featureChannels: config.featureChannels, batchSizePerImage: config.batchSizePerImage,
              positiveFraction: config.positiveFraction)
  }
  var sizes: [(height: Int, width: Int)] { imageSizes.map { ($0[0], $0[1]) } }
  var groundTruth: [Tensor] { gtBoxes.map { Tensor(shape: [$0.count / 4, 4], scalars: $0) } }
  var features: Tensor { Tensor(shape: training.featureShape, scalars: training.features) }
  var sampled: [RPNSampledAnchors] {
    zip(training.sampledPositive, training.sampledNegative).map { RPNSampledAnchors(positive: $0, negative: $1) }
  }

  /// An RPN holding the fixture's weights.
  func makeNetwork() -> RegionProposalNetwork {
    var rng = SplitMix64(seed: 5)
    let network = RegionProposalNetwork(inChannels: config.inChannels, config: rpnConfig, using: &rng)
    for (name, parameter) in network.namedParameters {
      let stored = training.parameters[name]!
      parameter.importValue(Tensor(shape: stored.shape, scalars: stored.value))
    }
    return network
  }
}

/// max |ours − reference| / max |reference| ≤ tolerance, naming the worst entry.
func expectScaledClose(_ ours: [Float], _ reference: [Float], tolerance: Float = 1e-5, _ what: String,
                       sourceLocation: SourceLocation = #_sourceLocation) {
  #expect(ours.count == reference.count, "\(what): \(ours.count) values, reference has \(reference.count)",
          sourceLocation: sourceLocation)
  guard ours.count == reference.count, !reference.isEmpty else { return }
  let error = Tensor(shape: [ours.count], scalars: ours).scaledError(to: Tensor(shape: [reference.count], scalars: reference))
  #expect(error <= tolerance, "\(what): scaled error \(error)", sourceLocation: sourceLocation)
}

/// The same integers, naming the first anchor that differs (the arrays are too long to print).
func expectSame(_ ours: [Int], _ reference: [Int], _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
  #expect(ours.count == reference.count, "\(what): \(ours.count) entries, reference has \(reference.count)",
          sourceLocation: sourceLocation)
  if let first = zip(ours, reference).enumerated().first(where: { $0.element.0 != $0.element.1 }) {
    Issue.record("\(what): anchor \(first.offset) is \(first.element.0), reference \(first.element.1)",
                 sourceLocation: sourceLocation)
  }
}

@Suite struct RPNTests {
  let golden = RPNGolden.shared

  @Test func stateDictNamesShapesAndInitialisationAreMMDet() {
    var rng = SplitMix64(seed: 1)
    let network = RegionProposalNetwork(inChannels: 64, config: .mmdetC4(inChannels: 64), using: &rng)
    let shapes = Dictionary(uniqueKeysWithValues: network.namedParameters.map { ($0.name, $0.parameter.exportedShape) })
    #expect(network.namedParameters.map(\.name) == ["rpn_conv.weight", "rpn_conv.bias", "rpn_cls.weight",
                                                   "rpn_cls.bias", "rpn_reg.weight", "rpn_reg.bias"])
    #expect(shapes["rpn_conv.weight"] == [64, 64, 3, 3] && shapes["rpn_cls.weight"] == [15, 64, 1, 1]
              && shapes["rpn_reg.weight"] == [60, 64, 1, 1] && shapes["rpn_reg.bias"] == [60])
    for (name, parameter) in network.namedParameters {
      let values = parameter.value.scalars
      if name.hasSuffix("bias") {
        #expect(values.allSatisfy { $0 == 0 }, "\(name) starts at 0")
      } else {
        let std = (values.reduce(0) { $0 + Double($1 * $1) } / Double(values.count)).squareRoot()
        #expect(abs(std - 0.01) < 0.001, "\(name): std \(std), mmdet draws N(0, 0.01²)")
      }
    }
    #expect(network.parameters.count == 6)
  }

  @Test func headOutputsAndAnchorsFollowMMDetsFlattenOrder() {
    let network = golden.makeNetwork()
    let (objectness, deltas, _) = network.head.forward(golden.features, mode: .training)
    let (n, h, w) = (golden.training.featureShape[0], golden.training.featureShape[1], golden.training.featureShape[2])
    #expect(objectness.shape == [n, h * w * 9] && deltas.shape == [n, h * w * 9, 4])
    expectScaledClose(objectness.scalars, golden.training.objectness, "objectness")
    expectScaledClose(deltas.scalars, golden.training.deltas, "deltas")
    let anchors = network.anchors(featureHeight: h, featureWidth: w)
    expectScaledClose(anchors.scalars, golden.training.anchors, tolerance: 0, "anchors")
  }

  @Test func assignmentIsMMDetsMaxIoUAssignerWithBorderAndLowQualityMatches() {
    let network = golden.makeNetwork()
    let (h, w) = (golden.training.featureShape[1], golden.training.featureShape[2])
    let anchors = network.anchors(featureHeight: h, featureWidth: w)
    for image in golden.sizes.indices {
      let assignment = assignRPNAnchors(anchors: anchors, groundTruth: golden.groundTruth[image],
                                        height: golden.sizes[image].height, width: golden.sizes[image].width,
                                        config: golden.rpnConfig)
      expectSame(assignment.labels.map { Int($0.rawValue) }, golden.training.labels[image], "labels of image \(image)")
      expectSame(assignment.matchedGroundTruth, golden.training.matches[image], "matches of image \(image)")
    }
    // Image 0's first box ties four anchors (IoU 0.62, below 0.7): all four are low-quality positives of box 0; its
    // 3×2 box reaches no anchor with IoU ≥ min_pos_iou and claims none.
    let positivesOfBox = golden.training.matches[0].filter { $0 >= 0 }
    #expect(positivesOfBox.filter { $0 == 0 }.count == 4)
    #expect(!positivesOfBox.contains(2))
  }

  @Test func lossesAndGradientsMatchPyTorchWithItsSampledAnchors() {
    let network = golden.makeNetwork()
    network.zeroGrad()
    let output = network.forwardTraining(features: golden.features, imageSizes: golden.sizes,
                                         gtBoxes: golden.groundTruth, sampledAnchors: golden.sampled)
    #expect(output.samples.reduce(0) { $0 + $1.count } == golden.training.avgFactor)
    #expect(abs(output.classificationLoss - golden.training.lossCls) <= 1e-5 * abs(golden.training.lossCls),
            "loss_rpn_cls \(output.classificationLoss) vs \(golden.training.lossCls)")
    #expect(abs(output.boxLoss - golden.training.lossBbox) <= 1e-5 * abs(golden.training.lossBbox),
            "loss_rpn_bbox \(output.boxLoss) vs \(golden.training.lossBbox)")
    let featureGradient = network.backward(output)
    #expect(featureGradient.shape == golden.features.shape)
    expectScaledClose(featureGradient.scalars, golden.training.featureGradient, "∂L/∂features")
    for (name, parameter) in network.namedParameters {
      expectScaledClose(parameter.exportedGrad.scalars, golden.training.gradients[name]!, "∂L/∂\(name)")
    }
  }

  @Test func trainingProposalsMatchRPNProposalConfig() {
    let network = golden.makeNetwork()
    let output = network.forwardTraining(features: golden.features, imageSizes: golden.sizes,
                                         gtBoxes: golden.groundTruth, sampledAnchors: golden.sampled)
    for image in golden.sizes.indices {
      #expect(output.proposals[image].shape == [golden.training.proposals[image].count / 4, 4])
      expectScaledClose(output.proposals[image].scalars, golden.training.proposals[image], "proposals of \(image)")
      expectScaledClose(output.proposalScores[image], golden.training.proposalScores[image], "scores of \(image)")
      let box = output.proposals[image].scalars
      for i in 0..<output.proposals[image].shape[0] {
        #expect(box[4 * i] >= 0 && box[4 * i + 2] <= Float(golden.sizes[image].width)
                  && box[4 * i + 2] > box[4 * i] && box[4 * i + 3] > box[4 * i + 1])
      }
    }
  }

  @Test func proposalsFromGivenLogitsMatchMMDet() {
    let network = golden.makeNetwork()
    let anchors = network.anchors(featureHeight: golden.training.featureShape[1],
                                  featureWidth: golden.training.featureShape[2])
    for (index, item) in golden.proposalCases.enumerated() {
      let settings = RPNProposalSettings(preNMSTopK: item.preNmsTopK, postNMSTopK: item.postNmsTopK,
                                         nmsThreshold: item.nmsThreshold, minBoxSize: item.minBoxSize)
      let result = generateRPNProposals(objectness: item.objectness[...], deltas: item.deltas[...], anchors: anchors,
                                        height: item.height, width: item.width, settings: settings)
      #expect(result.boxes.shape[0] == item.boxes.count / 4, "case \(index): number of proposals")
      expectScaledClose(result.boxes.scalars, item.boxes, "case \(index): boxes")
      expectScaledClose(result.scores, item.scores, "case \(index): scores")
    }
  }

  @Test func inferenceUsesTheTestTopKs() {
    var config = golden.rpnConfig
    config.preNMSTopKTest = 50
    config.postNMSTopKTest = 7
    var rng = SplitMix64(seed: 5)
    let network = RegionProposalNetwork(inChannels: golden.config.inChannels, config: config, using: &rng)
    for (name, parameter) in network.namedParameters {
      let stored = golden.training.parameters[name]!
      parameter.importValue(Tensor(shape: stored.shape, scalars: stored.value))
    }
    let proposals = network.proposals(features: golden.features, imageSizes: golden.sizes)
    #expect(proposals.map { $0.shape } == [[7, 4], [7, 4]])
    let (objectness, deltas, _) = network.head.forward(golden.features, mode: .inference)
    let direct = generateRPNProposals(objectness: objectness.scalars[0..<(objectness.shape[1])],
                                      deltas: deltas.scalars[0..<(4 * objectness.shape[1])],
                                      anchors: network.anchors(featureHeight: golden.training.featureShape[1],
                                                               featureWidth: golden.training.featureShape[2]),
                                      height: golden.sizes[0].height, width: golden.sizes[0].width,
                                      settings: config.proposalSettings(.inference))
    #expect(proposals[0] == direct.boxes)
  }

  /// Hand-made: gt 1's best anchor (0) prefers gt 0 (IoU 0.6, ignore band): mmdet makes it positive and re-matches it
  /// to gt 1 (detectron2 keeps gt 0); gt 2's best IoU 0.2 < min_pos_iou claims nothing (detectron2 would make
  /// anchor 2 positive); anchor 3 attains gt 1's highest IoU too (a tie) and is positive, matched to gt 1.
  @Test func lowQualityMatchesFollowMMDetNotDetectron2() {
    let quality = Tensor(shape: [3, 4], scalars: [0.6, 0.8, 0.1, 0.0,
                                                  0.5, 0.2, 0.25, 0.5,
                                                  0.05, 0.1, 0.2, 0.0])
    let (labels, matches) = maxIoUAssign(quality: quality, positiveIoU: 0.7, negativeIoU: 0.3, minPositiveIoU: 0.3)
    #expect(labels == [.positive, .positive, .negative, .positive])
    #expect(matches == [1, 0, -1, 1])
    let detectron2 = Matcher.rpn(quality)
    #expect(detectron2.matches[0] == 0 && detectron2.labels[2] == .positive)
    let empty = maxIoUAssign(quality: Tensor.zeros([0, 3]), positiveIoU: 0.7, negativeIoU: 0.3, minPositiveIoU: 0.3)
    #expect(empty.labels == [.negative, .negative, .negative] && empty.matches == [-1, -1, -1])
  }

  @Test func seededSamplerDrawsBalancedReproducibleSubsets() {
    var config = golden.rpnConfig
    config.batchSizePerImage = 8
    config.positiveFraction = 0.25
    let network = golden.makeNetwork()
    let anchors = network.anchors(featureHeight: golden.training.featureShape[1],
                                  featureWidth: golden.training.featureShape[2])
    let assignment = assignRPNAnchors(anchors: anchors, groundTruth: golden.groundTruth[0], height: 64, width: 90,
                                      config: config)
    var first = SplitMix64(seed: 9), second = SplitMix64(seed: 9), third = SplitMix64(seed: 10)
    let a = sampleRPNAnchors(assignment, config: config, using: &first)
    let b = sampleRPNAnchors(assignment, config: config, using: &second)
    let c = sampleRPNAnchors(assignment, config: config, using: &third)
    #expect(a == b && a != c)
    #expect(a.positive.count == 2 && a.negative.count == 6)  // 6 positives available: ⌊8 · 0.25⌋ = 2 taken
    #expect(a.positive.allSatisfy { assignment.labels[$0] == .positive })
    #expect(a.negative.allSatisfy { assignment.labels[$0] == .negative })
    // The whole training forward with the seeded sampler: 32 per image at 0.5 → every positive (6, 3) + negatives.
    var rng = SplitMix64(seed: 3)
    let output = network.forwardTraining(features: golden.features, imageSizes: golden.sizes,
                                         gtBoxes: golden.groundTruth, sampler: &rng)
    #expect(output.samples.map(\.positive.count) == [6, 3] && output.samples.map(\.count) == [32, 32])
    #expect(output.classificationLoss > 0 && output.boxLoss > 0)
  }

  @Test func imagesWithoutGroundTruthGiveOnlyNegativesAndNoBoxLoss() {
    let network = golden.makeNetwork()
    var rng = SplitMix64(seed: 4)
    let none = Tensor.zeros([0, 4])
    let output = network.forwardTraining(features: golden.features, imageSizes: golden.sizes, gtBoxes: [none, none],
                                         sampler: &rng)
    #expect(output.samples.map(\.positive.count) == [0, 0] && output.samples.map(\.count) == [32, 32])
    #expect(output.boxLoss == 0 && output.classificationLoss > 0)
    let gradient = network.backward(output)
    #expect(gradient.shape == golden.features.shape && gradient.scalars.contains { $0 != 0 })
  }
}

/// mmdet's avg_factor by hand: an image without ground truth counts as one positive (max(0, 1)).
@Suite struct RPNAverageFactorTests {
  @Test func anImageWithoutPositivesCountsAsOne() {
    // Two images, 4 anchors each; image 0: anchor 0 positive (GT 0), anchors 1 and 2 negative; image 1: no GT,
    // anchors 0 and 3 negative. Zero logits and deltas: each sampled BCE is ln 2.
    let anchors = Tensor(shape: [4, 4], scalars: [0, 0, 8, 8, 4, 4, 12, 12, 8, 8, 16, 16, 0, 8, 8, 16])
    let assignments = [
      RPNAnchorAssignment(labels: [.positive, .negative, .negative, .ignore], matchedGroundTruth: [0, -1, -1, -1]),
      RPNAnchorAssignment(labels: [.negative, .ignore, .ignore, .negative], matchedGroundTruth: [-1, -1, -1, -1]),
    ]
    let samples = [RPNSampledAnchors(positive: [0], negative: [1, 2]), RPNSampledAnchors(positive: [], negative: [0, 3])]
    #expect(rpnAverageFactor(samples) == 1 + 2 + 1 + 2)
    let loss = rpnLoss(objectness: Tensor.zeros([2, 4]), deltas: Tensor.zeros([2, 4, 4]), anchors: anchors,
                       groundTruth: [Tensor(shape: [1, 4], scalars: [0, 0, 8, 8]), Tensor.zeros([0, 4])],
                       assignments: assignments, samples: samples)
    #expect(loss.sampledCount == 6)
    #expect(abs(loss.classification - Float(5 * log(2.0) / 6)) < 1e-6)
    // The positive's targets are 0 (anchor = GT): no box loss; each sampled logit's gradient is (σ(0) − y) / 6.
    #expect(loss.box == 0)
    #expect(abs(loss.objectnessGradient.scalars[0] - (-0.5 / 6)) < 1e-7)
    #expect(abs(loss.objectnessGradient.scalars[4 + 3] - 0.5 / 6) < 1e-7)
    #expect(loss.objectnessGradient.scalars[4 + 1] == 0)
  }
}
