// COCOResultsJSON against mmdet 2.x `_segm2json` (re-implemented in scripts/reference/make_coco_instance_fixtures.py
// with pycocotools' `encode`): the same records in the same order, numbers bit-equal after parsing, RLE strings
// equal.
import Foundation
import Testing
@testable import Datasets

@Suite struct COCOResultsJSONTests {
  let fixtures = COCOInstanceFixtures.shared

  /// The fixture's detections, masks encoded column-major as pycocotools' `encode` of a Fortran array.
  func detections() -> [COCOImageDetections] {
    fixtures.results.input.map { input in
      let masks = input.masks.map { data -> COCORLE in
        let rowMajor = [UInt8](data)
        var columnMajor = [UInt8](repeating: 0, count: rowMajor.count)
        for y in 0..<input.height {
          for x in 0..<input.width { columnMajor[x * input.height + y] = rowMajor[y * input.width + x] }
        }
        return COCORLE(columnMajorMask: columnMajor, height: input.height, width: input.width)
      }
      return COCOImageDetections(imageID: input.image_id, boxes: input.boxes, scores: input.scores,
                                 labels: input.labels, masks: masks)
    }
  }

  /// The expected records of the fixture (`bbox` or `segm`).
  func expected(_ kind: String) throws -> [[String: Any]] {
    let root = try #require(try JSONSerialization.jsonObject(
      with: Data(contentsOf: COCOInstanceFixtures.expectedFile)) as? [String: Any])
    let results = try #require(root["results"] as? [String: Any])
    return try #require(results[kind] as? [[String: Any]])
  }

  func parsed(_ text: String) throws -> [[String: Any]] {
    try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [[String: Any]])
  }

  func expectSameRecords(_ ours: [[String: Any]], _ reference: [[String: Any]]) {
    #expect(ours.count == reference.count)
    for (index, (a, b)) in zip(ours, reference).enumerated() {
      #expect(Set(a.keys) == Set(b.keys), "record \(index)")
      #expect(a["image_id"] as? Int == b["image_id"] as? Int, "record \(index)")
      #expect(a["category_id"] as? Int == b["category_id"] as? Int, "record \(index)")
      #expect((a["bbox"] as? [Double]) == (b["bbox"] as? [Double]), "record \(index)")
      #expect(a["score"] as? Double == b["score"] as? Double, "record \(index)")
      if let sa = a["segmentation"] as? [String: Any], let sb = b["segmentation"] as? [String: Any] {
        #expect(sa["size"] as? [Int] == sb["size"] as? [Int], "record \(index)")
        #expect(sa["counts"] as? String == sb["counts"] as? String, "record \(index)")
      }
    }
  }

  @Test func boxAndSegmentationRecordsMatchMMDet() throws {
    let images = detections()
    expectSameRecords(try parsed(COCOResultsJSON.boxRecords(images, categoryIDs: fixtures.category_ids)),
                      try expected("bbox"))
    let segm = try parsed(COCOResultsJSON.segmentationRecords(images, categoryIDs: fixtures.category_ids))
    #expect(segm.allSatisfy { $0["segmentation"] != nil })
    expectSameRecords(segm, try expected("segm"))
  }

  @Test func writeNamesTheFilesAsResults2JSON() throws {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("simsiam-coco-results-\(UUID())")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: folder) }
    let prefix = folder.appendingPathComponent("results")
    let files = try COCOResultsJSON.write(detections(), categoryIDs: fixtures.category_ids, prefix: prefix)
    #expect(files.map(\.lastPathComponent) == ["results.bbox.json", "results.segm.json"])
    expectSameRecords(try parsed(String(contentsOf: files[1], encoding: .utf8)), try expected("segm"))
    var boxesOnly = detections()
    for index in boxesOnly.indices { boxesOnly[index].masks = nil }
    let boxFiles = try COCOResultsJSON.write(boxesOnly, categoryIDs: fixtures.category_ids,
                                             prefix: folder.appendingPathComponent("boxes"))
    #expect(boxFiles.map(\.lastPathComponent) == ["boxes.bbox.json"])
    #expect(COCOResultsJSON.boxRecords([], categoryIDs: [1]) == "[]\n")
  }

  @Test func xywhIsFloat32CornersInFloat64() {
    // 0.1f as a double is 0.10000000149011612; 0.3f − 0.1f in float64, not float32.
    let box = COCOResultsJSON.xywh([0.1, 0.2, 0.3, 0.7], at: 0)
    #expect(box == [Double(Float(0.1)), Double(Float(0.2)), Double(Float(0.3)) - Double(Float(0.1)),
                    Double(Float(0.7)) - Double(Float(0.2))])
    #expect(box[2] != Double(Float(0.3) - Float(0.1)))
  }
}
