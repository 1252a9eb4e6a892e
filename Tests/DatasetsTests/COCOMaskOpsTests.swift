// COCO mask operations against pycocotools 2.0.11 (scripts/reference/make_coco_eval_fixtures.py →
// Fixtures/coco_masks/masks.json): polygon rasterisation (frPyObjects), merge, area, toBbox, encode, iou, bbIou.
import Foundation
import Testing

@testable import Datasets

private struct MaskFixtures: Decodable {
  struct Polygon: Decodable {
    var height: Int, width: Int, polygons: [[Double]], rles: [String], merged: String, area: Int, bbox: [Double]
  }
  struct Mask: Decodable { var height: Int, width: Int, rows: [String], rle: String, area: Int, bbox: [Double] }
  struct IoUSet: Decodable {
    var height: Int, width: Int, detections: [String], truths: [String], crowd: [Int], iou: [[Double]]
    var union: String, intersection: String
  }
  struct Boxes: Decodable { var detections: [[Double]], truths: [[Double]], crowd: [Int], iou: [[Double]] }
  var polygons: [Polygon], masks: [Mask]
  var iouSets: [IoUSet], boxes: [Boxes]
  enum CodingKeys: String, CodingKey { case polygons, masks, boxes; case iouSets = "iou_sets" }

  static func load() throws -> MaskFixtures {
    let url = try #require(Bundle.module.resourceURL).appendingPathComponent("Fixtures/coco_masks/masks.json")
    return try JSONDecoder().decode(MaskFixtures.self, from: Data(contentsOf: url))
  }
}

@Suite struct COCOMaskOpsTests {
  @Test func polygonsRasteriseAsPycocotools() throws {
    let fixtures = try MaskFixtures.load()
    #expect(fixtures.polygons.count == 400)
    for (index, item) in fixtures.polygons.enumerated() {
      for (part, polygon) in item.polygons.enumerated() {
        let rle = COCORLE(polygon: polygon, height: item.height, width: item.width)
        #expect(rle.compressedString == item.rles[part], "polygon \(index) part \(part)")
      }
      let merged = try COCORLE(polygons: item.polygons, height: item.height, width: item.width)
      #expect(merged.compressedString == item.merged, "polygon \(index) merged")
      #expect(merged.area == item.area, "polygon \(index) area")
      #expect(merged.boundingBox == item.bbox, "polygon \(index) toBbox")
    }
  }

  @Test func encodeAreaAndBoxOfMasks() throws {
    for (index, item) in try MaskFixtures.load().masks.enumerated() {
      let rowMajor = item.rows.flatMap { row in row.utf8.map { $0 == UInt8(ascii: "1") ? UInt8(1) : 0 } }
      let image = Image(width: item.width, height: item.height, channels: 1, pixels: rowMajor)
      let rle = COCORLE(mask: image)
      #expect(rle.compressedString == item.rle, "mask \(index)")
      #expect(rle.area == item.area, "mask \(index) area")
      #expect(rle.boundingBox == item.bbox, "mask \(index) toBbox")
      #expect(try rle.mask().pixels == rowMajor, "mask \(index) decodes back")
    }
  }

  @Test func maskIoUWithCrowdAndMerges() throws {
    for (index, set) in try MaskFixtures.load().iouSets.enumerated() {
      let decode = { (text: String) in try COCORLE(height: set.height, width: set.width, compressed: text) }
      let detections = try set.detections.map(decode), truths = try set.truths.map(decode)
      let iou = COCORLE.intersectionOverUnion(detections: detections, groundTruths: truths,
                                              groundTruthIsCrowd: set.crowd.map { $0 != 0 })
      #expect(iou == set.iou.flatMap { $0 }, "set \(index)")
      #expect(COCORLE.merge(detections + truths).compressedString == set.union, "set \(index) union")
      #expect(COCORLE.merge(detections + truths, intersect: true).compressedString == set.intersection,
              "set \(index) intersection")
    }
  }

  @Test func boxIoUWithCrowd() throws {
    for (index, set) in try MaskFixtures.load().boxes.enumerated() {
      let iou = COCOBoxIoU.matrix(detections: set.detections, groundTruths: set.truths,
                                  groundTruthIsCrowd: set.crowd.map { $0 != 0 })
      #expect(iou == set.iou.flatMap { $0 }, "box set \(index)")
    }
  }

  /// Hand-computed: a 2×2 box from (1, 1) in a 4×4 image covers pixels (1…2, 1…2); crowd IoU divides by the
  /// detection's area; merging masks of different sizes gives pycocotools' empty 0×0 RLE.
  @Test func handComputedCases() throws {
    let box = COCORLE(polygon: [1, 1, 1, 3, 3, 3, 3, 1], height: 4, width: 4)
    #expect(box.counts == [5, 2, 2, 2, 5])
    #expect(box.boundingBox == [1, 1, 2, 2])
    let whole = COCORLE(height: 4, width: 4, counts: [0, 16])
    #expect(COCORLE.intersectionOverUnion(detections: [box], groundTruths: [whole], groundTruthIsCrowd: [false])
              == [0.25])
    #expect(COCORLE.intersectionOverUnion(detections: [box], groundTruths: [whole], groundTruthIsCrowd: [true])
              == [1.0])
    #expect(COCORLE.merge([box, COCORLE(height: 2, width: 2, counts: [4])]) == COCORLE(height: 0, width: 0,
                                                                                          counts: []))
    #expect(throws: DatasetError.self) { try COCORLE(polygons: [[0, 0, 1, 1]], height: 4, width: 4) }
    #expect(throws: DatasetError.self) { try COCORLE(polygons: [], height: 4, width: 4) }
  }
}
