import Foundation
import Testing
@testable import Datasets

@Suite struct DatasetCheckTests {
  @Test(arguments: [("imagefolder", DatasetFormat.imagefolder), ("VOC2007", .voc), ("coco", .coco), ("idx", .idx),
                    ("cifar10", .cifar), ("cifar100", .cifar), ("list/train.txt", .list),
                    ("coco/annotations/instances_val2017.json", .coco)])
  func detectsLayouts(path: String, format: DatasetFormat) throws {
    #expect(try DatasetCheck.detectFormat(of: try ReaderFixtures.url(path)) == format)
  }

  /// The fingerprint is sha256 of "path\tsize\n" lines sorted by path; expected from Python:
  /// hashlib.sha256("cat/a.jpg\t18\ncat/b.png\t16\ndog/sub-x/d.jpg\t18\ndog/sub/c.jpg\t18\n"
  ///                "dog/sub/deep/e.jpg\t18\ndog/z.JPEG\t18\n".encode()).hexdigest()
  @Test func imageFolderCountsAndFingerprint() throws {
    let check = try DatasetCheck.run(data: try ReaderFixtures.url("imagefolder"))
    #expect(check.format == .imagefolder && check.isComplete)
    #expect(check.counts == [.init(name: "images", value: 6), .init(name: "classes", value: 2)])
    #expect(check.classes == [.init(name: "cat", counts: [2]), .init(name: "dog", counts: [4])])
    #expect(check.fileCount == 6 && check.totalBytes == 106)
    #expect(check.fingerprint == "8bddcea5ff1e4c7382fe76b8cdc08977afa6b69eb57ff71dc4c1e3bc2cc853ec")
    let text = check.rendered()
    #expect(text.contains("images:       6"))
    #expect(text.contains("dog         4"))
    #expect(text.contains("missing:      0"))
    #expect(text.contains("fingerprint:  sha256:8bddcea5"))
  }

  @Test func vocCountsSplitsObjectsAndFiles() throws {
    let check = try DatasetCheck.run(data: try ReaderFixtures.url("VOC2007"))
    #expect(check.isComplete, "\(check.rendered())")
    #expect(check.counts.first { $0.name == "trainval images" }?.value == 2)
    #expect(check.counts.first { $0.name == "annotated objects" }?.value == 5)
    #expect(check.counts.first { $0.name == "segmentation train images" }?.value == 1)
    #expect(check.classColumns == ["objects", "difficult"])
    #expect(check.classes == [.init(name: "cat", counts: [1, 0]), .init(name: "dog", counts: [2, 1]),
                              .init(name: "person", counts: [2, 1])])
    // 3 JPEGs, 3 XMLs, 2 masks, 17 Main lists (4 splits, 12 class lists, extra_cat_trainval.txt),
    // 2 Segmentation lists.
    #expect(check.fileCount == 27)
  }

  @Test func cocoIDXAndCIFARAreComplete() throws {
    let coco = try DatasetCheck.run(data: try ReaderFixtures.url("coco"))
    #expect(coco.isComplete && coco.fileCount == 3)
    #expect(coco.classes == [.init(name: "car", counts: [2]), .init(name: "person", counts: [1])])
    let idx = try DatasetCheck.run(data: try ReaderFixtures.url("idx"))
    #expect(idx.isComplete && idx.fileCount == 4)
    #expect(idx.classes.map(\.counts) == [[2, 1], [2, 0], [1, 1]])
    let cifar = try DatasetCheck.run(data: try ReaderFixtures.url("cifar100"))
    #expect(cifar.isComplete && cifar.fileCount == 4)
    #expect(cifar.classes[42].counts == [1, 0])
  }

  @Test func reportsMissingAndUnreadableFiles() throws {
    let folder = try ReaderFixtures.temporaryFolder()
    defer { try? FileManager.default.removeItem(at: folder) }
    try ReaderFixtures.write(ReaderFixtures.jpegBytes, to: "images/ok.jpg", in: folder)
    try ReaderFixtures.write("GIF89a", to: "images/gif.jpg", in: folder)
    try ReaderFixtures.write([], to: "images/empty.png", in: folder)
    let lines = ["images/ok.jpg 0", "images/gif.jpg 1", "images/empty.png 1"]
      + (0..<12).map { "images/gone\($0).jpg 2" }
    try ReaderFixtures.write(lines.joined(separator: "\n"), to: "list.txt", in: folder)
    let check = try DatasetCheck.run(data: folder.appendingPathComponent("list.txt"))
    #expect(check.format == .list && !check.isComplete)
    #expect(check.missing.count == 12 && check.missing[0] == "images/gone0.jpg")
    #expect(check.unreadable.map(\.path) == ["images/gif.jpg", "images/empty.png"])
    #expect(check.unreadable[0].reason.contains("47 49 46 38"))
    #expect(check.classes.map(\.counts) == [[1], [2], [12]])
    let text = check.rendered(listing: 10)
    #expect(text.contains("missing:      12"))
    #expect(text.contains("  images/gone9.jpg") && !text.contains("gone10.jpg"))
    #expect(text.contains("… and 2 more"))
    // Missing files are not in the fingerprint: list.txt, ok.jpg, gif.jpg, empty.png.
    #expect(check.fileCount == 4)
  }

  @Test func corruptIDXIsReportedNotThrown() throws {
    let folder = try ReaderFixtures.temporaryFolder()
    defer { try? FileManager.default.removeItem(at: folder) }
    for name in ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-labels-idx1-ubyte"] {
      try ReaderFixtures.write(try ReaderFixtures.bytes("idx/\(name)"), to: name, in: folder)
    }
    var broken = try ReaderFixtures.bytes("idx/t10k-images-idx3-ubyte")
    broken.removeLast()
    try ReaderFixtures.write(broken, to: "t10k-images-idx3-ubyte", in: folder)
    let check = try DatasetCheck.run(data: folder)
    #expect(check.format == .idx && !check.isComplete)
    #expect(check.unreadable.map(\.path) == ["t10k-images-idx3-ubyte"])
    #expect(check.counts.first?.value == 5)
  }

  @Test func unknownLayoutsAndMissingPathsThrow() throws {
    let folder = try ReaderFixtures.temporaryFolder()
    defer { try? FileManager.default.removeItem(at: folder) }
    #expect(throws: DatasetError.self) { try DatasetCheck.run(data: folder) }
    try FileManager.default.createDirectory(at: folder.appendingPathComponent("VOC2007"),
                                            withIntermediateDirectories: true)
    #expect(throws: DatasetError.self) { try DatasetCheck.run(data: folder) }  // VOCdevkit, not a year
    #expect(throws: DatasetError.self) { try DatasetCheck.run(data: folder.appendingPathComponent("absent")) }
  }
}
