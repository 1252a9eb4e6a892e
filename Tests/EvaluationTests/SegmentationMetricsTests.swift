// mmseg 0.x's mIoU metric (SegmentationConfusion / SegmentationScores) and argmaxLabels, against hand-computed
// cases and golden values from mmseg's functions re-run in torch (scripts/reference/make_segmentation_metric_fixtures.py).
import Foundation
import Tensors
import Testing
@testable import Evaluation

struct SegmentationMetricGolden: Decodable {
  struct Image: Decodable {
    var height: Int, width: Int
    var label: [UInt8]
    var prediction: [Int32]
    var areaIntersect: [Int64], areaUnion: [Int64], areaPredLabel: [Int64], areaLabel: [Int64]
  }
  struct Case: Decodable {
    var name: String
    var classCount: Int, ignoreIndex: Int, reduceZeroLabel: Bool
    var predictionType: String
    var images: [Image]
    var areaIntersect: [Int64], areaUnion: [Int64], areaPredLabel: [Int64], areaLabel: [Int64]
    /// null = NaN.
    var IoU: [Double?], Acc: [Double?]
    var aAcc: Double?, mIoU: Double?, mAcc: Double?
  }
  var cases: [Case]

  static func load() throws -> SegmentationMetricGolden {
    let url = try #require(Bundle.module.resourceURL).appendingPathComponent("Fixtures/segmentation/metrics.json")
    return try JSONDecoder().decode(SegmentationMetricGolden.self, from: Data(contentsOf: url))
  }
}

/// `actual` equals `expected` to the bit (NaN matching null): the areas are exact integers, IoU/Acc/aAcc one
/// float64 division each, and the means numpy's pairwise sum over the classes.
private func matches(_ actual: Double, _ expected: Double?) -> Bool {
  guard let expected else { return actual.isNaN }
  return actual == expected
}

@Suite struct SegmentationMetricsTests {
  // MARK: - By hand

  /// 3 classes, one 2×3 image. Label [0 0 1 / 1 255 2], prediction [0 1 1 / 2 0 2]:
  /// the 255 pixel is dropped with its prediction 0. Intersect: class 0 at (0,0), class 1 at (0,2), class 2 at
  /// (1,2) → [1, 1, 1]. Predicted: 0 → 1, 1 → 2, 2 → 2 → [1, 2, 2]. Labelled: [2, 2, 1].
  /// Union = [2, 3, 2]; IoU = [½, ⅓, ½]; Acc = [½, ½, 1]; aAcc = 3/5; mIoU = 4/9; mAcc = 2/3.
  @Test func smallImageByHand() {
    var confusion = SegmentationConfusion(classCount: 3)
    confusion.add(prediction: [0, 1, 1, 2, 0, 2] as [UInt8], label: [0, 0, 1, 1, 255, 2])
    #expect(confusion.intersection == [1, 1, 1])
    #expect(confusion.predicted == [1, 2, 2])
    #expect(confusion.labelled == [2, 2, 1])
    #expect(confusion.union == [2, 3, 2])
    let scores = confusion.result
    #expect(scores.perClassIoU == [0.5, 1.0 / 3, 0.5])
    #expect(scores.perClassAccuracy == [0.5, 0.5, 1])
    #expect(scores.overallAccuracy == 0.6)
    #expect(abs(scores.meanIoU - 4.0 / 9) < 1e-15)
    #expect(abs(scores.meanAccuracy - 2.0 / 3) < 1e-15)
  }

  /// 4 classes: class 3 never appears (IoU and Acc NaN, skipped by both means); class 2 only predicted
  /// (IoU 0, Acc NaN, so mAcc averages classes 0 and 1 only). Label [0 1 1 0], prediction [0 1 2 2]:
  /// I = [1, 1, 0, 0], P = [1, 1, 2, 0], L = [2, 2, 0, 0], U = [2, 2, 2, 0] → IoU [½, ½, 0, NaN], mIoU = ⅓;
  /// Acc [½, ½, NaN, NaN], mAcc = ½; aAcc = 2/4.
  @Test func absentClassesAreNaNAndSkipped() {
    var confusion = SegmentationConfusion(classCount: 4)
    confusion.add(prediction: [0, 1, 2, 2] as [UInt8], label: [0, 1, 1, 0])
    let scores = confusion.result
    #expect(Array(scores.perClassIoU.prefix(3)) == [0.5, 0.5, 0])
    #expect(scores.perClassIoU[3].isNaN)
    #expect(Array(scores.perClassAccuracy.prefix(2)) == [0.5, 0.5])
    #expect(scores.perClassAccuracy[2].isNaN && scores.perClassAccuracy[3].isNaN)
    #expect(abs(scores.meanIoU - 1.0 / 3) < 1e-15)
    #expect(scores.meanAccuracy == 0.5)
    #expect(scores.overallAccuracy == 0.5)
  }

  /// histc drops values outside 0…classes−1: a stray label 9 (not ignored) counts nowhere but its prediction 1
  /// counts as predicted; an Int32 prediction −1 or 3 counts nowhere but its label counts as labelled.
  @Test func valuesOutsideTheClassesCountNowhere() {
    var confusion = SegmentationConfusion(classCount: 3)
    confusion.add(prediction: [1, -1, 3, 2] as [Int32], label: [9, 0, 2, 2])
    #expect(confusion.intersection == [0, 0, 1])
    #expect(confusion.predicted == [0, 1, 1])
    #expect(confusion.labelled == [1, 0, 2])
  }

  /// reduce_zero_label: stored 0 → ignored, k → k − 1, 255 stays ignored. Stored [0 1 2 255 3], prediction
  /// [2 0 0 1 2] → effective labels [ign 0 1 ign 2]; the three kept pixels (label, prediction) are (0, 0), (1, 0),
  /// (2, 2) → I = [1, 0, 1], P = [2, 0, 1], L = [1, 1, 1].
  @Test func reduceZeroLabel() {
    var confusion = SegmentationConfusion(classCount: 3, reducesZeroLabel: true)
    confusion.add(prediction: [2, 0, 0, 1, 2] as [UInt8], label: [0, 1, 2, 255, 3])
    #expect(confusion.intersection == [1, 0, 1])
    #expect(confusion.predicted == [2, 0, 1])
    #expect(confusion.labelled == [1, 1, 1])
  }

  @Test func emptySetIsNaNEverywhere() {
    var confusion = SegmentationConfusion(classCount: 2)
    confusion.add(prediction: [0, 1] as [UInt8], label: [255, 255])
    let scores = confusion.result
    #expect(scores.perClassIoU.allSatisfy(\.isNaN) && scores.perClassAccuracy.allSatisfy(\.isNaN))
    #expect(scores.meanIoU.isNaN && scores.meanAccuracy.isNaN && scores.overallAccuracy.isNaN)
    #expect(confusion.imageCount == 1)
  }

  // MARK: - Golden (mmseg's functions in torch)

  @Test func goldenCasesMatchMMSeg() throws {
    let golden = try SegmentationMetricGolden.load()
    #expect(golden.cases.count == 7)
    for testCase in golden.cases {
      var total = SegmentationConfusion(classCount: testCase.classCount, ignoreIndex: testCase.ignoreIndex,
                                        reducesZeroLabel: testCase.reduceZeroLabel)
      for (index, image) in testCase.images.enumerated() {
        #expect(image.label.count == image.height * image.width)
        var single = SegmentationConfusion(classCount: testCase.classCount, ignoreIndex: testCase.ignoreIndex,
                                           reducesZeroLabel: testCase.reduceZeroLabel)
        if testCase.predictionType == "uint8" {
          single.add(prediction: image.prediction.map { UInt8($0) }, label: image.label)
        } else {
          single.add(prediction: image.prediction, label: image.label)
        }
        // intersect_and_union of one image.
        #expect(single.intersection == image.areaIntersect, "\(testCase.name) image \(index)")
        #expect(single.union == image.areaUnion, "\(testCase.name) image \(index)")
        #expect(single.predicted == image.areaPredLabel, "\(testCase.name) image \(index)")
        #expect(single.labelled == image.areaLabel, "\(testCase.name) image \(index)")
        total.merge(single)
      }
      #expect(total.imageCount == testCase.images.count)
      #expect(total.intersection == testCase.areaIntersect, "\(testCase.name)")
      #expect(total.union == testCase.areaUnion, "\(testCase.name)")
      #expect(total.predicted == testCase.areaPredLabel, "\(testCase.name)")
      #expect(total.labelled == testCase.areaLabel, "\(testCase.name)")
      let scores = total.result
      #expect(scores.perClassIoU.count == testCase.IoU.count)
      for (actual, expected) in zip(scores.perClassIoU, testCase.IoU) {
        #expect(matches(actual, expected), "\(testCase.name) IoU \(actual) vs \(String(describing: expected))")
      }
      for (actual, expected) in zip(scores.perClassAccuracy, testCase.Acc) {
        #expect(matches(actual, expected), "\(testCase.name) Acc \(actual) vs \(String(describing: expected))")
      }
      #expect(matches(scores.overallAccuracy, testCase.aAcc), "\(testCase.name) aAcc")
      #expect(matches(scores.meanIoU, testCase.mIoU), "\(testCase.name) mIoU")
      #expect(matches(scores.meanAccuracy, testCase.mAcc), "\(testCase.name) mAcc")
    }
  }

  /// Sharding: the images split in any way and merged give the areas of adding them in one accumulator.
  @Test func mergeEqualsSequentialAdding() throws {
    let testCase = try #require(try SegmentationMetricGolden.load().cases.first { $0.name == "mixed" })
    var sequential = SegmentationConfusion(classCount: testCase.classCount)
    var even = SegmentationConfusion(classCount: testCase.classCount)
    var odd = SegmentationConfusion(classCount: testCase.classCount)
    for (index, image) in testCase.images.enumerated() {
      let prediction = image.prediction.map { UInt8($0) }
      sequential.add(prediction: prediction, label: image.label)
      if index.isMultiple(of: 2) { even.add(prediction: prediction, label: image.label) } else {
        odd.add(prediction: prediction, label: image.label)
      }
    }
    odd.merge(even)
    #expect(odd == sequential)
  }

  /// numpy's pairwise summation (np.add.reduce on float64), checked where its association differs from a plain
  /// loop: 1e16 + 1 + 1 … in order loses every 1, the 8 interleaved partial sums keep some.
  @Test func nanMeanSumsLikeNumpy() {
    // 9 values (the float64 spacing at 1e16 is 2): lanes r0 = 1e16, r1…r7 = 1, the ninth value is the remainder.
    // (r0 + r1) = 1e16 + 1 → 1e16 (tie, to even); + (r2 + r3) → 1e16 + 2; + ((r4 + r5) + (r6 + r7)) → 1e16 + 6;
    // + 1 → 1e16 + 7 → 1e16 + 8 (tie, to even). A plain loop rounds every + 1 back to 1e16.
    let values: [Double] = [1e16, 1, 1, 1, 1, 1, 1, 1, 1]
    #expect(numpyPairwiseSum(values[...]) == 1e16 + 8)  // np.sum gives 1.0000000000000008e+16
    #expect(values.reduce(0, +) == 1e16)
    #expect(nanMean([.nan, 1, 3, .nan]) == 2)
    #expect(nanMean([.nan, .nan]).isNaN)
  }

  @Test func confusionRoundTripsThroughJSON() throws {
    var confusion = SegmentationConfusion(classCount: 3, ignoreIndex: 0, reducesZeroLabel: false)
    confusion.add(prediction: [0, 1, 1, 2] as [UInt8], label: [1, 1, 2, 2])
    let decoded = try JSONDecoder().decode(SegmentationConfusion.self, from: JSONEncoder().encode(confusion))
    #expect(decoded == confusion)
  }

  // MARK: - argmax

  @Test func argmaxTakesTheFirstMaximumAndNaN() {
    // 4 pixels × 3 classes: a clear maximum, a tie (first wins, as torch.argmax), a NaN (counts as the maximum),
    // all equal.
    let logits = Tensor(shape: [1, 2, 2, 3], scalars: [
      0.1, 0.7, 0.2,
      2, 5, 5,
      1, .nan, 3,
      -1, -1, -1,
    ])
    #expect(argmaxLabels(logits: logits) == [1, 1, 1, 0])
    #expect(argmaxLabels(logits: logits.reshaped([2, 2, 3])) == [1, 1, 1, 0])
  }
}
