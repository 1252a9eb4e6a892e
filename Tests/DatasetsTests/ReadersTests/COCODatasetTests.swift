import Foundation
import Testing
import Tensors
@testable import Datasets

@Suite struct COCODatasetTests {
  @Test func readsImagesCategoriesAndAnnotations() throws {
    let coco = try COCODataset(annotationFile: try ReaderFixtures.url("coco/annotations/instances_val2017.json"))
    #expect(coco.imageDirectory.path.hasSuffix("coco/val2017"))
    let instances = coco.instances
    #expect(instances.images.map(\.fileName) == ["000000000001.jpg", "000000000002.jpg"])
    #expect(instances.images[1].width == 5 && instances.images[1].height == 2)
    #expect(coco.sortedCategoryIDs == [1, 3])
    #expect(instances.categories.map(\.name) == ["car", "person"])
    #expect(instances.annotations.map(\.isCrowd) == [false, true, true])
    let polygon = instances.annotations[0]
    #expect(polygon.bbox == [0.5, 1.0, 2.0, 1.5] && polygon.area == 2.25 && polygon.imageID == 1)
    #expect(polygon.segmentation == .polygons([[0.5, 1.0, 2.5, 1.0, 2.5, 2.5]]))
    #expect(coco.annotationsByImage()[1]?.count == 2)
    #expect(FileManager.default.fileExists(atPath: coco.imageURL(instances.images[0]).path))
  }

  /// Compressed "1234" (written by make_fixtures.py's transcription of rleToString) is runs 1, 2, 3, 6 over a
  /// 4-wide, 3-high mask in column-major order: column 0 = 0 1 1, column 1 = 0 0 0, columns 2, 3 = 1 1 1.
  @Test func decodesCompressedAndUncompressedRLEMasks() throws {
    let coco = try COCODataset(annotationFile: try ReaderFixtures.url("coco/annotations/instances_val2017.json"))
    guard case let .rle(compressed) = coco.instances.annotations[1].segmentation else {
      Issue.record("annotation 11 should be RLE")
      return
    }
    #expect(compressed == COCORLE(height: 3, width: 4, counts: [1, 2, 3, 6]))
    #expect(compressed.area == 8)
    #expect(try compressed.mask().pixels == [0, 0, 1, 1,
                                             1, 0, 1, 1,
                                             1, 0, 1, 1])
    guard case let .rle(plain) = coco.instances.annotations[2].segmentation else {
      Issue.record("annotation 12 should be RLE")
      return
    }
    #expect(try plain.mask().pixels == [0, 1, 1, 0, 0,
                                        0, 1, 1, 0, 0])
  }

  /// rleFrString by hand: 5 bits per character (offset 48), 0x20 = continue, 0x10 on the last = negative; from
  /// the fourth value on (m > 2, not m ≥ 2) a value is a difference from the count two places back.
  @Test(arguments: [
    ("1231", [UInt32(1), 2, 3, 3]),  // last: 1 + counts[1] = 3
    ("151M", [1, 5, 1, 2]),          // 'M' = 29: 0b11101, sign → −3; −3 + counts[1] = 2
    ("T3", [100]),                   // 'T' = 36: 4 and continue; '3': 3 << 5 = 96
    ("", []),
  ])
  func compressedStringsDecodeAsPycocotools(string: String, counts: [UInt32]) throws {
    let rle = try COCORLE(height: 1, width: 1, compressed: string)
    #expect(rle.counts == counts)
    #expect(rle.compressedString == string)
  }

  @Test func compressionRoundTrips() throws {
    var rng = SplitMix64(seed: 11)
    for _ in 0..<100 {
      let counts = (0..<Int.random(in: 0..<20, using: &rng)).map { _ in UInt32.random(in: 0..<5000, using: &rng) }
      let rle = COCORLE(height: 7, width: 9, counts: counts)
      #expect(try COCORLE(height: 7, width: 9, compressed: rle.compressedString) == rle)
    }
  }

  @Test func invalidRLEThrows() {
    for bad in ["T", "1~", "1 2", "00M"] {  // ends mid-value; '~' out of range; space; 0 + −3 < 0
      #expect(throws: DatasetError.self) { try COCORLE(height: 1, width: 1, compressed: bad) }
    }
    #expect(throws: DatasetError.self) { try COCORLE(height: 2, width: 2, counts: [1, 2]).mask() }
    #expect(throws: DatasetError.self) { try COCORLE(height: 0, width: 2, counts: []).mask() }
  }

  @Test func truncatedOrMalformedJSONThrowsNamingTheProblem() throws {
    let bytes = try ReaderFixtures.bytes("coco/annotations/instances_val2017.json")
    for length in stride(from: 0, to: bytes.count - 2, by: 13) {
      #expect(throws: DatasetError.self) { try COCOInstances(json: Data(bytes[..<length]), path: "cut.json") }
    }
    let text = String(decoding: bytes, as: UTF8.self)
    let cases = [
      (text.replacingOccurrences(of: "\"bbox\": [\n    0.5,", with: "\"bbox\": ["), "bbox"),
      (text.replacingOccurrences(of: "\"images\"", with: "\"pictures\""), "images"),
      (text.replacingOccurrences(of: "\"counts\": \"1234\"", with: "\"counts\": \"12~4\""), "counts"),
      (text.replacingOccurrences(of: "\"file_name\"", with: "\"name\""), "file_name"),
    ]
    for (json, field) in cases {
      #expect(json != text)
      #expect {
        try COCOInstances(json: Data(json.utf8), path: "/c/instances.json")
      } throws: { error in
        guard case let .malformedJSON(path, reason) = error as? DatasetError else { return false }
        return path == "/c/instances.json" && reason.contains(field)
      }
    }
  }
}
