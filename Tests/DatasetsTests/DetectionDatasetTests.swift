// DetectionDataset on tiny generated devkits. The expected boxes and counts are worked out by hand from mmdet 2.x's
// XMLDataset (int(float(v)) − 1 on all four coordinates; unknown classes skipped; images without objects of a listed
// class and images under 32 px dropped in training) and detectron2's load_voc_instances (float(v), xmin/ymin − 1;
// unknown classes raise). The conversion itself is also checked against the Python references in
// DetectionPipelineTests.
import Foundation
import Testing
import Datasets
import Tensors
import TestSupport

/// A devkit year folder under a fresh temporary directory, written file by file.
private struct TinyDevkit {
  let root: URL

  init(_ name: String, in parent: URL) throws {
    root = parent.appendingPathComponent(name)
    for folder in ["Annotations", "ImageSets/Main", "JPEGImages"] {
      try FileManager.default.createDirectory(at: root.appendingPathComponent(folder), withIntermediateDirectories: true)
    }
  }

  /// (name, xmin, ymin, xmax, ymax, difficult)
  typealias Object = (String, String, String, String, String, Bool)

  func add(_ id: String, width: Int, height: Int, objects: [Object], image: Image? = nil) throws {
    var xml = "<annotation><filename>\(id).jpg</filename><size><width>\(width)</width><height>\(height)</height>"
      + "<depth>3</depth></size>"
    for (name, x1, y1, x2, y2, difficult) in objects {
      xml += "<object><name>\(name)</name><difficult>\(difficult ? 1 : 0)</difficult><bndbox><xmin>\(x1)</xmin>"
        + "<ymin>\(y1)</ymin><xmax>\(x2)</xmax><ymax>\(y2)</ymax></bndbox></object>"
    }
    try writeAnnotation(id, xml + "</annotation>")
    let pixels = image ?? Image(width: width, height: height, channels: 3,
                                pixels: (0..<(width * height * 3)).map { UInt8(truncatingIfNeeded: $0 * 7) })
    try pixels.write(to: root.appendingPathComponent("JPEGImages/\(id).jpg"), format: .png)
  }

  func writeAnnotation(_ id: String, _ text: String) throws {
    try Data(text.utf8).write(to: root.appendingPathComponent("Annotations/\(id).xml"))
  }

  func list(_ split: String, _ ids: [String]) throws {
    try Data(ids.map { $0 + "\n" }.joined().utf8).write(to: root.appendingPathComponent("ImageSets/Main/\(split).txt"))
  }
}

private func temporaryFolder() throws -> URL {
  let url = FileManager.default.temporaryDirectory.appendingPathComponent("simsiam-detection-\(UUID().uuidString)")
  try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
  return url
}

/// VOC2007-like and VOC2012-like devkits with every kind of bad item in trainval:
///   a1: dog (48 240 195 371), cat difficult (10.7 20 30 40.9)          kept
///   a2: only a unicorn                                                  no object of a listed class
///   a3: zero-width bird (5 5 5 9), person crossing the border (1 1 70 20) in a 64×40 image
///   a4: a 20×40 image with one dog                                      under 32 px
///   b1: train (1 1 100 80)                                              kept
private func makeDevkits() throws -> (URL, TinyDevkit, TinyDevkit) {
  let parent = try temporaryFolder()
  let a = try TinyDevkit("VOC2007", in: parent), b = try TinyDevkit("VOC2012", in: parent)
  try a.add("a1", width: 300, height: 400, objects: [("dog", "48", "240", "195", "371", false),
                                                     ("cat", "10.7", "20", "30", "40.9", true)])
  try a.add("a2", width: 64, height: 64, objects: [("unicorn", "1", "1", "10", "10", false)])
  try a.add("a3", width: 64, height: 40, objects: [("bird", "5", "5", "5", "9", false),
                                                   ("person", "1", "1", "70", "20", false)])
  try a.add("a4", width: 20, height: 40, objects: [("dog", "2", "2", "10", "10", false)])
  try a.list("trainval", ["a1", "a2", "a3", "a4"])
  try b.add("b1", width: 120, height: 90, objects: [("train", "1", "1", "100", "80", false)])
  try b.list("trainval", ["b1"])
  return (parent, a, b)
}

@Suite struct DetectionDatasetTests {
  let classes = DetectionDataset.vocClasses

  func index(_ name: String) -> Int { classes.firstIndex(of: name)! }

  @Test func vocClassesAreMMDetsOrder() {
    #expect(classes.count == 20 && classes.first == "aeroplane" && classes.last == "tvmonitor")
    #expect(classes == classes.sorted())
  }

  @Test func trainingReadsBothDevkitsAndCountsWhatItDrops() throws {
    let (parent, a, b) = try makeDevkits()
    defer { try? FileManager.default.removeItem(at: parent) }
    let dataset = try DetectionDataset(devkits: [a.root, b.root], split: "trainval", classes: classes)
    #expect(dataset.samples.map(\.imageID) == ["a1", "a3", "b1"])
    var expected = DetectionLoadCounts()
    expected.listedImages = 5
    expected.imagesWithoutObjects = 1
    expected.imagesTooSmall = 1
    expected.objects = 5
    expected.difficultObjects = 1
    expected.unknownClassObjects = 1
    expected.zeroAreaBoxes = 1
    expected.boxesCrossingBorder = 1
    #expect(dataset.counts == expected, "\(dataset.counts)")
    #expect(dataset.counts.description.contains("1 without objects"))

    // mmdet: int(float(v)) − 1 on all four; the difficult cat is flagged.
    let a1 = dataset.samples[0].objects
    #expect(a1 == [DetectionObject(x1: 47, y1: 239, x2: 194, y2: 370, classIndex: index("dog"), isDifficult: false),
                   DetectionObject(x1: 9, y1: 19, x2: 29, y2: 39, classIndex: index("cat"), isDifficult: true)])
    #expect(dataset.samples[1].objects[0].hasZeroArea)
    #expect(dataset.samples[1].objects[1] == DetectionObject(x1: 0, y1: 0, x2: 69, y2: 19, classIndex: index("person"),
                                                             isDifficult: false))
    #expect(dataset.samples[2].devkit == b.root && dataset.samples[2].width == 120)
    // Difficult objects: no training target by default (mmdet), targets with .keep (detectron2); always in the GT.
    #expect(dataset.targets(of: dataset.samples[0]).map(\.classIndex) == [index("dog")])
    #expect(dataset.groundTruth[0].map(\.isDifficult) == [false, true])
    let keeping = try DetectionDataset(devkits: [a.root, b.root], split: "trainval", classes: classes, difficult: .keep)
    #expect(keeping.targets(of: keeping.samples[0]).count == 2)
    #expect(keeping.fingerprint != dataset.fingerprint)
  }

  @Test func evaluationKeepsEveryImage() throws {
    let (parent, a, _) = try makeDevkits()
    defer { try? FileManager.default.removeItem(at: parent) }
    let dataset = try DetectionDataset(devkits: [a.root], split: "trainval", classes: classes, use: .evaluation)
    #expect(dataset.samples.map(\.imageID) == ["a1", "a2", "a3", "a4"])
    #expect(dataset.groundTruth.map(\.count) == [2, 0, 2, 1])
    #expect(dataset.counts.imagesWithoutObjects == 0 && dataset.counts.imagesTooSmall == 0)
    #expect(dataset.counts.unknownClassObjects == 1)
  }

  @Test func detectron2ConventionKeepsXmaxAndRefusesUnknownClasses() throws {
    let (parent, a, b) = try makeDevkits()
    defer { try? FileManager.default.removeItem(at: parent) }
    let dataset = try DetectionDataset(devkits: [b.root], split: "trainval", classes: classes, difficult: .keep,
                                       boxConvention: .detectron2)
    #expect(dataset.samples[0].objects[0] == DetectionObject(x1: 0, y1: 0, x2: 100, y2: 80, classIndex: index("train"),
                                                             isDifficult: false))
    do {
      _ = try DetectionDataset(devkits: [a.root], split: "trainval", classes: classes, boxConvention: .detectron2)
      Issue.record("an unknown class was accepted")
    } catch let error as DatasetError {
      #expect(error.description.contains("a2.xml") && error.description.contains("unicorn"), "\(error)")
    }
  }

  @Test func brokenFilesAreRefusedNamingTheFile() throws {
    let parent = try temporaryFolder()
    defer { try? FileManager.default.removeItem(at: parent) }
    let devkit = try TinyDevkit("VOC2007", in: parent)
    try devkit.add("good", width: 64, height: 64, objects: [("dog", "1", "1", "10", "10", false)])
    try devkit.add("inverted", width: 64, height: 64, objects: [("dog", "20", "1", "10", "10", false)])
    try devkit.add("truncated", width: 64, height: 64, objects: [])
    try devkit.writeAnnotation("truncated", "<annotation><filename>t.jpg</filename><size><width>64</wid")
    try devkit.add("noimage", width: 64, height: 64, objects: [("dog", "1", "1", "10", "10", false)])
    try FileManager.default.removeItem(at: devkit.root.appendingPathComponent("JPEGImages/noimage.jpg"))
    try devkit.list("inverted", ["good", "inverted"])
    try devkit.list("truncated", ["good", "truncated"])
    try devkit.list("noimage", ["good", "noimage"])
    try devkit.list("empty", [])
    try devkit.list("unicorns", ["good"])
    func error(_ split: String, classes: [String]? = nil) -> DatasetError? {
      do {
        _ = try DetectionDataset(devkits: [devkit.root], split: split, classes: classes ?? self.classes)
        return nil
      } catch { return error as? DatasetError }
    }
    let inverted = try #require(error("inverted"))
    #expect(inverted.description.contains("inverted.xml") && inverted.description.contains("xmin ≤ xmax"))
    let truncated = try #require(error("truncated"))
    guard case .malformedXML(let path, _) = truncated else { Issue.record("\(truncated)"); return }
    #expect(path.hasSuffix("truncated.xml"))
    let missing = try #require(error("noimage"))
    guard case .missingFile(let imagePath, _) = missing else { Issue.record("\(missing)"); return }
    #expect(imagePath.hasSuffix("JPEGImages/noimage.jpg"))
    let empty = try #require(error("empty"))
    guard case .noImages = empty else { Issue.record("\(empty)"); return }
    // No image holds an object of these classes: refused with the counts in the hint.
    let unknown = try #require(error("unicorns", classes: ["unicorn"]))
    #expect(unknown.description.contains("1 of unknown classes skipped"), "\(unknown)")
  }

  @Test func dataCheckReportsWhatADetectionRunSkipsKeepsAndRefuses() throws {
    let parent = try temporaryFolder()
    defer { try? FileManager.default.removeItem(at: parent) }
    let devkit = try TinyDevkit("VOC2007", in: parent)
    try devkit.add("zero", width: 64, height: 40, objects: [("bird", "5", "5", "5", "9", false),
                                                            ("person", "1", "1", "70", "20", false)])
    try devkit.add("none", width: 64, height: 64, objects: [])
    try devkit.add("inverted", width: 64, height: 64, objects: [("dog", "20", "1", "10", "10", false)])
    try devkit.list("trainval", ["zero", "none", "inverted"])
    let check = try DatasetCheck.run(data: devkit.root, format: .voc)
    let counts = Dictionary(uniqueKeysWithValues: check.counts.map { ($0.name, $0.value) })
    #expect(counts["images without objects (dropped from detection training)"] == 1)
    #expect(counts["zero-area boxes (mmdet convention; kept)"] == 1)
    #expect(counts["boxes crossing the image border (clipped in training)"] == 1)
    #expect(check.unreadable.map(\.path) == ["Annotations/inverted.xml"], "\(check.unreadable)")
    #expect(!check.isComplete)
  }

  @Test func loadRunsThePipelineOnTheDecodedImageWithKeyedDraws() throws {
    let (parent, a, b) = try makeDevkits()
    defer { try? FileManager.default.removeItem(at: parent) }
    let dataset = try DetectionDataset(devkits: [a.root, b.root], split: "trainval", classes: classes)
    let pipeline = DetectionPipeline(shortSides: [40, 48, 56, 64], maxSize: 100, flipProbability: 0.5, padDivisor: 8)
    let first = try dataset.load(at: 0, pipeline: pipeline, seed: 3, position: 17)
    let again = try dataset.load(at: 0, pipeline: pipeline, seed: 3, position: 17)
    #expect(first.image == again.image && first.boxes == again.boxes)
    // The same as the pipeline applied by hand with the drawn decisions to the decoded image and its targets.
    let decoded = try Image(contentsOf: dataset.samples[0].image, mode: .rgb)
    let decisions = pipeline.decisions(seed: 3, position: 17)
    let byHand = pipeline.apply(image: decoded, objects: dataset.targets(of: dataset.samples[0]), imageID: "a1",
                                decisions: decisions)
    #expect(first.image == byHand.image && first.boxes == byHand.boxes && first.labels == [index("dog")])
    #expect(first.isFlipped == decisions.flip && first.imageID == "a1")
    // Different positions draw different scales somewhere.
    let sizes = try (0..<12).map { try dataset.load(at: 2, pipeline: pipeline, seed: 3, position: $0).height }
    #expect(Set(sizes).count > 1, "\(sizes)")
  }

  @Test func sceneDevkitReadsWithItsOwnClasses() throws {
    let parent = try temporaryFolder()
    defer { try? FileManager.default.removeItem(at: parent) }
    let items = SceneItems.syntheticForTests()
    let summary = try SceneSet.write(to: parent, seed: 5, size: SceneSetSize(trainval: 4, test: 4), trainItems: items,
                                     testItems: items)
    let classes = try DetectionDataset.classes(ofDevkit: summary.vocRoot)
    #expect(classes == SceneItems.fashionMNISTClassNames)
    let test = try DetectionDataset(devkits: [summary.vocRoot], split: "test", classes: classes, use: .evaluation)
    #expect(test.count == 4 && test.counts.unknownClassObjects == 0)
    // The scene writer's boxes are 0-based pixel indices + 1, so mmdet's −1 gives the pixel indices back.
    let scene = SceneSet.scene(number: 4, seed: 5, size: SceneSetSize(trainval: 4, test: 4), trainItems: items,
                               testItems: items)
    #expect(test.groundTruth[0] == scene.objects.map {
      DetectionObject(x1: Float($0.xmin), y1: Float($0.ymin), x2: Float($0.xmax), y2: Float($0.ymax),
                      classIndex: $0.classIndex, isDifficult: $0.isDifficult)
    })
    let (vocParent, voc, _) = try makeDevkits()
    defer { try? FileManager.default.removeItem(at: vocParent) }
    #expect(try DetectionDataset.classes(ofDevkit: voc.root) == DetectionDataset.vocClasses)
  }
}
