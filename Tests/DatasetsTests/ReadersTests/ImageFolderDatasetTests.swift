import Foundation
import Testing
@testable import Datasets

@Suite struct ImageFolderDatasetTests {
  /// torchvision ImageFolder order: sorted classes; per class sorted(os.walk(...)) with sorted files, where the
  /// directory "dog/sub-x" sorts before "dog/sub/deep" because '-' < '/'.
  @Test func listsClassesAndImagesInTorchvisionOrder() throws {
    let root = try ReaderFixtures.url("imagefolder")
    let dataset = try ImageFolderDataset(root: root)
    #expect(dataset.classes == ["cat", "dog"])
    let relative = dataset.samples.map { String($0.url.path.dropFirst(root.path.count + 1)) }
    #expect(relative == ["cat/a.jpg", "cat/b.png", "dog/z.JPEG", "dog/sub/c.jpg", "dog/sub-x/d.jpg",
                         "dog/sub/deep/e.jpg"])
    #expect(dataset.samples.map(\.label) == [0, 0, 1, 1, 1, 1])
  }

  @Test func missingRootAndEmptyClassesAreErrors() throws {
    #expect(throws: DatasetError.self) { try ImageFolderDataset(root: URL(fileURLWithPath: "/nonexistent/imagenet")) }
    let folder = try ReaderFixtures.temporaryFolder()
    defer { try? FileManager.default.removeItem(at: folder) }
    #expect(throws: DatasetError.self) { try ImageFolderDataset(root: folder) }  // no class folders
    try ReaderFixtures.write(ReaderFixtures.jpegBytes, to: "a/1.jpg", in: folder)
    try ReaderFixtures.write("x", to: "b/readme.txt", in: folder)
    #expect {
      try ImageFolderDataset(root: folder)
    } throws: { error in
      guard case let .noImages(_, hint) = error as? DatasetError else { return false }
      return hint.hasPrefix("Class folder(s) b hold")
    }
  }
}

@Suite struct ImageListDatasetTests {
  @Test func readsLabeledLists() throws {
    let list = try ReaderFixtures.url("list/train.txt")
    let dataset = try ImageListDataset(listFile: list, root: try ReaderFixtures.url(""))
    #expect(dataset.isLabeled)
    #expect(dataset.samples.map(\.relativePath) == ["imagefolder/cat/a.jpg", "imagefolder/dog/z.JPEG",
                                                    "imagefolder/dog/sub/c.jpg"])
    #expect(dataset.samples.map(\.label) == [0, 1, 1])
    #expect(dataset.classCount == 2)
    #expect(FileManager.default.fileExists(atPath: dataset.samples[2].url.path))
  }

  @Test func readsUnlabeledListsAndPlacesCSV() throws {
    let root = try ReaderFixtures.url("")
    let unlabeled = try ImageListDataset(listFile: try ReaderFixtures.url("list/unlabeled.txt"), root: root)
    #expect(!unlabeled.isLabeled && unlabeled.count == 2 && unlabeled.samples.allSatisfy { $0.label == nil })
    let places = try ImageListDataset(listFile: try ReaderFixtures.url("list/places.csv"), root: root)
    #expect(places.samples.map(\.relativePath) == ["imagefolder/cat/b.png", "imagefolder/dog/sub-x/d.jpg"])
    #expect(places.samples.map(\.label) == [3, 7])
  }

  @Test(arguments: [("a.jpg 0\nb.jpg\n", 2), ("a.jpg\nb.jpg 1\n", 2), ("a.jpg zero\n", 1), ("a.jpg 1 2\n", 1),
                    ("a.jpg -1\n", 1)])
  func malformedLinesNameTheLine(text: String, line: Int) throws {
    let folder = try ReaderFixtures.temporaryFolder()
    defer { try? FileManager.default.removeItem(at: folder) }
    try ReaderFixtures.write(text, to: "list.txt", in: folder)
    #expect {
      try ImageListDataset(listFile: folder.appendingPathComponent("list.txt"))
    } throws: { error in
      guard case let .malformedLine(path, number, _, _) = error as? DatasetError else { return false }
      return number == line && path.hasSuffix("list.txt")
    }
  }
}
