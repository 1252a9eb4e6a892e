// The multi-level RPN (and the FPN in front of it) against mmdet 2.x, re-implemented in torch by
// scripts/reference/make_fpn_fixtures.py (Fixtures/detection/fpn.json): per-level anchors, valid flags on each image's
// pad_shape, the MaxIoUAssigner's labels and matches over the concatenated anchors, both losses with PyTorch's
// sampled anchors and mmdet's avg_factor (an image without ground truth counts one positive), the gradients of every
// head parameter and of P2…P6, the whole C2…C5 → FPN → RPN chain's gradients, and the proposals (per-level top-k,
// decode with both clamps, clip, min size, NMS within each level, max per image).
//
// Tolerance: scaled error ≤ 1e-5 per tensor (1e-4 through the FPN chain), relative 1e-5 for the losses; the
// assignment and the number of proposals must match exactly.
import Foundation
import Testing
import Tensors
import Layers
import Models
import TestSupport

extension FPNGolden {
  var rpnConfig: MultiLevelRPNConfig {
    MultiLevelRPNConfig(anchorScales: config.anchorScales, aspectRatios: config.aspectRatios, strides: config.strides,
                        featureChannels: config.featureChannels, batchSizePerImage: config.batchSizePerImage,
                        positiveFraction: config.positiveFraction, sizeDivisor: config.sizeDivisor)
  }
  var sizes: [(height: Int, width: Int)] { imageSizes.map { ($0[0], $0[1]) } }
  var groundTruth: [Tensor] { gtBoxes.map { Tensor(shape: [$0.count / 4, 4], scalars: $0) } }
  var features: [Tensor] { tensors(training.features, shapes: training.featureShapes) }
  var featureSizes: [(height: Int, width: Int)] { training.featureShapes.map { ($0[1], $0[2]) } }
  var sampled: [RPNSampledAnchors] {
    zip(training.sampledPositive, training.sampledNegative).map { RPNSampledAnchors(positive: $0, negative: $1) }
  }

  func makeRPN(config: MultiLevelRPNConfig? = nil) -> MultiLevelRPN {
    var rng = SplitMix64(seed: 5)
    let rpn = MultiLevelRPN(inChannels: self.config.outChannels, config: config ?? rpnConfig, using: &rng)
    for (name, parameter) in rpn.namedParameters {
      let stored = training.rpnParameters[name]!
      parameter.importValue(Tensor(shape: stored.shape, scalars: stored.value))
    }
    return rpn
  }
}

@Suite struct MultiLevelRPNTests {
  let golden = FPNGolden.shared

  @Test func defaultsAreMaskRCNNR50FPNs() {
    let config = MultiLevelRPNConfig.mmdetFPN()
    #expect(config.strides == [4, 8, 16, 32, 64] && config.anchorScales == [8] && config.aspectRatios == [0.5, 1, 2])
    #expect(config.featureChannels == 256 && config.allowedBorder == -1 && config.sizeDivisor == 32)
    #expect(config.positiveIoU == 0.7 && config.negativeIoU == 0.3 && config.minPositiveIoU == 0.3)
    #expect(config.batchSizePerImage == 256 && config.positiveFraction == 0.5)
    #expect(config.proposalSettings(.training) == RPNProposalSettings(preNMSTopK: 2000, postNMSTopK: 1000,
                                                                      nmsThreshold: 0.7, minBoxSize: 0))
    #expect(config.proposalSettings(.inference) == RPNProposalSettings(preNMSTopK: 1000, postNMSTopK: 1000,
                                                                       nmsThreshold: 0.7, minBoxSize: 0))
    // Anchor sizes 8 × stride: 32 … 512; P2's square anchor at (0, 0) is (−16, −16, 16, 16).
    #expect((0..<5).map { config.anchorGenerator(level: $0).sizes } == [[32], [64], [128], [256], [512]])
    #expect(Array(config.anchorGenerator(level: 0).cellAnchors().scalars[4..<8]) == [-16, -16, 16, 16])
    var rng = SplitMix64(seed: 1)
    let rpn = MultiLevelRPN(inChannels: 256, config: config, using: &rng)
    #expect(rpn.namedParameters.map(\.name) == ["rpn_conv.weight", "rpn_conv.bias", "rpn_cls.weight", "rpn_cls.bias",
                                                "rpn_reg.weight", "rpn_reg.bias"])
    #expect(rpn.namedParameters.map(\.parameter.exportedShape) == [[256, 256, 3, 3], [256], [3, 256, 1, 1], [3],
                                                                   [12, 256, 1, 1], [12]])
  }

  @Test func anchorsAndHeadOutputsFollowMMDetsLevelOrder() {
    let rpn = golden.makeRPN()
    let anchors = rpn.anchors(featureSizes: golden.featureSizes)
    expectScaledClose(anchors.flatMap(\.scalars), golden.training.anchors, tolerance: 0, "anchors of P2…P6")
    var objectness = [[Float]](repeating: [], count: golden.sizes.count)
    for level in golden.features {
      let (logits, _, _) = rpn.head.forward(level, mode: .training)
      let k = logits.shape[1]
      for image in objectness.indices { objectness[image] += logits.scalars[(image * k)..<((image + 1) * k)] }
    }
    expectScaledClose(objectness.flatMap { $0 }, golden.training.objectness, "objectness, levels concatenated")
  }

  @Test func validFlagsAndAssignmentFollowMMDet() {
    let rpn = golden.makeRPN()
    let anchors = rpn.anchors(featureSizes: golden.featureSizes)
    let all = Tensor(shape: [anchors.reduce(0) { $0 + $1.shape[0] }, 4], scalars: anchors.flatMap(\.scalars))
    for image in golden.sizes.indices {
      let (height, width) = golden.sizes[image]
      let pad = ((height + 31) / 32 * 32, (width + 31) / 32 * 32)
      let valid = multiLevelValidFlags(featureSizes: golden.featureSizes, strides: golden.config.strides,
                                       anchorsPerLocation: 3, padHeight: pad.0, padWidth: pad.1)
      let assignment = assignMultiLevelRPNAnchors(anchors: all, validFlags: valid, groundTruth: golden.groundTruth[image],
                                                  height: height, width: width, config: golden.rpnConfig)
      expectSame(assignment.labels.map { Int($0.rawValue) }, golden.training.labels[image], "labels of image \(image)")
      expectSame(assignment.matchedGroundTruth, golden.training.matches[image], "matches of image \(image)")
    }
    // Image 1 (30×60, pad 32×64) in the 64×96 batch: P2 is valid on 8 of 16 rows and 16 of 24 columns only.
    let p2 = multiLevelValidFlags(featureSizes: [(16, 24)], strides: [4], anchorsPerLocation: 1, padHeight: 32,
                                  padWidth: 64)
    #expect(p2.filter { $0 }.count == 8 * 16 && p2[15] && !p2[16] && !p2[8 * 24])
    // P6 (1×2) of a 50×70 image (pad 64×96): ⌈64/64⌉ = 1 row, ⌈96/64⌉ = 2 columns — all valid.
    #expect(multiLevelValidFlags(featureSizes: [(1, 2)], strides: [64], anchorsPerLocation: 3, padHeight: 64,
                                 padWidth: 96).allSatisfy { $0 })
  }

  @Test func lossesAndGradientsMatchPyTorchWithItsSampledAnchors() {
    let rpn = golden.makeRPN()
    rpn.zeroGrad()
    let output = rpn.forwardTraining(features: golden.features, imageSizes: golden.sizes, gtBoxes: golden.groundTruth,
                                     sampledAnchors: golden.sampled)
    // avg_factor counts the image without ground truth as one positive.
    #expect(output.averageFactor == golden.training.avgFactor)
    #expect(output.averageFactor == output.samples.reduce(0) { $0 + $1.count } + 1)
    #expect(abs(output.classificationLoss - golden.training.lossCls) <= 1e-5 * abs(golden.training.lossCls),
            "loss_rpn_cls \(output.classificationLoss) vs \(golden.training.lossCls)")
    #expect(abs(output.boxLoss - golden.training.lossBbox) <= 1e-5 * abs(golden.training.lossBbox),
            "loss_rpn_bbox \(output.boxLoss) vs \(golden.training.lossBbox)")
    let featureGradients = rpn.backward(output)
    for (level, gradient) in featureGradients.enumerated() {
      #expect(gradient.shape == golden.training.featureShapes[level])
      expectScaledClose(gradient.scalars, golden.training.featureGradients[level], "∂L/∂P\(level + 2)")
    }
    for (name, parameter) in rpn.namedParameters {
      expectScaledClose(parameter.exportedGrad.scalars, golden.training.rpnGradients[name]!, "∂L/∂rpn_head.\(name)")
    }
  }

  /// C2…C5 → FPN (BN, batch statistics) → RPN → losses → RPN backward → FPN backward, against autograd.
  @Test func theNeckAndRPNChainMatchesPyTorch() {
    let training = golden.training
    let neck = golden.makeNeck(norm: true, parameters: training.fpnParameters, buffers: training.fpnBuffers)
    let rpn = golden.makeRPN()
    neck.zeroGrad()
    rpn.zeroGrad()
    let (pyramid, neckCache) = neck.forward(tensors(training.inputs, shapes: training.inputShapes), mode: .training)
    for (level, map) in pyramid.enumerated() {
      expectScaledClose(map.scalars, training.features[level], "P\(level + 2)")
    }
    let output = rpn.forwardTraining(features: pyramid, imageSizes: golden.sizes, gtBoxes: golden.groundTruth,
                                     sampledAnchors: golden.sampled)
    let inputGradients = neck.backward(rpn.backward(output), neckCache)
    for (level, gradient) in inputGradients.enumerated() {
      expectScaledClose(gradient.scalars, training.inputGradients[level], tolerance: 1e-4, "∂L/∂C\(level + 2)")
    }
    for (name, parameter) in neck.namedParameters where !parameter.isBuffer {
      expectScaledClose(parameter.exportedGrad.scalars, training.fpnGradients[name]!, tolerance: 1e-4,
                        "∂L/∂neck.\(name)")
    }
  }

  @Test func trainingProposalsMatchRPNProposalConfig() {
    let rpn = golden.makeRPN()
    let output = rpn.forwardTraining(features: golden.features, imageSizes: golden.sizes, gtBoxes: golden.groundTruth,
                                     sampledAnchors: golden.sampled)
    for image in golden.sizes.indices {
      #expect(output.proposals[image].shape == [golden.training.proposals[image].count / 4, 4])
      expectScaledClose(output.proposals[image].scalars, golden.training.proposals[image], "proposals of \(image)")
      expectScaledClose(output.proposalScores[image], golden.training.proposalScores[image], "scores of \(image)")
    }
    #expect(output.proposals[0].shape[0] == 1000)  // max_per_img reached
  }

  @Test func proposalsFromGivenLogitsMatchMMDet() {
    let rpn = golden.makeRPN()
    for (index, item) in golden.proposalCases.enumerated() {
      let anchors = rpn.anchors(featureSizes: item.featureSizes.map { ($0[0], $0[1]) })
      let settings = RPNProposalSettings(preNMSTopK: item.preNmsTopK, postNMSTopK: item.postNmsTopK,
                                         nmsThreshold: item.nmsThreshold, minBoxSize: item.minBoxSize)
      let result = generateMultiLevelRPNProposals(objectness: item.objectness.map { $0[...] },
                                                  deltas: item.deltas.map { $0[...] }, anchors: anchors,
                                                  height: item.height, width: item.width, settings: settings)
      #expect(result.boxes.shape[0] == item.boxes.count / 4, "case \(index): number of proposals")
      expectScaledClose(result.boxes.scalars, item.boxes, "case \(index): boxes")
      expectScaledClose(result.scores, item.scores, "case \(index): scores")
    }
  }

  @Test func inferenceUsesTheTestTopKs() {
    var config = golden.rpnConfig
    config.preNMSTopKTest = 4
    config.postNMSTopKTest = 9
    let rpn = golden.makeRPN(config: config)
    let proposals = rpn.proposalsWithScores(features: golden.features, imageSizes: golden.sizes)
    // At most 5 levels × 4 candidates survive to NMS; image 0 keeps the 9 best, the others what NMS leaves (≤ 9).
    #expect(proposals[0].boxes.shape[0] == 9 && proposals.allSatisfy { $0.boxes.shape[0] <= 9 })
    // The same as the per-image function on the head's outputs with the test settings (≤ 4 per level).
    let outputs = golden.features.map { rpn.head.forward($0, mode: .inference) }
    let anchors = rpn.anchors(featureSizes: golden.featureSizes)
    let direct = generateMultiLevelRPNProposals(
      objectness: outputs.map { $0.objectness.scalars[0..<$0.objectness.shape[1]] },
      deltas: outputs.map { $0.deltas.scalars[0..<(4 * $0.objectness.shape[1])] }, anchors: anchors,
      height: golden.sizes[0].height, width: golden.sizes[0].width, settings: config.proposalSettings(.inference))
    #expect(proposals[0] == direct)
    #expect(zip(proposals[0].scores, proposals[0].scores.dropFirst()).allSatisfy { $0 >= $1 })
  }

  @Test func seededSamplerIsReproducibleAndBalanced() {
    let rpn = golden.makeRPN()
    var first = SplitMix64(seed: 9), second = SplitMix64(seed: 9), third = SplitMix64(seed: 10)
    let a = rpn.forwardTraining(features: golden.features, imageSizes: golden.sizes, gtBoxes: golden.groundTruth,
                                sampler: &first)
    let b = rpn.forwardTraining(features: golden.features, imageSizes: golden.sizes, gtBoxes: golden.groundTruth,
                                sampler: &second)
    let c = rpn.forwardTraining(features: golden.features, imageSizes: golden.sizes, gtBoxes: golden.groundTruth,
                                sampler: &third)
    #expect(a.samples == b.samples && a.samples != c.samples && a.loss == b.loss)
    // 48 per image at 0.5: every positive (9, 4, 0) is taken and negatives fill up to 48.
    #expect(a.samples.map(\.positive.count) == [9, 4, 0] && a.samples.map(\.count) == [48, 48, 48])
    for (assignment, sample) in zip(a.assignments, a.samples) {
      #expect(sample.positive.allSatisfy { assignment.labels[$0] == .positive })
      #expect(sample.negative.allSatisfy { assignment.labels[$0] == .negative })
    }
    #expect(a.averageFactor == 145)
  }
}
