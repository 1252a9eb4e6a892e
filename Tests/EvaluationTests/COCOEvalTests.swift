// The COCO evaluator against pycocotools' COCOeval (scripts/reference/make_coco_eval_fixtures.py → Fixtures/coco):
// all 12 stats for box and mask IoU, on box results and on mask results, to 1e-12.
import Datasets
import Foundation
import Tensors
import Testing
import TestSupport

@testable import Evaluation

private struct ExpectedCOCOStats: Decodable {
  struct Run: Decodable { var stats: [Double] }
  var iouThrs: [Double], recThrs: [Double]
  var bboxOnBoxes: Run, segmOnMasks: Run, segmOnBoxes: Run, bboxOnMasks: Run, segmOnBoth: Run
  enum CodingKeys: String, CodingKey {
    case iouThrs, recThrs, segmOnBoth = "segm_on_dt_both"
    case bboxOnBoxes = "bbox_on_dt_bbox", segmOnMasks = "segm_on_dt_segm"
    case segmOnBoxes = "segm_on_dt_bbox", bboxOnMasks = "bbox_on_dt_segm"
  }
}

@Suite struct COCOEvalTests {
  static var folder: URL { Bundle.module.resourceURL!.appendingPathComponent("Fixtures/coco") }

  private static func expected() throws -> ExpectedCOCOStats {
    try JSONDecoder().decode(ExpectedCOCOStats.self, from: Data(contentsOf: folder.appendingPathComponent("expected.json")))
  }

  private static func stats(_ detections: String, _ iouType: COCOIoUType) throws -> [Double] {
    let truth = try COCOGroundTruth.load(folder.appendingPathComponent("gt.json"))
    let results = try COCODetections.load(folder.appendingPathComponent(detections), groundTruth: truth)
    return try COCOEvaluator.evaluate(groundTruth: truth, detections: results, iouType: iouType).stats
  }

  private static func expectClose(_ ours: [Double], _ reference: [Double], _ label: String) {
    #expect(ours.count == 12, "\(label): \(ours.count) stats")
    for (i, (a, b)) in zip(ours, reference).enumerated() {
      #expect(abs(a - b) <= 1e-12, "\(label) stats[\(i)]: ours \(a), pycocotools \(b)")
    }
  }

  @Test func thresholdsAreNumpysLinspace() throws {
    let expected = try Self.expected()
    let parameters = COCOEvalParameters()
    #expect(parameters.iouThresholds == expected.iouThrs)
    #expect(parameters.recallThresholds == expected.recThrs)
  }

  @Test func boxAPOnBoxResults() throws {
    Self.expectClose(try Self.stats("dt_bbox.json", .bbox), try Self.expected().bboxOnBoxes.stats, "bbox")
  }

  @Test func maskAPOnMaskResults() throws {
    Self.expectClose(try Self.stats("dt_segm.json", .segm), try Self.expected().segmOnMasks.stats, "segm")
  }

  /// Box results under mask IoU: each box becomes its outline polygon, rasterised; area stays w · h.
  @Test func maskAPOnBoxResults() throws {
    Self.expectClose(try Self.stats("dt_bbox.json", .segm), try Self.expected().segmOnBoxes.stats, "segm on boxes")
  }

  /// Mask results under box IoU: the box is the mask's toBbox, the area its pixel count.
  @Test func boxAPOnMaskResults() throws {
    Self.expectClose(try Self.stats("dt_segm.json", .bbox), try Self.expected().bboxOnMasks.stats, "bbox on masks")
  }

  /// Box and mask in each result, as Mask R-CNN writes them: loadRes's box branch (area = w · h), mask IoU on the
  /// given masks.
  @Test func maskAPOnBoxAndMaskResults() throws {
    Self.expectClose(try Self.stats("dt_both.json", .segm), try Self.expected().segmOnBoth.stats, "segm on both")
  }

  @Test func resultsDoNotDependOnThreadCount() throws {
    try ThreadCountLock.holding {
      Threads.configure(1)
      let single = try Self.stats("dt_segm.json", .segm)
      Threads.configure(4)
      let several = try Self.stats("dt_segm.json", .segm)
      #expect(single == several)
    }
  }

  @Test func summaryLinesUsePycocotoolsWording() throws {
    let truth = try COCOGroundTruth.load(Self.folder.appendingPathComponent("gt.json"))
    let results = try COCODetections.load(Self.folder.appendingPathComponent("dt_bbox.json"), groundTruth: truth)
    let result = try COCOEvaluator.evaluate(groundTruth: truth, detections: results, iouType: .bbox)
    let lines = COCOSummary.lines(result)
    let stats = try Self.expected().bboxOnBoxes.stats
    #expect(lines[0] == " Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = "
              + String(format: "%0.3f", stats[0]))
    #expect(lines[1].hasPrefix(" Average Precision  (AP) @[ IoU=0.50      | area=   all | maxDets=100 ] = "))
    #expect(lines[3].hasPrefix(" Average Precision  (AP) @[ IoU=0.50:0.95 | area= small | maxDets=100 ] = "))
    #expect(lines[6].hasPrefix(" Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets=  1 ] = "))
    #expect(lines[11].hasPrefix(" Average Recall     (AR) @[ IoU=0.50:0.95 | area= large | maxDets=100 ] = "))
  }

  /// numpy's pairwise summation, checked on a case where it differs from a left-to-right sum.
  @Test func pairwiseSumMatchesNumpysOrder() {
    let values = [1e16, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, -1e16]
    // lanes 0…7 = 1e16, 1, …, 1 → ((1e16+1)+(1+1))+((1+1)+(1+1)) = 1e16+6 → +1 → +(−1e16)
    #expect(COCOSummary.pairwiseSum(values[...]) == ((1e16 + 1) + 2 + 4 + 1 - 1e16))
  }
}

@Suite struct COCOEvalInputErrorTests {
  private static func truth() throws -> COCOGroundTruth {
    try COCOGroundTruth.load(COCOEvalTests.folder.appendingPathComponent("gt.json"))
  }

  @Test func detectionOnUnknownImageIsNamed() throws {
    let entries = [COCODetections.Entry(imageID: 424242, categoryID: 1, score: 0.5, bbox: [0, 0, 1, 1],
                                        segmentation: nil)]
    #expect(throws: COCOEvalError.unknownImage(path: "dt.json", index: 0, imageID: 424242)) {
      try COCODetections(entries: entries, path: "dt.json", groundTruth: try Self.truth())
    }
  }

  @Test func malformedFilesNameTheFileAndPlace() throws {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("coco-eval-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: folder) }
    let bad = folder.appendingPathComponent("dt.json")
    try Data(#"[{"image_id": 1, "category_id": 1, "bbox": [1, 2, "x", 4], "score": 0.5}]"#.utf8).write(to: bad)
    do {
      _ = try COCODetections.load(bad, groundTruth: try Self.truth())
      Issue.record("a bbox with a string was accepted")
    } catch {
      let message = "\(error)"
      #expect(message.contains(bad.path) && message.contains("[0].bbox"), "\(message)")
    }
    let missing = folder.appendingPathComponent("nope.json")
    #expect(throws: COCOEvalError.unreadableFile(path: missing.path, reason: "no such file")) {
      try COCOGroundTruth.load(missing)
    }
    let noScore = [COCODetections.Entry(imageID: try Self.truth().images[0].id, categoryID: 1, score: nil,
                                        bbox: [0, 0, 1, 1], segmentation: nil)]
    #expect(throws: COCOEvalError.self) { try COCODetections(entries: noScore, path: "d", groundTruth: try Self.truth()) }
  }

  /// No detections at all: every AP and AR is 0 (categories with ground truth exist), not a crash.
  @Test func emptyResultsScoreZero() throws {
    let truth = try Self.truth()
    let none = try COCODetections(entries: [], path: "empty.json", groundTruth: truth)
    let stats = try COCOEvaluator.evaluate(groundTruth: truth, detections: none, iouType: .bbox).stats
    #expect(stats == [Double](repeating: 0, count: 12))
  }
}

/// The fast results reader gives exactly JSONDecoder's entries, and declines (so the decoder reports) what it
/// does not handle.
@Suite struct COCOResultsParserTests {
  @Test(arguments: ["dt_bbox.json", "dt_segm.json", "dt_both.json"])
  func matchesJSONDecoderOnFixtures(file: String) throws {
    let data = try Data(contentsOf: COCOEvalTests.folder.appendingPathComponent(file))
    let fast = try #require(COCOResultsParser.entries(data))
    #expect(fast == (try JSONDecoder().decode([COCODetections.Entry].self, from: data)))
  }

  @Test func handlesEscapesUnknownKeysAndWhitespace() throws {
    let text = #"""
      [ {"image_id": 3, "extra": {"a": [1, true, null, "x\"y"]}, "category_id": -2, "score": 1e-3,
         "bbox": [0.1, 2E2, 3, 4.000000000000001],
         "segmentation": {"size": [2, 3], "counts": "0\\1"}},
        {"image_id":4,"category_id":5,"score":0.5,"segmentation":[[1,2,3,4,5,6]]},
        {"image_id":4,"category_id":5,"score":0.5,"segmentation":{"counts":[1,2,3],"size":[2,3]}} ]
      """#
    let data = Data(text.utf8)
    let fast = try #require(COCOResultsParser.entries(data))
    #expect(fast == (try JSONDecoder().decode([COCODetections.Entry].self, from: data)))
    #expect(fast.count == 3 && fast[0].bbox == [0.1, 200, 3, 4.000000000000001] && fast[0].categoryID == -2)
    for declined in [#"{"image_id": 1}"#, #"[{"image_id": 1.5, "category_id": 1}]"#, #"[{"category_id": 1}]"#,
                     #"[{"image_id": 1, "category_id": 1}] x"#, #"[{"image_id": 1, "category_id": 1, "score": nan}]"#] {
      #expect(COCOResultsParser.entries(Data(declined.utf8)) == nil, "\(declined)")
    }
  }
}
