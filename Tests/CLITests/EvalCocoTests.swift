// `simsiam-bench eval coco` end to end on a hand-computed set; the evaluator's golden tests against pycocotools
// are in EvaluationTests/COCOEvalTests.
import ArgumentParser
import Foundation
import Testing

@testable import SimSiamBenchCLI

@Suite struct EvalCocoTests {
  /// One 100×80 image, category 1 with one 10×10 object (area 100: small) and category 2 without any; one exact
  /// detection of the object, and one detection of category 2 (no ground truth: the category is left out).
  /// Every AP / AR that has ground truth is 1; medium and large have none, so pycocotools prints −1 for them.
  static func writeSet() throws -> URL {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("eval-coco-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    let truth = """
      {"images": [{"id": 7, "file_name": "a.jpg", "width": 100, "height": 80}],
       "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}],
       "annotations": [{"id": 1, "image_id": 7, "category_id": 1, "bbox": [10, 20, 10, 10], "area": 100,
                        "iscrowd": 0, "segmentation": [[10, 20, 20, 20, 20, 30, 10, 30]]}]}
      """
    let detections = """
      [{"image_id": 7, "category_id": 1, "bbox": [10, 20, 10, 10], "score": 0.9},
       {"image_id": 7, "category_id": 2, "bbox": [50, 50, 10, 10], "score": 0.8}]
      """
    try Data(truth.utf8).write(to: folder.appendingPathComponent("gt.json"))
    try Data(detections.utf8).write(to: folder.appendingPathComponent("dt.json"))
    return folder
  }

  static func command(_ arguments: [String]) throws -> EvalCOCO {
    try #require(try SimSiamBench.parseAsRoot(["eval", "coco"] + arguments) as? EvalCOCO)
  }

  @Test(arguments: ["bbox", "segm"])
  func printsPycocotoolsLinesAndWritesJSON(iouType: String) throws {
    let folder = try Self.writeSet()
    defer { try? FileManager.default.removeItem(at: folder) }
    let jsonURL = folder.appendingPathComponent("stats.json")
    let lines = try Self.command(["--gt", folder.appendingPathComponent("gt.json").path,
                                  "--dt", folder.appendingPathComponent("dt.json").path,
                                  "--iou-type", iouType, "--json", jsonURL.path]).evaluate()
    #expect(lines == [
      " Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 1.000",
      " Average Precision  (AP) @[ IoU=0.50      | area=   all | maxDets=100 ] = 1.000",
      " Average Precision  (AP) @[ IoU=0.75      | area=   all | maxDets=100 ] = 1.000",
      " Average Precision  (AP) @[ IoU=0.50:0.95 | area= small | maxDets=100 ] = 1.000",
      " Average Precision  (AP) @[ IoU=0.50:0.95 | area=medium | maxDets=100 ] = -1.000",
      " Average Precision  (AP) @[ IoU=0.50:0.95 | area= large | maxDets=100 ] = -1.000",
      " Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets=  1 ] = 1.000",
      " Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets= 10 ] = 1.000",
      " Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 1.000",
      " Average Recall     (AR) @[ IoU=0.50:0.95 | area= small | maxDets=100 ] = 1.000",
      " Average Recall     (AR) @[ IoU=0.50:0.95 | area=medium | maxDets=100 ] = -1.000",
      " Average Recall     (AR) @[ IoU=0.50:0.95 | area= large | maxDets=100 ] = -1.000",
    ])
    // Full precision: each precision entry is 1 / (1 + eps) (cocoeval adds np.spacing(1)), and numpy's pairwise
    // mean of 1010 or 101 of them is 1 − 2⁻⁵² or 1 − 2⁻⁵³; pycocotools 2.0.11 prints these stats for this set.
    // (Parsed with Double(String): Foundation's JSONSerialization rounds the last digit on Linux.)
    let text = try String(contentsOf: jsonURL, encoding: .utf8)
    let statsLine = try #require(text.split(separator: "\n").first { $0.hasPrefix("  \"stats\": [") })
    let stats = statsLine.dropFirst("  \"stats\": [".count).dropLast(2).split(separator: ", ").map { Double($0) }
    let below = 1 - 0x1p-52, justBelow = 1 - 0x1p-53
    #expect(stats == [below, justBelow, justBelow, below, -1, -1, 1, 1, 1, 1, -1, -1])
    #expect(text.contains("\"iou_type\": \"\(iouType)\""))
  }

  @Test func badInputIsNamed() throws {
    let folder = try Self.writeSet()
    defer { try? FileManager.default.removeItem(at: folder) }
    let missing = folder.appendingPathComponent("missing.json").path
    do {
      _ = try Self.command(["--gt", folder.appendingPathComponent("gt.json").path, "--dt", missing]).evaluate()
      Issue.record("a missing detections file was accepted")
    } catch {
      #expect("\(error)".contains(missing))
    }
    let notAList = folder.appendingPathComponent("object.json")
    try Data(#"{"image_id": 7}"#.utf8).write(to: notAList)
    do {
      _ = try Self.command(["--gt", folder.appendingPathComponent("gt.json").path, "--dt", notAList.path]).evaluate()
      Issue.record("a detections object instead of a list was accepted")
    } catch {
      #expect("\(error)".contains(notAList.path) && "\(error)".contains("list"))
    }
    #expect(throws: (any Error).self) { try Self.command(["--gt", "a", "--dt", "b", "--iou-type", "keypoints"]) }
  }
}
