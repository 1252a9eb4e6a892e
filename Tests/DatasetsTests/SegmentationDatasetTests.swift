// SegmentationDataset on tiny trees written here: VOC2012 with mmseg's aug layout, a `data make-scenes`-style
// devkit, Cityscapes with train ids and with raw label ids; and each bad input names its file.
import Foundation
import Testing
import Datasets

private func temporaryDirectory() throws -> URL {
  let url = FileManager.default.temporaryDirectory.appendingPathComponent("seg-\(UUID().uuidString)")
  try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
  return url
}

private func write(_ text: String, _ url: URL) throws {
  try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
  try Data(text.utf8).write(to: url)
}

private func makeDirectory(_ url: URL) throws {
  try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
}

private func rgb(_ width: Int, _ height: Int, _ seed: UInt8) -> Image {
  Image(width: width, height: height, channels: 3, pixels: (0..<(width * height * 3)).map { UInt8(truncatingIfNeeded: $0 * 7 + Int(seed)) })
}

private func mask(_ width: Int, _ height: Int, _ values: [UInt8]) -> Image {
  Image(width: width, height: height, channels: 1, pixels: (0..<(width * height)).map { values[$0 % values.count] })
}

/// VOC2012 with train (a, b), val (c), aug (d) lists; masks palette PNGs, aug masks gray PNGs.
private func makeVOC2012(_ root: URL) throws {
  for folder in ["JPEGImages", "SegmentationClass", "SegmentationClassAug", "ImageSets/Segmentation"] {
    try makeDirectory(root.appendingPathComponent(folder))
  }
  for (index, id) in ["a", "b", "c", "d"].enumerated() {
    try rgb(6, 4, UInt8(index)).write(to: root.appendingPathComponent("JPEGImages/\(id).jpg"))
  }
  for id in ["a", "b", "c"] {
    try mask(6, 4, [0, 15, 255]).writePalettePNG(to: root.appendingPathComponent("SegmentationClass/\(id).png"))
  }
  try mask(6, 4, [20, 3]).write(to: root.appendingPathComponent("SegmentationClassAug/d.png"))
  try write("a\nb\n", root.appendingPathComponent("ImageSets/Segmentation/train.txt"))
  try write("c\n", root.appendingPathComponent("ImageSets/Segmentation/val.txt"))
  try write("d\n", root.appendingPathComponent("ImageSets/Segmentation/aug.txt"))
}

@Suite struct SegmentationDatasetTests {
  @Test func vocTrainPlusAugConcatenatesListsWithTheirMaskFolders() throws {
    let root = try temporaryDirectory().appendingPathComponent("VOC2012")
    try makeVOC2012(root)
    let dataset = try SegmentationDataset.open(root: root, split: "train+aug")
    #expect(dataset.layout == .voc2012)
    #expect(dataset.classNames.count == 21 && dataset.classNames[15] == "person")
    #expect(dataset.ids == ["a", "b", "d"])
    #expect(dataset.files[2].label.path.hasSuffix("SegmentationClassAug/d.png"))
    let first = try dataset.sample(at: 0)
    #expect(first.image.channels == 3 && first.label.channels == 1)
    #expect(first.label.pixels == mask(6, 4, [0, 15, 255]).pixels)
    #expect(try dataset.sample(at: 2).label.pixels == mask(6, 4, [20, 3]).pixels)
    #expect(try SegmentationDataset.open(root: root, split: "val").count == 1)
    // The fingerprint follows the list and the file sizes.
    let again = try SegmentationDataset.open(root: root, split: "train+aug")
    #expect(again.fingerprint == dataset.fingerprint && dataset.fingerprint.count == 64)
    #expect(try SegmentationDataset.open(root: root, split: "train").fingerprint != dataset.fingerprint)
    try write("b\na\n", root.appendingPathComponent("ImageSets/Segmentation/train.txt"))
    #expect(try SegmentationDataset.open(root: root, split: "train+aug").fingerprint != dataset.fingerprint)
  }

  @Test func sceneDevkitTakesClassesFromItsCOCOFile() throws {
    let out = try temporaryDirectory()
    let root = out.appendingPathComponent("VOCdevkit/VOC2007")
    for folder in ["JPEGImages", "SegmentationClass", "ImageSets/Segmentation", "ImageSets/Main"] {
      try makeDirectory(root.appendingPathComponent(folder))
    }
    try rgb(5, 5, 1).write(to: root.appendingPathComponent("JPEGImages/000001.jpg"))
    try mask(5, 5, [0, 2, 1, 255]).writePalettePNG(to: root.appendingPathComponent("SegmentationClass/000001.png"))
    try write("000001\n", root.appendingPathComponent("ImageSets/Segmentation/train.txt"))
    for name in ["zebra", "apple"] { try write("000001 1\n", root.appendingPathComponent("ImageSets/Main/\(name)_train.txt")) }
    try write(#"{"images": [], "annotations": [], "categories": [{"id": 2, "name": "apple"}, {"id": 1, "name": "zebra"}]}"#,
              out.appendingPathComponent("annotations/instances_trainval.json"))
    let dataset = try SegmentationDataset.open(root: root, split: "train")
    #expect(dataset.layout == .vocDevkit)
    #expect(dataset.classNames == ["background", "zebra", "apple"])
    #expect(try dataset.sample(at: 0).label.pixels.max() == 255)
  }

  @Test func cityscapesReadsTrainIDsOrMapsLabelIDs() throws {
    let root = try temporaryDirectory()
    try rgb(4, 2, 0).write(to: root.appendingPathComponent("leftImg8bit/val/ulm/ulm_1_leftImg8bit.png").creatingFolder())
    try rgb(4, 2, 1).write(to: root.appendingPathComponent("leftImg8bit/val/aachen/aachen_2_leftImg8bit.png").creatingFolder())
    try mask(4, 2, [0, 18, 255]).write(to: root.appendingPathComponent("gtFine/val/ulm/ulm_1_gtFine_labelTrainIds.png").creatingFolder())
    try mask(4, 2, [7, 26, 33, 9, 0, 40]).write(to: root.appendingPathComponent("gtFine/val/aachen/aachen_2_gtFine_labelIds.png").creatingFolder())
    let dataset = try SegmentationDataset.open(root: root, split: "val")
    #expect(dataset.layout == .cityscapes && dataset.classNames.count == 19)
    #expect(dataset.ids == ["aachen/aachen_2", "ulm/ulm_1"])  // sorted by city, as mmcv.scandir sorted
    #expect(try dataset.sample(at: 0).label.pixels == [0, 13, 18, 255, 255, 255, 0, 13])
    #expect(try dataset.sample(at: 1).label.pixels == mask(4, 2, [0, 18, 255]).pixels)
  }

  @Test func badInputNamesTheFile() throws {
    let root = try temporaryDirectory().appendingPathComponent("VOC2012")
    try makeVOC2012(root)
    // Missing list.
    #expect(throws: DatasetError.self) { try SegmentationDataset.open(root: root, split: "trainval") }
    // A listed image without its mask.
    try write("a\nzz\n", root.appendingPathComponent("ImageSets/Segmentation/val.txt"))
    do {
      _ = try SegmentationDataset.open(root: root, split: "val")
      Issue.record("a missing image must throw")
    } catch let error as DatasetError {
      #expect("\(error)".contains("JPEGImages/zz.jpg"))
    }
    // A class index past the classes, and a mask of another size.
    try mask(6, 4, [0, 21]).writePalettePNG(to: root.appendingPathComponent("SegmentationClass/a.png"))
    try mask(5, 4, [0]).writePalettePNG(to: root.appendingPathComponent("SegmentationClass/b.png"))
    let dataset = try SegmentationDataset.open(root: root, split: "train")
    #expect(throws: DatasetError.labelOutOfRange(
      path: root.appendingPathComponent("SegmentationClass/a.png").path, value: 21, classCount: 21,
      hint: "VOC masks hold 0 (background) … 20 and 255 (void); is this mask from another dataset?")) {
      try dataset.sample(at: 0)
    }
    do {
      _ = try dataset.sample(at: 1)
      Issue.record("a mask of another size must throw")
    } catch let error as DatasetError {
      #expect("\(error)".contains("SegmentationClass/b.png is 5×4") && "\(error)".contains("6×4"))
    }
    // An RGB PNG where indices are expected.
    try rgb(6, 4, 0).write(to: root.appendingPathComponent("SegmentationClass/a.png"))
    do {
      _ = try dataset.sample(at: 0)
      Issue.record("an RGB mask must throw")
    } catch {
      #expect("\(error)".contains("SegmentationClass/a.png") && "\(error)".contains("RGB PNG"))
    }
    // Not a dataset at all.
    #expect(throws: DatasetError.self) { try SegmentationDataset.open(root: root.deletingLastPathComponent(), split: "train") }
  }
}

private extension URL {
  func creatingFolder() throws -> URL {
    try FileManager.default.createDirectory(at: deletingLastPathComponent(), withIntermediateDirectories: true)
    return self
  }
}
