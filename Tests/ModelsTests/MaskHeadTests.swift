// Mask R-CNN's mask branch against mmdet 2.x, re-implemented in torch by scripts/reference/make_mask_head_fixtures.py
// (Fixtures/detection/mask_head.json; its docstring names the upstream functions): FCNMaskHead's logits in train and
// eval mode, mask_cross_entropy and the gradients w.r.t. every head parameter and the ROI features (autograd), the
// running statistics after the step, mask_target_single / crop_and_resize targets, and get_seg_masks' pasted masks.
//
// Tolerance: scaled error (max |ours − torch| / max |torch|) ≤ 1e-5 for activations, 1e-4 for gradients, relative
// 1e-5 for the losses; binary targets and masks must match exactly except where torch's value before the threshold
// lies within 1e-5 of 0.5 (none does in this fixture's pasted maps; the targets' exact ties at 0.5 must agree).
import Foundation
import Testing
import Tensors
import Layers
import Models
import Datasets
import TestSupport

struct MaskHeadGolden: Decodable {
  struct Config: Decodable { var inChannels: Int, convChannels: Int, classes: Int }
  struct NamedValue: Decodable { var shape: [Int], value: [Float] }
  struct Head: Decodable {
    var convs: Int, usesNorm: Bool, parameterNames: [String], parameters: [String: NamedValue]
    var logits: [Float], loss: Float, featureGradient: [Float], gradients: [String: [Float]]
    var evalLogits: [Float]?, running: [String: [Float]]?
  }
  struct TargetImage: Decodable {
    var height: Int, width: Int, paddedHeight: Int, paddedWidth: Int, masks: [[UInt8]], boxes: [Float]
    var assigned: [Int], binary: [Float]
  }
  struct SmallTargets: Decodable { var images: [TargetImage], targets: [Float] }
  struct Targets: Decodable {
    var height: Int, width: Int, paddedHeight: Int, paddedWidth: Int, maskSize: Int, masks: [[UInt8]]
    var boxes: [Float], assigned: [Int], soft: [Float], binary: [Float]
  }
  struct Paste: Decodable {
    var logits: [Float], shape: [Int], boxes: [Float], labels: [Int], scaleFactor: [Float]
    var originalHeight: Int, originalWidth: Int, probabilities: [[Float]], masks: [[UInt8]], rles: [String]
  }
  var config: Config
  var features: [Float], featureShape: [Int], labels: [Int]
  var targetsSmall: SmallTargets
  var head: Head, plainHead: Head
  var targets: Targets
  var paste: Paste

  static let shared: MaskHeadGolden = {
    let url = Bundle.module.resourceURL!.appendingPathComponent("Fixtures/detection/mask_head.json")
    let decoder = JSONDecoder()
    decoder.keyDecodingStrategy = .convertFromSnakeCase
    do { return try decoder.decode(MaskHeadGolden.self, from: Data(contentsOf: url)) } catch {
      fatalError("Fixtures/detection/mask_head.json does not load (rerun make_mask_head_fixtures.py): \(error)")
    }
  }()

  var roiFeatures: Tensor { Tensor(shape: featureShape, scalars: features) }
  var maskSize: Int { 2 * featureShape[1] }
  var smallTargets: Tensor { Tensor(shape: [labels.count, maskSize, maskSize], scalars: targetsSmall.targets) }

  /// A head holding the fixture's initial weights and buffers.
  func makeHead(_ stored: Head) -> FCNMaskHead {
    var rng = SplitMix64(seed: 3)
    let head = FCNMaskHead(config: FCNMaskHeadConfig(inChannels: config.inChannels, convChannels: config.convChannels,
                                                     convCount: stored.convs, classCount: config.classes,
                                                     usesNorm: stored.usesNorm),
                           using: &rng)
    for (name, parameter) in head.namedParameters {
      let value = stored.parameters[name]!
      #expect(parameter.exportedShape == value.shape, "\(name): shape \(parameter.exportedShape) vs \(value.shape)")
      parameter.importValue(Tensor(shape: value.shape, scalars: value.value))
    }
    return head
  }
}

/// Binary values equal, except where the reference's value before thresholding is within 1e-5 of 0.5.
func expectSameBinary(_ ours: [Float], _ reference: [Float], before soft: [Float]? = nil, _ what: String,
                      sourceLocation: SourceLocation = #_sourceLocation) {
  #expect(ours.count == reference.count, "\(what): \(ours.count) values, reference has \(reference.count)",
          sourceLocation: sourceLocation)
  let differing = ours.indices.filter { index in
    index < reference.count &&
      ours[index] != reference[index] && !(soft.map { abs($0[index] - 0.5) < 1e-5 } ?? false)
  }
  #expect(differing.isEmpty, "\(what): \(differing.count) values differ, first at \(differing.first ?? -1)",
          sourceLocation: sourceLocation)
}

@Suite struct MaskHeadTests {
  let golden = MaskHeadGolden.shared

  @Test func stateDictNamesShapesAndInitialisationAreMMDet() {
    var rng = SplitMix64(seed: 1)
    let head = FCNMaskHead(config: FCNMaskHeadConfig(), using: &rng)
    let names = head.namedParameters.map(\.name)
    let bnNames = ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    let expected = (0..<4).flatMap { i in ["convs.\(i).conv.weight"] + bnNames.map { "convs.\(i).bn.\($0)" } }
      + ["upsample.weight", "upsample.bias", "conv_logits.weight", "conv_logits.bias"]
    #expect(names == expected)
    #expect(FCNMaskHead.stateDictPrefix == "roi_head.mask_head")
    let shapes = Dictionary(uniqueKeysWithValues: head.namedParameters.map { ($0.name, $0.parameter.exportedShape) })
    #expect(shapes["convs.0.conv.weight"] == [256, 256, 3, 3] && shapes["upsample.weight"] == [256, 256, 2, 2]
              && shapes["conv_logits.weight"] == [80, 256, 1, 1] && shapes["conv_logits.bias"] == [80])
    // kaiming normal fan_out (relu): convs std √(2/(256·9)); upsample √(2/(256·4)) (PyTorch's fan-out of
    // [in, out, 2, 2] is in·4); conv_logits √(2/80); biases 0; BN γ 1, β 0.
    func std(_ name: String) -> Double {
      let values = head.namedParameters.first { $0.name == name }!.parameter.value.scalars
      return (values.reduce(0) { $0 + Double($1 * $1) } / Double(values.count)).squareRoot()
    }
    #expect(abs(std("convs.2.conv.weight") - (2.0 / 2304).squareRoot()) < 0.001)
    #expect(abs(std("upsample.weight") - (2.0 / 1024).squareRoot()) < 0.001)
    #expect(abs(std("conv_logits.weight") - (2.0 / 80).squareRoot()) < 0.005)
    for (name, parameter) in head.namedParameters where name.hasSuffix("bias") && !name.contains(".bn.") {
      #expect(parameter.value.scalars.allSatisfy { $0 == 0 }, "\(name) starts at 0")
    }
    #expect(head.convs[1].bn!.weight!.value.scalars.allSatisfy { $0 == 1 })
  }

  @Test func fixtureNamesAreTheHeadsNamesInOrder() {
    let head = golden.makeHead(golden.head)
    #expect(head.namedParameters.map(\.name) == golden.head.parameterNames)
    let plain = golden.makeHead(golden.plainHead)
    #expect(plain.namedParameters.map(\.name) == golden.plainHead.parameterNames)
  }

  @Test(arguments: [false, true])
  func trainingStepMatchesPyTorch(plain: Bool) {
    let stored = plain ? golden.plainHead : golden.head
    let head = golden.makeHead(stored)
    let (logits, cache) = head.forward(golden.roiFeatures, mode: .training)
    #expect(logits.shape == [5, golden.maskSize, golden.maskSize, golden.config.classes])
    expectScaledClose(logits.scalars, stored.logits, "logits")
    let (loss, logitGradient) = maskCrossEntropyLoss(logits: logits, targets: golden.smallTargets,
                                                     labels: golden.labels)
    #expect(abs(loss - stored.loss) <= 1e-5 * abs(stored.loss), "loss \(loss) vs \(stored.loss)")
    let featureGradient = head.backward(logitGradient, cache)
    expectScaledClose(featureGradient.scalars, stored.featureGradient, tolerance: 1e-4, "∂loss/∂features")
    for (name, parameter) in head.namedParameters where !parameter.isBuffer {
      expectScaledClose(parameter.exportedGrad.scalars, stored.gradients[name]!, tolerance: 1e-4, "∂loss/∂\(name)")
    }
    for (name, value) in stored.running ?? [:] {
      let parameter = head.namedParameters.first { $0.name == name }!.parameter
      expectScaledClose(parameter.value.scalars, value, "\(name) after the step")
    }
  }

  @Test func inferenceUsesRunningStatistics() {
    let head = golden.makeHead(golden.head)
    let expected = golden.head.evalLogits!
    expectScaledClose(head.forward(golden.roiFeatures, mode: .inference).0.scalars, expected, "eval logits")
    expectScaledClose(head.infer(golden.roiFeatures, chunk: 2).scalars, expected, "folded, chunked eval logits")
  }

  @Test func trainingTargetsOfTwoImagesConcatenate() {
    var all: [Float] = []
    for image in golden.targetsSmall.images {
      let targets = maskTargets(positiveBoxes: Tensor(shape: [image.assigned.count, 4], scalars: image.boxes),
                                assignedGroundTruth: image.assigned,
                                groundTruthMasks: GroundTruthMasks(height: image.height, width: image.width,
                                                                masks: image.masks),
                                paddedHeight: image.paddedHeight, paddedWidth: image.paddedWidth,
                                maskSize: golden.maskSize)
      #expect(targets.shape == [image.assigned.count, golden.maskSize, golden.maskSize])
      expectSameBinary(targets.scalars, image.binary, "targets")
      all += targets.scalars
    }
    #expect(all == golden.targetsSmall.targets)
  }

  /// Boxes inside, across the top-left edge, past the padded size, sub-pixel, whole image, zero width, fractional.
  @Test func targetsAreMMDetsCropAndResize() {
    let t = golden.targets
    let masks = GroundTruthMasks(height: t.height, width: t.width, masks: t.masks)
    let boxes = Tensor(shape: [t.assigned.count, 4], scalars: t.boxes)
    let soft = maskTargets(positiveBoxes: boxes, assignedGroundTruth: t.assigned, groundTruthMasks: masks,
                           paddedHeight: t.paddedHeight, paddedWidth: t.paddedWidth, maskSize: t.maskSize,
                           binarize: false)
    expectScaledClose(soft.scalars, t.soft, "soft targets")
    let binary = maskTargets(positiveBoxes: boxes, assignedGroundTruth: t.assigned, groundTruthMasks: masks,
                             paddedHeight: t.paddedHeight, paddedWidth: t.paddedWidth, maskSize: t.maskSize)
    expectSameBinary(binary.scalars, t.binary, "binary targets")
    #expect(t.soft.contains(0.5), "the fixture has exact ties at 0.5 (≥ 0.5 keeps them)")
    // Without the padding, the last row/column's samples would snap to the bitmap's edge instead of reading 0.
    let unpadded = maskTargets(positiveBoxes: boxes, assignedGroundTruth: t.assigned, groundTruthMasks: masks,
                               paddedHeight: t.height, paddedWidth: t.width, maskSize: t.maskSize, binarize: false)
    #expect(unpadded.scalars != soft.scalars)
  }

  @Test func noPositivesGiveEmptyTargetsAndZeroLoss() {
    let masks = GroundTruthMasks(height: 4, width: 4, masks: [[UInt8](repeating: 1, count: 16)])
    let targets = maskTargets(positiveBoxes: Tensor(shape: [0, 4], scalars: []), assignedGroundTruth: [],
                              groundTruthMasks: masks, paddedHeight: 8, paddedWidth: 8)
    #expect(targets.shape == [0, 28, 28])
    let (loss, gradient) = maskCrossEntropyLoss(logits: Tensor(shape: [0, 28, 28, 3], scalars: []), targets: targets,
                                                labels: [])
    #expect(loss == 0 && gradient.shape == [0, 28, 28, 3])
  }

  @Test func lossGradientMatchesFiniteDifferences() {
    var rng = SplitMix64(seed: 9)
    let logits = Parameter(.randomNormal([3, 4, 4, 3], std: 2, using: &rng))
    let targets = Tensor(shape: [3, 4, 4], scalars: (0..<48).map { Float(($0 * 7) % 3 == 0 ? 1 : 0) })
    let labels = [2, 0, 1]
    let (_, gradient) = maskCrossEntropyLoss(logits: logits.value, targets: targets, labels: labels, lossWeight: 1.5)
    logits.grad = gradient
    expectGradientsMatch({ Double(maskCrossEntropyLoss(logits: logits.value, targets: targets, labels: labels,
                                                       lossWeight: 1.5).loss) },
                         wrt: logits, named: "logits", step: 1e-2, samples: 144)
  }

  /// The whole head's backward (BN in training mode, fused ReLUs, deconv) against finite differences of
  /// Σ logits ⊙ dy, for the ROI features and a few parameters of each kind.
  @Test(arguments: [false, true])
  func headBackwardMatchesFiniteDifferences(usesNorm: Bool) {
    var rng = SplitMix64(seed: 21)
    let head = FCNMaskHead(config: FCNMaskHeadConfig(inChannels: 3, convChannels: 4, convCount: 2, classCount: 2,
                                                     usesNorm: usesNorm),
                           using: &rng)
    for (name, parameter) in head.namedParameters where !parameter.isBuffer && name.hasSuffix("bias") {
      parameter.value = .randomNormal(parameter.value.shape, std: 0.1, using: &rng)  // no bias starts at 0
    }
    let x = Parameter(.randomNormal([3, 4, 4, 3], using: &rng))
    let (y, cache) = head.forward(x.value, mode: .training)
    let dy = Tensor.randomNormal(y.shape, using: &rng)
    x.grad = head.backward(dy, cache)
    let loss = { head.forward(x.value, mode: .training).0.dot(dy) }
    expectGradientsMatch(loss, wrt: x, named: "features", step: 2e-3, tolerance: 2e-2, kinkThreshold: 0.02)
    for (name, parameter) in head.namedParameters where !parameter.isBuffer {
      expectGradientsMatch(loss, wrt: parameter, named: name, step: 2e-3, tolerance: 2e-2, samples: 12,
                           kinkThreshold: 0.02)
    }
  }

  @Test func pastedMasksAreMMDetsGetSegMasks() {
    let p = golden.paste
    let logits = Tensor(shape: p.shape, scalars: p.logits)
    let boxes = Tensor(shape: [p.labels.count, 4], scalars: p.boxes)
    let scale = (width: p.scaleFactor[0], height: p.scaleFactor[1])
    let probabilities = pastedProbabilities(logits: logits, boxes: boxes, labels: p.labels, scaleFactor: scale,
                                            originalHeight: p.originalHeight, originalWidth: p.originalWidth)
    let masks = pasteMasks(logits: logits, boxes: boxes, labels: p.labels, scaleFactor: scale,
                           originalHeight: p.originalHeight, originalWidth: p.originalWidth)
    #expect(masks.count == p.labels.count)
    for detection in p.labels.indices {
      expectScaledClose(probabilities[detection], p.probabilities[detection], "probabilities of detection \(detection)")
      #expect(masks[detection].height == p.originalHeight && masks[detection].width == p.originalWidth)
      expectSameBinary(masks[detection].pixels.map(Float.init), p.masks[detection].map(Float.init),
                       before: p.probabilities[detection], "mask of detection \(detection)")
    }
    #expect(p.masks.contains { $0.contains(1) } && p.masks.contains { !$0.contains(1) })
  }

  /// The caller's RLE step (Datasets sits above Models): `COCORLE(columnMajorMask:)` of `columnMajorPixels` gives
  /// pycocotools' encoding of mmdet's mask (`encode_mask_results`).
  @Test func pastedMasksEncodeToPycocotoolsRLE() throws {
    let p = golden.paste
    let masks = pasteMasks(logits: Tensor(shape: p.shape, scalars: p.logits),
                           boxes: Tensor(shape: [p.labels.count, 4], scalars: p.boxes), labels: p.labels,
                           scaleFactor: (width: p.scaleFactor[0], height: p.scaleFactor[1]),
                           originalHeight: p.originalHeight, originalWidth: p.originalWidth)
    for (mask, rle) in zip(masks, p.rles) {
      let ours = COCORLE(columnMajorMask: mask.columnMajorPixels, height: mask.height, width: mask.width)
      #expect(ours == (try COCORLE(height: p.originalHeight, width: p.originalWidth, compressed: rle)))
    }
  }

  @Test func columnMajorPixelsTransposeTheMask() {
    let mask = PastedMask(height: 2, width: 3, pixels: [1, 0, 0,
                                                        1, 1, 0])
    #expect(mask.columnMajorPixels == [1, 1, 0, 1, 0, 0])
  }
}
