// COCOInstanceDataset (mmdet 2.x CocoDataset for Mask R-CNN) against Tests/DatasetsTests/Fixtures/coco_instances,
// written by scripts/reference/make_coco_instance_fixtures.py: the tiny COCO folder, and what mmdet's
// `_filter_imgs` / `_parse_ann_info` / `_poly2mask` (pycocotools) / Resize + RandomFlip + Pad (cv2 INTER_NEAREST
// for masks) and `_segm2json` make of it, re-implemented there. Every comparison is exact (floats bit-equal, masks
// by SHA-256 and area).
import Foundation
import Support
import Testing
import Tensors
@testable import Datasets

struct COCOInstanceFixtures: Decodable {
  struct MaskDigest: Decodable, Equatable {
    var sha256: String
    var area: Int
  }
  struct TrainRecord: Decodable {
    var image_id: Int
    var boxes: [Float]
    var labels: [Int]
    var annotation_ids: [Int]
    var crowd_boxes: [Float]
    var masks: [MaskDigest]
  }
  struct Case: Decodable {
    var image_id: Int
    var max_size: Int
    var short_sides: [Int]
    var scale_index: Int
    var flip: Bool
    var size: [Int]
    var boxes: [Float]
    var masks: [MaskDigest]
    var pad_shape: [Int]
    var padded_masks: [MaskDigest]
  }
  struct ResultsInput: Decodable {
    var image_id: Int
    var height: Int
    var width: Int
    var boxes: [Float]
    var scores: [Float]
    var labels: [Int]
    var masks: [Data]  // row-major uint8, base64 in the json
  }
  struct Results: Decodable {
    var input: [ResultsInput]
  }
  struct NearestCase: Decodable {
    var width: Int
    var height: Int
    var short_side: Int
    var size: [Int]
    var sha256: String
  }

  var category_ids: [Int]
  var class_names: [String]
  var train: [TrainRecord]
  var evaluation_image_ids: [Int]
  var cases: [Case]
  var protocol_nearest: [NearestCase]
  var results: Results

  static let folder = Bundle.module.url(forResource: "coco_instances", withExtension: nil, subdirectory: "Fixtures")!
  static let annotationFile = folder.appendingPathComponent("annotations/instances_tiny.json")
  static let imageDirectory = folder.appendingPathComponent("images")
  static let expectedFile = folder.appendingPathComponent("expected.json")

  static let shared: COCOInstanceFixtures = try! JSONDecoder().decode(
    COCOInstanceFixtures.self, from: Data(contentsOf: expectedFile))
}

func digest(_ mask: [UInt8]) -> COCOInstanceFixtures.MaskDigest {
  COCOInstanceFixtures.MaskDigest(sha256: SHA256.hexDigest(of: mask), area: mask.reduce(0) { $0 + Int($1) })
}

@Suite struct COCOInstanceDatasetTests {
  let fixtures = COCOInstanceFixtures.shared

  func dataset(_ use: DetectionDatasetUse) throws -> COCOInstanceDataset {
    try COCOInstanceDataset(annotationFile: COCOInstanceFixtures.annotationFile,
                            imageDirectory: COCOInstanceFixtures.imageDirectory, use: use)
  }

  @Test func trainingKeepsAndParsesImagesAsMMDet() throws {
    let data = try dataset(.training)
    #expect(data.categoryIDs == fixtures.category_ids)
    #expect(data.classNames == fixtures.class_names)
    #expect(data.samples.map(\.imageID) == fixtures.train.map(\.image_id))
    for (record, expected) in zip(data.samples, fixtures.train) {
      #expect(record.objects.flatMap { [$0.x1, $0.y1, $0.x2, $0.y2] } == expected.boxes, "image \(record.imageID)")
      #expect(record.objects.map(\.classIndex) == expected.labels, "image \(record.imageID)")
      #expect(record.annotationIDs == expected.annotation_ids, "image \(record.imageID)")
      #expect(record.crowdBoxes == expected.crowd_boxes, "image \(record.imageID)")
    }
    // Image 4 has no annotation, image 7 is 31 px wide; image 9 (a crowd only) is kept without targets. Image 5
    // loses a sub-pixel-wide box and a zero-area one (degenerate) and one outside the image.
    var counts = COCOInstanceLoadCounts()
    (counts.listedImages, counts.imagesWithoutAnnotations, counts.imagesTooSmall) = (5, 1, 1)
    (counts.imagesWithoutTargets, counts.targets, counts.crowdAnnotations) = (1, 6, 2)
    (counts.annotationsOutsideImage, counts.degenerateAnnotations) = (1, 2)
    #expect(data.counts == counts)
    #expect(data.categoryID(ofLabel: 2) == 12)
  }

  @Test func evaluationKeepsEveryImageInJSONOrder() throws {
    let data = try dataset(.evaluation)
    #expect(data.samples.map(\.imageID) == fixtures.evaluation_image_ids)
    #expect(data.samples.first { $0.imageID == 4 }?.objects.isEmpty == true)
    #expect(try dataset(.training).fingerprint != data.fingerprint)
    #expect(data.prefix(2).samples.map(\.imageID) == Array(fixtures.evaluation_image_ids.prefix(2)))
    #expect(data.prefix(2).fingerprint != data.fingerprint)
  }

  @Test func masksAtTheAnnotatedSizeArePycocotoolsDecodings() throws {
    let data = try dataset(.training)
    for (record, expected) in zip(data.samples, fixtures.train) {
      let bitmaps = try record.bitmaps(path: data.annotationFile.path)
      #expect(bitmaps.map { [$0.width, $0.height] } == Array(repeating: [record.width, record.height],
                                                               count: bitmaps.count))
      #expect(bitmaps.map { digest($0.pixels) } == expected.masks, "image \(record.imageID)")
    }
  }

  @Test func resizedFlippedAndPaddedMasksMatchMMDetWithOpenCV() throws {
    let data = try dataset(.training)
    #expect(fixtures.cases.count == 18)
    for c in fixtures.cases {
      let record = try #require(data.samples.first { $0.imageID == c.image_id })
      let image = try Image(contentsOf: record.image, mode: .rgb)
      let pipeline = DetectionPipeline(shortSides: c.short_sides, maxSize: c.max_size, flipProbability: 0)
      let sample = pipeline.apply(image: image, objects: record.objects,
                                  masks: try record.bitmaps(path: data.annotationFile.path),
                                  cocoImageID: record.imageID,
                                  decisions: .init(scaleIndex: c.scale_index, flip: c.flip))
      let label = "image \(c.image_id), scale \(c.short_sides[c.scale_index]), flip \(c.flip)"
      #expect([sample.detection.height, sample.detection.width] == c.size, "\(label)")
      #expect([sample.masks.height, sample.masks.width] == c.size, "\(label)")
      #expect(sample.detection.boxes.scalars == c.boxes, "\(label)")
      #expect(sample.masks.masks.map(digest) == c.masks, "\(label)")
      #expect(sample.cocoImageID == c.image_id && sample.detection.imageID == String(c.image_id))
      let padded = sample.masks.paddedToMultiple(of: 32)
      #expect([padded.height, padded.width] == c.pad_shape, "\(label)")
      #expect(padded.masks.map(digest) == c.padded_masks, "\(label)")
    }
  }

  @Test func maskResizeIsOpenCVNearestAtTheProtocolSizes() {
    #expect(fixtures.protocol_nearest.count == 42)
    let pipeline = DetectionPipeline.mmdetCOCOInstanceTrain
    for c in fixtures.protocol_nearest {
      var pattern = [UInt8](repeating: 0, count: c.width * c.height)
      for y in 0..<c.height {
        for x in 0..<c.width { pattern[y * c.width + x] = UInt8((7 * x + 13 * y) % 251) }
      }
      let size = pipeline.resizedSize(width: c.width, height: c.height, shortSide: c.short_side)
      #expect([size.height, size.width] == c.size, "\(c.width)×\(c.height) at \(c.short_side)")
      let masks = InstanceMasks.transformed([Image(width: c.width, height: c.height, channels: 1, pixels: pattern)],
                                            resizedHeight: size.height, resizedWidth: size.width, flip: false)
      #expect(SHA256.hexDigest(of: masks.masks[0]) == c.sha256, "\(c.width)×\(c.height) at \(c.short_side)")
    }
  }

  @Test func loadDrawsTheDetectionDecisionsAndCollatePadsMasksPerImage() throws {
    let data = try dataset(.training)
    let pipeline = DetectionPipeline(shortSides: [24, 40, 64], maxSize: 100, flipProbability: 0.5)
    var samples: [InstanceSample] = []
    for index in 0..<data.count {
      let sample = try data.load(at: index, pipeline: pipeline, seed: 11, position: 100 + index)
      let record = data.samples[index]
      let image = try Image(contentsOf: record.image, mode: .rgb)
      let expected = pipeline.apply(image: image, objects: record.objects,
                                    masks: try record.bitmaps(path: data.annotationFile.path),
                                    cocoImageID: record.imageID,
                                    decisions: pipeline.decisions(seed: 11, position: 100 + index))
      #expect(sample.masks == expected.masks)
      #expect(sample.detection.boxes.scalars == expected.detection.boxes.scalars)
      #expect(sample.detection.isFlipped == expected.detection.isFlipped)
      samples.append(sample)
    }
    let batch = collateInstanceSegmentationBatch(samples, padDivisor: 32)
    #expect(batch.cocoImageIDs == data.samples.map(\.imageID))
    #expect(batch.detection.images.shape[0] == samples.count)
    for (sample, masks) in zip(samples, batch.masks) {
      // Each image's masks are padded to its own pad_shape, which the batch's H × W may exceed.
      #expect(masks.height == DetectionPipeline.paddedSize(sample.detection.height, divisor: 32))
      #expect(masks.width == DetectionPipeline.paddedSize(sample.detection.width, divisor: 32))
      #expect(masks.count == sample.masks.count)
      for (mask, original) in zip(masks.masks, sample.masks.masks) {
        #expect(mask.reduce(0) { $0 + Int($1) } == original.reduce(0) { $0 + Int($1) })
        #expect(Array(mask[0..<sample.masks.width]) == Array(original[0..<sample.masks.width]))
      }
    }
  }

  @Test func paddingPlacesMasksTopLeftOnZeros() {
    let masks = InstanceMasks(height: 2, width: 3, masks: [[1, 0, 1, 0, 1, 1]])
    #expect(masks.padded(toHeight: 3, width: 4).masks == [[1, 0, 1, 0, 0, 1, 1, 0, 0, 0, 0, 0]])
    #expect(masks.paddedToMultiple(of: 2).masks == [[1, 0, 1, 0, 0, 1, 1, 0]])
    #expect(masks.padded(toHeight: 2, width: 3) == masks)
  }

  @Test func presetsAreTheMaskRCNNConfig() {
    #expect(DetectionPipeline.mmdetCOCOInstanceTrain.shortSides == [640, 672, 704, 736, 768, 800])
    #expect(DetectionPipeline.mmdetCOCOInstanceTrain.maxSize == 1333)
    #expect(DetectionPipeline.mmdetCOCOInstanceTrain.flipProbability == 0.5)
    #expect(DetectionPipeline.mmdetCOCOInstanceTest.shortSides == [800])
    #expect(DetectionPipeline.mmdetCOCOInstanceTest.flipProbability == 0)
  }
}
