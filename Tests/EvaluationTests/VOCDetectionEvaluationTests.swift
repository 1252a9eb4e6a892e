// VOC detection AP against mmdet 2.x `eval_map` (11 points and area) and detectron2's PascalVOCDetectionEvaluator
// (07 metric and all-point), as re-implemented from their code by scripts/reference/make_detection_fixtures.py
// (Fixtures/detection/voc_ap.json: random data with difficult objects, duplicates, an empty class and a class without
// detections, and hand-made edge cases), plus hand-computed cases.
import Foundation
import Testing
@testable import Evaluation

private struct VOCGolden: Decodable {
  struct Detection: Decodable { var box: [Float], score: Float }
  struct Object: Decodable { var box: [Float], `class`: Int, difficult: Bool }
  struct Image: Decodable { var detections: [[Detection]], objects: [Object] }
  struct MMDet: Decodable { var mAP: Double, per_class: [Double], num_gts: [Int]? }
  /// null = NaN (detectron2's all-point AP of a class without ground truth, and every mean that includes it).
  struct Detectron2: Decodable { var AP: Double?, AP50: Double?, AP75: Double?, per_class: [[Double?]] }
  struct Case: Decodable {
    var name: String, classes: Int, images: [Image]
    var mmdet: MMDet, mmdet_area: MMDet, detectron2: Detectron2, detectron2_2012: Detectron2
  }
  var cases: [Case]

  static func load() throws -> VOCGolden {
    let url = try #require(Bundle.module.resourceURL).appendingPathComponent("Fixtures/detection/voc_ap.json")
    return try JSONDecoder().decode(VOCGolden.self, from: Data(contentsOf: url))
  }
}

private func box(_ b: [Float]) -> DetectionBox { DetectionBox(b[0], b[1], b[2], b[3]) }

private func evaluator(_ item: VOCGolden.Case) -> VOCDetectionEvaluator {
  var evaluator = VOCDetectionEvaluator(classCount: item.classes)
  for image in item.images {
    evaluator.add(detections: image.detections.map { $0.map { ScoredBox(box: box($0.box), score: $0.score) } },
                  groundTruth: image.objects.map { GroundTruthObject(box: box($0.box), classIndex: $0.class,
                                                                     isDifficult: $0.difficult) })
  }
  return evaluator
}

private func expectClose(_ a: Double, _ b: Double, _ what: String, tolerance: Double = 1e-6) {
  #expect(abs(a - b) <= tolerance * max(abs(b), 1), "\(what): \(a) vs reference \(b)")
}

/// `nil` in the fixture is NaN.
private func expectClose(_ a: Double, _ b: Double?, _ what: String) {
  if let b { expectClose(a, b, what) } else { #expect(a.isNaN, "\(what): \(a) vs reference NaN") }
}

@Suite struct VOCDetectionEvaluationTests {
  @Test func mmdetEvalMapMatchesTheReference() throws {
    let golden = try VOCGolden.load()
    #expect(golden.cases.map(\.name) == ["random", "random_large", "edge"])
    for item in golden.cases {
      let eleven = evaluator(item).mmdetMAP(iouThreshold: 0.5, use11Points: true)
      expectClose(eleven.mAP, item.mmdet.mAP, "\(item.name) mAP")
      for (c, (ours, theirs)) in zip(eleven.perClassAP, item.mmdet.per_class).enumerated() {
        expectClose(ours, theirs, "\(item.name) class \(c) AP")
      }
      #expect(eleven.groundTruthCounts == item.mmdet.num_gts)
      let area = evaluator(item).mmdetMAP(iouThreshold: 0.5, use11Points: false)
      expectClose(area.mAP, item.mmdet_area.mAP, "\(item.name) area mAP")
      for (c, (ours, theirs)) in zip(area.perClassAP, item.mmdet_area.per_class).enumerated() {
        expectClose(ours, theirs, "\(item.name) class \(c) area AP")
      }
    }
  }

  @Test func detectron2EvaluatorMatchesTheReference() throws {
    for item in try VOCGolden.load().cases {
      for (use07, reference) in [(true, item.detectron2), (false, item.detectron2_2012)] {
        let ours = evaluator(item).detectron2(use07Metric: use07)
        let what = "\(item.name) \(use07 ? "07" : "all-point")"
        expectClose(ours.ap, reference.AP, "\(what) AP")
        expectClose(ours.ap50, reference.AP50, "\(what) AP50")
        expectClose(ours.ap75, reference.AP75, "\(what) AP75")
        #expect(ours.perClassAP.count == 10)
        for (t, (row, referenceRow)) in zip(ours.perClassAP, reference.per_class).enumerated() {
          for (c, (a, b)) in zip(row, referenceRow).enumerated() { expectClose(a, b, "\(what) IoU \(50 + 5 * t) class \(c)") }
        }
      }
    }
  }

  @Test func theReferencesDifferOnAnIoUOfExactlyOneHalf() throws {
    // The edge case: mmdet matches at IoU ≥ 0.5 (class 0 AP 1), detectron2 needs IoU > 0.5 (class 0 AP50 0).
    let edge = try #require(try VOCGolden.load().cases.first { $0.name == "edge" })
    #expect(evaluator(edge).mmdetMAP().perClassAP == [1, 1])
    let detectron2 = evaluator(edge).detectron2()
    #expect(detectron2.perClassAP[0][0] == 0 && abs(detectron2.perClassAP[0][1] - 100) < 1e-9)
  }

  @Test func elevenPointAPByHand() {
    // One class, 3 objects (one difficult) in one image; detections by score: TP, duplicate (FP), on the difficult
    // object (ignored), TP. Ranks: (R, P) = (½, 1), (½, ½), (1, ⅔). 11-point: t ≤ 0.5 → 1 (6 points; 0.5 is
    // 5 · 0.1 = 0.5 exactly), t = 0.6…1 → ⅔ (5 points): AP = (6 + 5 · ⅔)/11 = 28/33.
    var evaluator = VOCDetectionEvaluator(classCount: 1)
    evaluator.add(
      detections: [[ScoredBox(box: DetectionBox(0, 0, 9, 9), score: 0.9), ScoredBox(box: DetectionBox(0, 0, 9, 10), score: 0.8),
                    ScoredBox(box: DetectionBox(50, 50, 70, 70), score: 0.7), ScoredBox(box: DetectionBox(20, 20, 40, 40), score: 0.6)]],
      groundTruth: [GroundTruthObject(box: DetectionBox(0, 0, 9, 9), classIndex: 0, isDifficult: false),
                    GroundTruthObject(box: DetectionBox(20, 20, 40, 40), classIndex: 0, isDifficult: false),
                    GroundTruthObject(box: DetectionBox(50, 50, 70, 70), classIndex: 0, isDifficult: true)])
    let result = evaluator.mmdetMAP()
    #expect(abs(result.mAP - 28.0 / 33) < 1e-6)
    #expect(result.groundTruthCounts == [2])
    // detectron2 sees the same ranking at every IoU up to 0.9 (the duplicate's IoU with the first object is
    // 90/100 in its frame): AP50 = 100 · 28/33.
    #expect(abs(evaluator.detectron2().ap50 - 100 * 28.0 / 33) < 1e-9)
  }

  @Test func classesWithoutGroundTruthAreSkippedByMMDetAndZeroForDetectron2() {
    // Class 1 has only a false alarm: mmdet leaves it out of the mean, detectron2 averages its 0 in.
    var evaluator = VOCDetectionEvaluator(classCount: 2)
    evaluator.add(detections: [[ScoredBox(box: DetectionBox(0, 0, 10, 10), score: 0.5)],
                               [ScoredBox(box: DetectionBox(30, 30, 40, 40), score: 0.9)]],
                  groundTruth: [GroundTruthObject(box: DetectionBox(0, 0, 10, 10), classIndex: 0, isDifficult: false)])
    let mmdet = evaluator.mmdetMAP()
    #expect(mmdet.mAP == 1 && mmdet.perClassAP == [1, 0] && mmdet.groundTruthCounts == [1, 0])
    let detectron2 = evaluator.detectron2()
    #expect(abs(detectron2.ap50 - 50) < 1e-9 && abs(detectron2.ap - 50) < 1e-9)
    // No images at all: mmdet's mAP is 0 (no class has ground truth).
    #expect(VOCDetectionEvaluator(classCount: 3).mmdetMAP().mAP == 0)
  }
}
