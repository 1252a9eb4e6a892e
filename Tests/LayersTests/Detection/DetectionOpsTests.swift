// Anchors, box coding, IoU, NMS, matcher and sampler against the reference implementations' outputs
// (Fixtures/detection/ops.json from scripts/reference/make_detection_fixtures.py) and hand-computed cases.
import Foundation
import Testing
import Tensors
@testable import Layers

@Suite struct DetectionOpsTests {
  let golden = DetectionOpsGolden.shared

  // MARK: - Anchors

  @Test func anchorsMatchDetectron2AndMMDet() {
    #expect(golden.anchors.count == 5)
    for item in golden.anchors {
      let convention: AnchorConvention = switch item.convention {
      case "detectron2": .detectron2(offset: item.offset)
      case "mmdet": .mmdet(centerOffset: item.offset)
      default: .mmdetLegacy(centerOffset: item.offset)
      }
      let generator = AnchorGenerator(sizes: item.sizes, aspectRatios: item.ratios, stride: item.stride,
                                      convention: convention)
      let anchors = generator.gridAnchors(featureHeight: item.height, featureWidth: item.width)
      #expect(anchors.shape == [item.height * item.width * 15, 4])
      expectClose(anchors.scalars, item.anchors, "\(item.convention) offset \(item.offset)")
    }
  }

  @Test func detectron2CellAnchorsBySizeThenRatio() {
    // size 32, ratio 0.5: w = sqrt(1024/0.5) = 45.2548, h = 22.6274; the second is ratio 1 of size 32.
    let cell = AnchorGenerator.fasterRCNNC4(convention: .detectron2(offset: 0)).cellAnchors()
    #expect(abs(cell[[0, 2]] - 22.627417) < 1e-4 && abs(cell[[0, 3]] - 11.313708) < 1e-4)
    #expect(cell[[1, 0]] == -16 && cell[[1, 3]] == 16)
    // mmdet orders ratio-major: its second anchor is ratio 0.5 of size 64.
    let mmdet = AnchorGenerator.fasterRCNNC4(convention: .mmdet(centerOffset: 0)).cellAnchors()
    #expect(abs(mmdet[[1, 2]] - 45.254834) < 1e-4)
  }

  @Test func anchorsInsideTheImageFollowMMDetsBorderRule() {
    let anchors = boxes([0, 0, 99, 49, -1, 0, 50, 40, 10, 10, 100, 20, 10, 10, 60, 50, -0.5, -0.5, 100.4, 50.4])
    // x2 < width and y2 < height strictly: the third (x2 = 100) and the fourth (y2 = 50) are outside at border 0.
    #expect(anchorsInsideImage(anchors, height: 50, width: 100, allowedBorder: 0) == [true, false, false, false, false])
    #expect(anchorsInsideImage(anchors, height: 50, width: 100, allowedBorder: 1) == [true, true, true, true, true])
    #expect(anchorsInsideImage(anchors, height: 50, width: 100, allowedBorder: -1).allSatisfy { $0 })
  }

  // MARK: - Box coding

  @Test func encodeAndDecodeMatchBox2BoxTransform() {
    for item in golden.boxCoding {
      let coder = BoxCoder(weights: (item.weights[0], item.weights[1], item.weights[2], item.weights[3]))
      let encoded = coder.encode(sources: boxes(item.sources), targets: boxes(item.targets))
      expectClose(encoded.scalars, item.encoded, "encode weights \(item.weights)")
      let deltas = Tensor(shape: [item.sources.count / 4, 4 * item.groups], scalars: item.deltas)
      expectClose(coder.decode(deltas: deltas, boxes: boxes(item.sources)).scalars, item.decoded,
                  "decode weights \(item.weights)")
    }
  }

  @Test func decodeClampsTheScaleAndInvertsEncode() {
    let source = boxes([10, 10, 30, 50])
    // dw = 100 is clamped to log(1000/16): the width becomes 20 · 62.5 = 1250.
    let wide = BoxCoder.rpn.decode(deltas: Tensor(shape: [1, 4], scalars: [0, 0, 100, 0]), boxes: source)
    #expect(abs((wide[[0, 2]] - wide[[0, 0]]) - 1250) < 1e-2)
    let target = boxes([12, 5, 40, 61])
    let roundTrip = BoxCoder.roiHead.decode(deltas: BoxCoder.roiHead.encode(sources: source, targets: target),
                                            boxes: source)
    expectClose(roundTrip.scalars, target.scalars, "decode(encode)")
  }

  @Test func clipAndNonEmpty() {
    let clipped = clipBoxes(boxes([-5, 3, 120, 90, 10, -2, 10, 50]), height: 80, width: 100)
    #expect(clipped.scalars == [0, 3, 100, 80, 10, 0, 10, 50])
    #expect(nonEmptyBoxIndices(clipped) == [0])
  }

  // MARK: - IoU and NMS

  @Test func pairwiseIoUMatchesDetectron2() {
    let iou = pairwiseIoU(boxes(golden.iou.a), boxes(golden.iou.b))
    #expect(iou.shape == [golden.iou.a.count / 4, golden.iou.b.count / 4])
    expectClose(iou.scalars, golden.iou.iou, "pairwise IoU")
    #expect(iou[[0, 0]] == 1)
  }

  @Test func nmsMatchesTorchvisionKernel() {
    for item in golden.nms {
      let kept = nonMaximumSuppression(boxes: boxes(item.boxes), scores: item.scores, iouThreshold: item.threshold)
      #expect(kept == item.keep, "NMS at \(item.threshold)")
      let limited = nonMaximumSuppression(boxes: boxes(item.boxes), scores: item.scores,
                                          iouThreshold: item.threshold, limit: 7)
      #expect(limited == Array(item.keep.prefix(7)))
      let batched = batchedNonMaximumSuppression(boxes: boxes(item.boxes), scores: item.scores, classes: item.classes,
                                                 iouThreshold: item.threshold)
      #expect(batched == item.batchedKeep, "batched NMS at \(item.threshold)")
    }
  }

  @Test func nmsSuppressesOnlyAboveTheThreshold() {
    // IoU([0,0,10,10], [0,0,10,20]) = 0.5 exactly: kept at 0.5, suppressed below.
    let pair = boxes([0, 0, 10, 10, 0, 0, 10, 20])
    #expect(nonMaximumSuppression(boxes: pair, scores: [0.9, 0.8], iouThreshold: 0.5) == [0, 1])
    #expect(nonMaximumSuppression(boxes: pair, scores: [0.9, 0.8], iouThreshold: 0.49) == [0])
    // Equal scores: the earlier box wins.
    #expect(nonMaximumSuppression(boxes: pair, scores: [0.5, 0.5], iouThreshold: 0.3) == [0])
    #expect(nonMaximumSuppression(boxes: pair, scores: [0.9, 0.8], iouThreshold: 0.5, limit: 0) == [])
    #expect(nonMaximumSuppression(boxes: boxes([]), scores: [], iouThreshold: 0.5) == [])
  }

  // MARK: - Matcher and sampler

  @Test func matcherMatchesDetectron2() {
    for item in golden.matcher {
      let matcher = item.name == "rpn" ? Matcher.rpn : Matcher.roiHead
      let quality = Tensor(shape: [item.gts, item.anchors], scalars: item.quality)
      let (matches, labels) = matcher(quality)
      #expect(matches == item.matches, "\(item.name) with \(item.gts) ground truths: matches")
      #expect(labels.map { Int($0.rawValue) } == item.labels, "\(item.name) with \(item.gts) ground truths: labels")
    }
  }

  @Test func lowQualityMatchesIncludeTies() {
    // One ground truth, IoUs 0.2, 0.2, 0.1: both 0.2 anchors become positive although below 0.3.
    let (matches, labels) = Matcher.rpn(Tensor(shape: [1, 3], scalars: [0.2, 0.2, 0.1]))
    #expect(matches == [0, 0, 0])
    #expect(labels == [.positive, .positive, .negative])
    #expect(Matcher.roiHead(Tensor(shape: [1, 3], scalars: [0.5, 0.49, 0.9])).labels == [.positive, .negative, .positive])
  }

  @Test func samplerMatchesSubsampleLabelsForTheSamePermutations() {
    for item in golden.sampler {
      var calls = 0
      let (positive, negative) = subsampleLabels(item.labels, batchSize: item.batch, positiveFraction: item.fraction,
                                                 backgroundLabel: item.background) { _ in
        calls += 1
        return calls == 1 ? item.permPositive : item.permNegative
      }
      #expect(positive == item.positive && negative == item.negative)
    }
  }

  @Test func seededSamplerCountsAndDeterminism() {
    var rng = SplitMix64(seed: 7)
    let labels = (0..<1000).map { _ in Int.random(in: -1...1, using: &rng) }
    let positives = labels.count { $0 == 1 }, negatives = labels.count { $0 == 0 }
    var a = SplitMix64(seed: 99), b = SplitMix64(seed: 99), c = SplitMix64(seed: 100)
    let first = subsampleLabels(labels, batchSize: 256, positiveFraction: 0.5, backgroundLabel: 0, using: &a)
    let second = subsampleLabels(labels, batchSize: 256, positiveFraction: 0.5, backgroundLabel: 0, using: &b)
    let other = subsampleLabels(labels, batchSize: 256, positiveFraction: 0.5, backgroundLabel: 0, using: &c)
    #expect(first.positive == second.positive && first.negative == second.negative)
    #expect(first.positive != other.positive)
    #expect(first.positive.count == min(positives, 128) && first.negative.count == min(negatives, 256 - 128))
    #expect(first.positive.allSatisfy { labels[$0] == 1 } && first.negative.allSatisfy { labels[$0] == 0 })
    #expect(Set(first.positive).count == first.positive.count)
    // Few positives: the batch is filled with negatives.
    let few = [1, 1] + [Int](repeating: 0, count: 500)
    let filled = subsampleLabels(few, batchSize: 256, positiveFraction: 0.5, backgroundLabel: 0, using: &a)
    #expect(filled.positive.count == 2 && filled.negative.count == 254)
  }
}
