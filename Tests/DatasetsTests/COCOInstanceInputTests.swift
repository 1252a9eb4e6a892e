// COCOInstanceDataset on bad input (each error names the json or image and the entry) and on the COCO json that
// `data make-scenes` writes (its RLE masks decode back to the scenes' object masks).
import Foundation
import Testing
@testable import Datasets

/// A temporary COCO folder: images/a.png (8 × 40 wide, 36 high), annotations/instances_bad.json from `json`.
fileprivate struct BadCOCOFolder {
  let root: URL
  var annotationFile: URL { root.appendingPathComponent("annotations/instances_bad.json") }
  var imageDirectory: URL { root.appendingPathComponent("images") }

  init(annotations: String, images: String? = nil, categories: String? = nil) throws {
    root = FileManager.default.temporaryDirectory.appendingPathComponent("simsiam-coco-bad-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: root.appendingPathComponent("annotations"),
                                            withIntermediateDirectories: true)
    try FileManager.default.createDirectory(at: imageDirectory, withIntermediateDirectories: true)
    try Image(width: 40, height: 36, channels: 3, value: 90).write(to: imageDirectory.appendingPathComponent("a.png"))
    let json = """
      {"images": \(images ?? #"[{"id": 1, "file_name": "a.png", "width": 40, "height": 36}]"#),
       "categories": \(categories ?? #"[{"id": 5, "name": "thing"}]"#),
       "annotations": [\(annotations)]}
      """
    try json.write(to: annotationFile, atomically: true, encoding: .utf8)
  }

  func remove() { try? FileManager.default.removeItem(at: root) }

  /// The error reading the folder (nil when it reads).
  func error(use: DetectionDatasetUse = .training) -> DatasetError? {
    do {
      _ = try COCOInstanceDataset(annotationFile: annotationFile, imageDirectory: imageDirectory, use: use)
      return nil
    } catch {
      return error as? DatasetError
    }
  }
}

private let polygon = #""segmentation": [[2, 2, 20, 2, 20, 20, 2, 20]]"#
private func annotation(id: Int = 1, image: Int = 1, category: Int = 5, bbox: String = "[2, 2, 18, 18]",
                        segmentation: String = polygon) -> String {
  #"{"id": \#(id), "image_id": \#(image), "category_id": \#(category), "bbox": \#(bbox), "area": 324, "iscrowd": 0"#
    + (segmentation.isEmpty ? "" : ", " + segmentation) + "}"
}

@Suite struct COCOInstanceInputTests {
  /// Runs `check` on the error of a folder built from the arguments.
  fileprivate func expectError(annotations: String, images: String? = nil, categories: String? = nil,
                   _ check: (DatasetError, BadCOCOFolder) -> Bool) throws {
    let folder = try BadCOCOFolder(annotations: annotations, images: images, categories: categories)
    defer { folder.remove() }
    let error = try #require(folder.error())
    #expect(check(error, folder), "\(error)")
  }

  @Test func aGoodFolderReads() throws {
    let folder = try BadCOCOFolder(annotations: annotation())
    defer { folder.remove() }
    #expect(folder.error() == nil)
  }

  @Test func refusedAnnotationsNameTheFileAndTheEntry() throws {
    func field(_ expected: String) -> (DatasetError, BadCOCOFolder) -> Bool {
      { error, folder in
        guard case let .invalidField(path, field, _, _) = error else { return false }
        return path == folder.annotationFile.path && field == expected
      }
    }
    try expectError(annotations: annotation(category: 6), field("annotations[id=1].category_id"))
    try expectError(annotations: annotation(image: 2), field("annotations[id=1].image_id"))
    try expectError(annotations: annotation() + ", " + annotation(), field("annotations[id=1]"))
    try expectError(annotations: annotation(segmentation: ""), field("annotations[id=1].segmentation"))
    try expectError(annotations: annotation(segmentation: #""segmentation": []"#),
                    field("annotations[id=1].segmentation"))
    try expectError(annotations: annotation(segmentation: #""segmentation": [[1, 1, 5, 5]]"#),
                    field("annotations[id=1].segmentation"))
    try expectError(annotations: annotation(segmentation: #""segmentation": {"size": [36, 41], "counts": [1440]}"#),
                    field("annotations[id=1].segmentation.size"))
    try expectError(annotations: annotation(segmentation: #""segmentation": {"size": [36, 40], "counts": [100, 5]}"#),
                    field("annotations[id=1].segmentation.counts"))
    try expectError(annotations: annotation(),
                    images: #"[{"id": 1, "file_name": "a.png", "width": 0, "height": 36}]"#,
                    field("images[id=1].width/height"))
    try expectError(annotations: annotation(),
                    images: #"[{"id": 1, "file_name": "a.png", "width": 40, "height": 36}, "#
                      + #"{"id": 1, "file_name": "a.png", "width": 40, "height": 36}]"#,
                    field("images[id=1]"))
    try expectError(annotations: annotation(), categories: #"[{"id": 5, "name": "a"}, {"id": 5, "name": "b"}]"#,
                    field("categories[id=5]"))
  }

  @Test func crowdsAndSkippedAnnotationsNeedNoSegmentation() throws {
    // mmdet never rasterises a crowd's or a skipped annotation's mask.
    let crowd = #"{"id": 2, "image_id": 1, "category_id": 5, "bbox": [1, 1, 5, 5], "area": 25, "iscrowd": 1}"#
    let tiny = annotation(id: 3, bbox: "[1, 1, 0.5, 5]", segmentation: #""segmentation": []"#)
    let folder = try BadCOCOFolder(annotations: [annotation(), crowd, tiny].joined(separator: ", "))
    defer { folder.remove() }
    let data = try COCOInstanceDataset(annotationFile: folder.annotationFile, imageDirectory: folder.imageDirectory,
                                       use: .training)
    #expect(data.samples[0].objects.count == 1 && data.samples[0].crowdBoxes == [1, 1, 6, 6])
    #expect(data.counts.degenerateAnnotations == 1)
  }

  @Test func aMissingImageFileIsNamed() throws {
    try expectError(annotations: annotation(),
                    images: #"[{"id": 1, "file_name": "missing.png", "width": 40, "height": 36}]"#) { error, folder in
      guard case let .missingFile(path, hint) = error else { return false }
      return path == folder.imageDirectory.appendingPathComponent("missing.png").path
        && hint.contains(folder.annotationFile.path)
    }
  }

  @Test func anImageOfAnotherSizeThanTheJSONIsRefusedAtLoad() throws {
    let folder = try BadCOCOFolder(annotations: annotation(),
                                   images: #"[{"id": 1, "file_name": "a.png", "width": 40, "height": 35}]"#)
    defer { folder.remove() }
    let data = try COCOInstanceDataset(annotationFile: folder.annotationFile, imageDirectory: folder.imageDirectory,
                                       use: .training)
    let pipeline = DetectionPipeline(shortSides: [32], maxSize: 64, flipProbability: 0)
    #expect {
      _ = try data.load(at: 0, pipeline: pipeline, seed: 1)
    } throws: { error in
      guard case let .invalidField(path, field, value, expected) = error as? DatasetError else { return false }
      return path == folder.annotationFile.path && field == "images[id=1].width/height" && value == "40×35"
        && expected.contains("a.png")
    }
  }

  @Test func noTrainingImageLeftIsAnError() throws {
    let folder = try BadCOCOFolder(annotations: "")
    defer { folder.remove() }
    guard case .noImages = try #require(folder.error()) else {
      Issue.record("expected noImages")
      return
    }
    #expect(folder.error(use: .evaluation) == nil)
  }

  @Test func theScenesJSONReadsAndItsMasksRoundTrip() throws {
    let fixture = try SceneFixture.shared.get()
    for (split, offset) in [("trainval", 0), ("test", fixture.size.trainval)] {
      let file = fixture.directory.appendingPathComponent("annotations/instances_\(split).json")
      let data = try COCOInstanceDataset(annotationFile: file, use: .evaluation)
      #expect(data.categoryIDs == Array(1...fixture.classNames.count))
      #expect(data.classNames == fixture.classNames)
      #expect(data.count == (split == "trainval" ? fixture.size.trainval : fixture.size.test))
      for (index, record) in data.samples.enumerated().prefix(12) {
        let scene = fixture.scene(offset + index)
        #expect(record.imageID == offset + index + 1)
        let kept = scene.objects.filter { $0.area > 0 }
        #expect(record.objects.map(\.classIndex) == kept.map(\.classIndex))
        // bbox [xmin, ymin, xmax − xmin + 1, …] → [xmin, ymin, xmax + 1, ymax + 1].
        #expect(record.objects.map { [$0.x1, $0.y1, $0.x2, $0.y2] }
                  == kept.map { [Float($0.xmin), Float($0.ymin), Float($0.xmax + 1), Float($0.ymax + 1)] })
        let bitmaps = try record.bitmaps(path: file.path)
        #expect(bitmaps.map { COCORLE(mask: $0) } == kept.map(\.mask))
      }
      let training = try COCOInstanceDataset(annotationFile: file, use: .training)
      let sample = try training.load(at: 0, pipeline: DetectionPipeline(shortSides: [48], maxSize: 200,
                                                                        flipProbability: 1), seed: 3)
      #expect(sample.masks.height == sample.detection.height && sample.masks.width == sample.detection.width)
      #expect(sample.masks.count == sample.detection.labels.count)
    }
  }
}
