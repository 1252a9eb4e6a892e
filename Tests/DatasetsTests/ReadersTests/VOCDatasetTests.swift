import Foundation
import Testing
import Tensors
@testable import Datasets

@Suite struct VOCDatasetTests {
  func fixture() throws -> VOCDataset { try VOCDataset(root: try ReaderFixtures.url("VOC2007")) }

  @Test func readsSplitsAndSegmentationPairs() throws {
    let voc = try fixture()
    #expect(try voc.mainSplits() == ["test", "train", "trainval", "val"])
    #expect(try voc.imageIDs(split: "trainval") == ["000001", "000002"])
    #expect(voc.imageURL(id: "000002").path.hasSuffix("VOC2007/JPEGImages/000002.jpg"))
    let pairs = try voc.segmentationPairs(split: "train")
    #expect(pairs.map(\.id) == ["000001"])
    #expect(pairs[0].mask.path.hasSuffix("VOC2007/SegmentationClass/000001.png"))
    #expect(try voc.segmentationSplits() == ["train", "val"])
  }

  /// PROTOCOLS §2.1 by hand. Fixture flags (trainval): cat 000001 1, 000002 -1; dog 000001 0, 000002 1;
  /// person 000002 0 and no line for 000001. Re-encoded 1→1, −1→0, 0→−1, missing → −1.
  /// extra_cat_trainval.txt has two underscores and is not a class list.
  @Test func labelMatrixFollowsCreateVOCDataFiles() throws {
    let voc = try fixture()
    let trainval = try voc.classificationLabels(split: "trainval")
    #expect(trainval.classes == ["cat", "dog", "person"])
    #expect(trainval.imageIDs == ["000001", "000002"])
    #expect(trainval.labels == [1, -1, -1,
                                0, 1, -1])
    #expect(trainval[1, 1] == 1)
    #expect(trainval.positiveCounts == [1, 1, 0])
    let test = try voc.classificationLabels(split: "test")  // 000003: cat -1, dog -1, person 1
    #expect(test.labels == [0, 0, 1])
    let splits = try voc.svmSplits()
    #expect(splits.extractionList == ["000001.jpg", "000002.jpg", "000003.jpg"])
    #expect(splits.splitAt == 2)
    #expect(splits.train == trainval && splits.test == test)
  }

  /// Classes follow the sorted class-file names, as `sorted(glob(...))` does: "a2_x.txt" < "a_x.txt"
  /// because '2' < '_', although the class name "a" < "a2". Images are sorted and unioned over the class files.
  @Test func classesFollowSortedFileNames() throws {
    let folder = try ReaderFixtures.temporaryFolder()
    defer { try? FileManager.default.removeItem(at: folder) }
    try ReaderFixtures.write("b 1\n\n", to: "ImageSets/Main/a_x.txt", in: folder)
    try ReaderFixtures.write("c  0\na -1\n", to: "ImageSets/Main/a2_x.txt", in: folder)
    let matrix = try VOCDataset(root: folder).classificationLabels(split: "x")
    #expect(matrix.classes == ["a2", "a"])
    #expect(matrix.imageIDs == ["a", "b", "c"])
    #expect(matrix.labels == [0, -1,
                              -1, 1,
                              -1, -1])
  }

  @Test func malformedClassListsNameTheLine() throws {
    let folder = try ReaderFixtures.temporaryFolder()
    defer { try? FileManager.default.removeItem(at: folder) }
    try ReaderFixtures.write("000001 1\n000002 2\n", to: "ImageSets/Main/cat_trainval.txt", in: folder)
    #expect {
      try VOCDataset(root: folder).classificationLabels(split: "trainval")
    } throws: { error in
      guard case let .malformedLine(path, line, _, _) = error as? DatasetError else { return false }
      return line == 2 && path.hasSuffix("cat_trainval.txt")
    }
    #expect(throws: DatasetError.self) { try VOCDataset(root: folder).classificationLabels(split: "test") }
    #expect(throws: DatasetError.self) { try VOCDataset(root: folder.appendingPathComponent("VOC2012")) }
  }

  @Test func svmSplitsRejectListsThatDisagreeWithTheLabels() throws {
    let folder = try ReaderFixtures.temporaryFolder()
    defer { try? FileManager.default.removeItem(at: folder) }
    try ReaderFixtures.write("2\n1\n", to: "ImageSets/Main/trainval.txt", in: folder)  // not sorted
    try ReaderFixtures.write("1 1\n2 -1\n", to: "ImageSets/Main/cat_trainval.txt", in: folder)
    try ReaderFixtures.write("3\n", to: "ImageSets/Main/test.txt", in: folder)
    try ReaderFixtures.write("3 1\n", to: "ImageSets/Main/cat_test.txt", in: folder)
    #expect(throws: DatasetError.self) { try VOCDataset(root: folder).svmSplits() }
  }
}

@Suite struct VOCAnnotationTests {
  @Test func parsesObjectsAndIgnoresParts() throws {
    let annotation = try VOCAnnotation(contentsOf: try ReaderFixtures.url("VOC2007/Annotations/000002.xml"))
    #expect(annotation.filename == "000002.jpg")
    #expect(annotation.width == 64 && annotation.height == 80 && annotation.depth == 3)
    #expect(!annotation.isSegmented)
    #expect(annotation.objects == [
      VOCAnnotation.Object(name: "dog", pose: "Unspecified", isTruncated: true, isDifficult: false,
                           box: .init(xmin: 5, ymin: 6, xmax: 60, ymax: 70)),
      VOCAnnotation.Object(name: "person", pose: "Unspecified", isTruncated: false, isDifficult: true,
                           box: .init(xmin: 10, ymin: 10, xmax: 20, ymax: 50)),
    ])
    #expect(try VOCAnnotation(contentsOf: try ReaderFixtures.url("VOC2007/Annotations/000001.xml")).isSegmented)
  }

  static let minimal = """
    <annotation><filename>x.jpg</filename><size><width>10</width><height>20</height></size>
    <object><name>cat</name><bndbox><xmin>1</xmin><ymin>2.5</ymin><xmax>3</xmax><ymax>4</ymax></bndbox></object>
    </annotation>
    """

  @Test func optionalFieldsDefault() throws {
    let annotation = try VOCAnnotation(xml: Data(Self.minimal.utf8), path: "x.xml")
    #expect(annotation.depth == nil && !annotation.isSegmented)
    #expect(annotation.objects == [VOCAnnotation.Object(name: "cat", box: .init(xmin: 1, ymin: 2.5, xmax: 3, ymax: 4))])
  }

  @Test(arguments: [
    ("<filename>x.jpg</filename>", "", "annotation/filename"),
    ("<xmin>1</xmin>", "", "annotation/object[1]/bndbox/xmin"),
    ("<name>cat</name>", "", "annotation/object[1]/name"),
    ("<height>20</height>", "", "annotation/size/height"),
    ("<annotation>", "<notes>", "annotation"),
  ])
  func missingFieldsNameFileAndField(remove: String, insert: String, field: String) throws {
    var xml = Self.minimal.replacingOccurrences(of: remove, with: insert)
    if remove == "<annotation>" { xml = xml.replacingOccurrences(of: "</annotation>", with: "</notes>") }
    #expect(throws: DatasetError.missingField(path: "/d/x.xml", field: field)) {
      try VOCAnnotation(xml: Data(xml.utf8), path: "/d/x.xml")
    }
  }

  @Test func invalidValuesAreErrors() {
    for (old, new) in [("<width>10</width>", "<width>ten</width>"), ("<xmax>3</xmax>", "<xmax>nan</xmax>"),
                       ("<width>10</width>", "<width>0</width>")] {
      #expect(throws: DatasetError.self) {
        try VOCAnnotation(xml: Data(Self.minimal.replacingOccurrences(of: old, with: new).utf8), path: "x.xml")
      }
    }
  }

  @Test func truncatedAndGarbageXMLThrow() throws {
    let bytes = Array(Self.minimal.utf8)
    for length in 0..<bytes.count {
      #expect(throws: DatasetError.self) { try VOCAnnotation(xml: Data(bytes[..<length]), path: "cut.xml") }
    }
    // Random bytes, ASCII, and XML syntax characters at random places: parse or throw, never trap (invalid UTF-8
    // used to reach a force-unwrap inside FoundationXML).
    let file = try ReaderFixtures.bytes("VOC2007/Annotations/000002.xml")
    let syntax = Array("<>/:&;=\"'! x".utf8)
    var rng = SplitMix64(seed: 5)
    for _ in 0..<2000 {
      var mutated = file
      for _ in 0..<Int.random(in: 1...6, using: &rng) {
        let value = switch Int.random(in: 0..<3, using: &rng) {
        case 0: UInt8.random(in: 0...127, using: &rng)
        case 1: syntax[Int.random(in: 0..<syntax.count, using: &rng)]
        default: UInt8.random(in: 0...255, using: &rng)
        }
        mutated[Int.random(in: 0..<mutated.count, using: &rng)] = value
      }
      _ = try? VOCAnnotation(xml: Data(mutated), path: "mutated.xml")
    }
    #expect(throws: DatasetError.self) { try VOCAnnotation(xml: Data(bytes + [0xC3]), path: "latin.xml") }
    #expect(throws: DatasetError.self) {
      try VOCAnnotation(xml: Data(("<!DOCTYPE a [<!ENTITY e \"x\">]>" + Self.minimal).utf8), path: "dtd.xml")
    }
    #expect(throws: DatasetError.self) { try VOCAnnotation(contentsOf: URL(fileURLWithPath: "/nonexistent/1.xml")) }
  }
}

/// Issue 14 item 7: list files with CRLF line ends, a missing class list, and a class list naming an image its
/// split does not list. Each case runs on a copy of the VOC2007 fixture.
@Suite struct VOCListFileTests {
  /// A copy of Fixtures/readers/VOC2007 in a fresh folder; remove `folder` when done.
  func copyOfFixture() throws -> (folder: URL, root: URL) {
    let folder = try ReaderFixtures.temporaryFolder()
    let root = folder.appendingPathComponent("VOC2007")
    try FileManager.default.copyItem(at: try ReaderFixtures.url("VOC2007"), to: root)
    return (folder, root)
  }

  /// Rewrites every ImageSets list with CRLF line ends.
  func convertListsToCRLF(_ root: URL) throws {
    for sets in ["ImageSets/Main", "ImageSets/Segmentation"] {
      let directory = root.appendingPathComponent(sets)
      for name in try FileManager.default.contentsOfDirectory(atPath: directory.path) where name.hasSuffix(".txt") {
        let url = directory.appendingPathComponent(name)
        let text = try String(contentsOf: url, encoding: .utf8)
        try Data(text.replacingOccurrences(of: "\n", with: "\r\n").utf8).write(to: url)
      }
    }
  }

  @Test func listLinesSplitAtLFCRLFAndCR() {
    #expect(listLines("a\r\nb\n\nc\rd").map(String.init) == ["a", "b", "", "c", "d"])
    #expect(listLines("a\r\n").map(String.init) == ["a"])
    #expect(listLines("").isEmpty)
  }

  /// A CRLF devkit reads as the same images, labels and check counts as the LF original.
  @Test func crlfListsReadLikeLFLists() throws {
    let lf = try VOCDataset(root: try ReaderFixtures.url("VOC2007"))
    let (folder, root) = try copyOfFixture()
    defer { try? FileManager.default.removeItem(at: folder) }
    try convertListsToCRLF(root)
    let crlf = try VOCDataset(root: root)
    #expect(try String(contentsOf: root.appendingPathComponent("ImageSets/Main/trainval.txt"), encoding: .utf8)
              == "000001\r\n000002\r\n")
    for split in try lf.mainSplits() {
      #expect(try crlf.imageIDs(split: split) == lf.imageIDs(split: split))
      #expect(try crlf.classificationLabels(split: split) == lf.classificationLabels(split: split))
    }
    #expect(try crlf.segmentationPairs(split: "train").map(\.id) == ["000001"])
    #expect(try crlf.svmSplits() == lf.svmSplits())
    let checkLF = try DatasetCheck.run(data: try ReaderFixtures.url("VOC2007"))
    let checkCRLF = try DatasetCheck.run(data: root)
    #expect(checkCRLF.isComplete, "\(checkCRLF.rendered())")
    #expect(checkCRLF.counts == checkLF.counts && checkCRLF.classes == checkLF.classes)
    #expect(checkCRLF.counts.first { $0.name == "trainval images" }?.value == 2)
  }

  /// A malformed line is quoted, but never more than 80 characters of it.
  @Test func malformedLinesAreQuotedShort() throws {
    let folder = try ReaderFixtures.temporaryFolder()
    defer { try? FileManager.default.removeItem(at: folder) }
    let long = String(repeating: "x", count: 500)
    try ReaderFixtures.write("\(long)\r\n000001 1\r\n", to: "ImageSets/Main/cat_trainval.txt", in: folder)
    #expect {
      try VOCDataset(root: folder).classificationLabels(split: "trainval")
    } throws: { error in
      let text = "\(error)"
      return text.contains("line 1") && text.contains(String(repeating: "x", count: 80) + "… (500 characters)")
        && !text.contains(String(repeating: "x", count: 81))
    }
  }

  /// Without dog_trainval.txt, the SVM splits and `data check` name that file as missing.
  @Test func aMissingClassListIsNamed() throws {
    let (folder, root) = try copyOfFixture()
    defer { try? FileManager.default.removeItem(at: folder) }
    try FileManager.default.removeItem(at: root.appendingPathComponent("ImageSets/Main/dog_trainval.txt"))
    #expect {
      try VOCDataset(root: root).svmSplits()
    } throws: { error in
      guard case let .missingFile(path, hint) = error as? DatasetError else { return false }
      return path.hasSuffix("ImageSets/Main/dog_trainval.txt") && hint.contains("dog_test.txt exists")
    }
    let check = try DatasetCheck.run(data: root)
    #expect(!check.isComplete)
    #expect(check.missing == ["ImageSets/Main/dog_trainval.txt"])
    #expect(check.rendered().contains("missing:      1\n  ImageSets/Main/dog_trainval.txt"))
  }

  /// An image in cat_trainval.txt that trainval.txt does not list is named with its class list.
  @Test func aClassListImageOutsideTheSplitIsNamed() throws {
    let (folder, root) = try copyOfFixture()
    defer { try? FileManager.default.removeItem(at: folder) }
    let list = root.appendingPathComponent("ImageSets/Main/cat_trainval.txt")
    try Data((try String(contentsOf: list, encoding: .utf8) + "000009 1\n").utf8).write(to: list)
    #expect {
      try VOCDataset(root: root).svmSplits()
    } throws: { error in
      guard case let .inconsistentSplits(path, reason) = error as? DatasetError else { return false }
      return path.hasSuffix("ImageSets/Main/cat_trainval.txt") && reason.contains("'000009'")
        && reason.contains("ImageSets/Main/trainval.txt does not list")
    }
    let check = try DatasetCheck.run(data: root)
    #expect(!check.isComplete)
    #expect(check.unreadable.map(\.path) == ["ImageSets/Main/cat_trainval.txt"])
    #expect(check.unreadable.first?.reason.contains("'000009'") == true)

    // The reverse: an image of the split list that no class list names is named with the split list.
    try Data("000001  1\n000002 -1\n".utf8).write(to: list)
    let trainval = root.appendingPathComponent("ImageSets/Main/trainval.txt")
    try Data("000001\n000002\n000007\n".utf8).write(to: trainval)
    #expect {
      try VOCDataset(root: root).svmSplits()
    } throws: { error in
      guard case let .inconsistentSplits(path, reason) = error as? DatasetError else { return false }
      return path.hasSuffix("ImageSets/Main/trainval.txt") && reason.contains("'000007'")
    }
  }
}
