// Results json written by Datasets' COCOResultsJSON (mmdet's `_segm2json` layout) read back by `COCODetections`
// (pycocotools `loadRes`) and scored by `COCOEvaluator`: on a scene set, detections equal to the ground truth score
// AP 1 for boxes and masks; the same detections with every label moved to the next category score near 0 (a
// shifted detection only matches where it overlaps an object of the next class) — so the label → category id
// mapping, the xywh boxes and the RLE masks all survive the round trip.
import Datasets
import Foundation
import TestSupport
import Testing
@testable import Evaluation

@Suite struct COCOResultsRoundTripTests {
  @Test func groundTruthAsDetectionsScoresOneAndShiftedLabelsNearZero() throws {
    let voc = try writeScenes(trainval: 2, test: 6)
    let directory = voc.deletingLastPathComponent().deletingLastPathComponent()
    defer { try? FileManager.default.removeItem(at: directory) }
    let file = directory.appendingPathComponent("annotations/instances_test.json")
    let data = try COCOInstanceDataset(annotationFile: file, use: .evaluation)
    // One detection per target, in the original frame, with a falling score.
    func detections(labelShift: Int) throws -> [COCOImageDetections] {
      var score: Float = 0.99
      return try data.samples.map { record in
        let scores = record.objects.map { _ -> Float in score -= 0.001; return score }
        return COCOImageDetections(
          imageID: record.imageID, boxes: record.objects.flatMap { [$0.x1, $0.y1, $0.x2, $0.y2] }, scores: scores,
          labels: record.objects.map { ($0.classIndex + labelShift) % data.categoryIDs.count },
          masks: try record.bitmaps(path: file.path).map { COCORLE(mask: $0) })
      }
    }
    let groundTruth = try COCOGroundTruth.load(file)
    for shift in [0, 1] {
      let files = try COCOResultsJSON.write(detections(labelShift: shift), categoryIDs: data.categoryIDs,
                                            prefix: directory.appendingPathComponent("results-\(shift)"))
      #expect(files.count == 2)
      for (file, iouType) in zip(files, [COCOIoUType.bbox, .segm]) {
        let loaded = try COCODetections.load(file, groundTruth: groundTruth)
        #expect(loaded.detections.count == data.samples.reduce(0) { $0 + $1.objects.count })
        let result = try COCOEvaluator.evaluate(groundTruth: groundTruth, detections: loaded, iouType: iouType)
        if shift == 0 {
          #expect(result.stats[0] == 1 && result.stats[1] == 1 && result.stats[2] == 1, "\(iouType)")
        } else {
          #expect(result.stats[0] < 0.1 && result.stats[1] < 0.1, "\(iouType) with labels shifted: \(result.stats)")
        }
      }
    }
  }
}
