// VOCImageSource over a scene devkit written by `SceneSet.write` (the `data make-scenes` generator).
import Datasets
import Foundation
import TestSupport
import Testing
@testable import Evaluation

/// 20 synthetic 28×28 items (rectangles of class-dependent shape), or Fashion-MNIST's test items when asked for
/// and installed.
func sceneItems(fashionMNIST: Bool) -> SceneItems {
  let fashion = URL(fileURLWithPath: "/usr/share/datasets/fashion-mnist")
  if fashionMNIST, let items = try? SceneItems(fashionMNIST: fashion, split: .test) { return items }
  return .syntheticForTests()
}

/// Writes a scene devkit and returns its VOC2007 directory.
func writeScenes(trainval: Int, test: Int, seed: UInt64 = 0, fashionMNIST: Bool = false) throws -> URL {
  let directory = try temporaryDirectory("svm-scenes")
  let items = sceneItems(fashionMNIST: fashionMNIST)
  _ = try SceneSet.write(to: directory, seed: seed, size: SceneSetSize(trainval: trainval, test: test),
                         trainItems: items, testItems: items)
  return directory.appendingPathComponent("VOCdevkit/VOC2007")
}

@Suite struct VOCImageSourceTests {
  @Test func listsTrainvalThenTestWithAStableFingerprint() throws {
    let root = try writeScenes(trainval: 12, test: 10)
    defer { try? FileManager.default.removeItem(at: root.deletingLastPathComponent().deletingLastPathComponent()) }
    let source = try VOCImageSource(root: root)
    #expect(source.count == 22 && source.splits.splitAt == 12)
    #expect(source.trainLabels.images == 12 && source.testLabels.images == 10)
    #expect(source.trainLabels.classes.count == 10)  // scene devkits have 10 classes, not VOC's 20
    #expect(try VOCImageSource(root: root).fingerprint == source.fingerprint)
    let image = try source.image(at: 13, channels: 3)
    #expect(image.channels == 3 && image.width >= 96)
    #expect(try source.image(at: 0, channels: 1).channels == 1)
    #expect(source.location(of: 12).hasSuffix("JPEGImages/\(source.splits.extractionList[12])"))

    // A changed image file changes the fingerprint; a missing one is named.
    let file = URL(fileURLWithPath: source.location(of: 3))
    let bytes = try Data(contentsOf: file)
    try (bytes + Data([0])).write(to: file)
    #expect(try VOCImageSource(root: root).fingerprint != source.fingerprint)
    try FileManager.default.removeItem(at: file)
    #expect(throws: DatasetError.self) { _ = try VOCImageSource(root: root) }
  }

  @Test func missingSplitsOrClassListsAreNamed() throws {
    let root = try writeScenes(trainval: 6, test: 6)
    defer { try? FileManager.default.removeItem(at: root.deletingLastPathComponent().deletingLastPathComponent()) }
    let main = root.appendingPathComponent("ImageSets/Main")
    for name in try FileManager.default.contentsOfDirectory(atPath: main.path) where name.hasSuffix("_test.txt") {
      try FileManager.default.removeItem(at: main.appendingPathComponent(name))
    }
    #expect {
      _ = try VOCImageSource(root: root)
    } throws: { error in
      guard case DatasetError.missingFile(let path, _) = error else { return false }
      return path.contains("<class>_test.txt")
    }
    #expect(throws: DatasetError.self) { _ = try VOCImageSource(root: root.appendingPathComponent("nowhere")) }
  }

  /// Issue 14 item 7: CRLF lists give the same images, labels and fingerprint as LF ones.
  @Test func crlfListsGiveTheSameSource() throws {
    let root = try writeScenes(trainval: 6, test: 6)
    defer { try? FileManager.default.removeItem(at: root.deletingLastPathComponent().deletingLastPathComponent()) }
    let lf = try VOCImageSource(root: root)
    let checkLF = try DatasetCheck.run(data: root)
    let main = root.appendingPathComponent("ImageSets/Main")
    for name in try FileManager.default.contentsOfDirectory(atPath: main.path) where name.hasSuffix(".txt") {
      let url = main.appendingPathComponent(name)
      let text = try String(contentsOf: url, encoding: .utf8)
      try Data(text.replacingOccurrences(of: "\n", with: "\r\n").utf8).write(to: url)
    }
    let crlf = try VOCImageSource(root: root)
    #expect(crlf.count == 12 && crlf.splits == lf.splits && crlf.fingerprint == lf.fingerprint)
    let checkCRLF = try DatasetCheck.run(data: root)
    #expect(checkCRLF.isComplete && checkCRLF.counts == checkLF.counts)
    #expect(checkCRLF.counts.first { $0.name == "trainval images" }?.value == 6)
  }

  /// Issue 14 item 7: a missing <class>_trainval.txt is named (not "test classes: expected …"), and so is an image
  /// of a class list that the split list lacks (not trainval.txt's count).
  @Test func aMissingClassListOrAStrayImageIsNamed() throws {
    let root = try writeScenes(trainval: 6, test: 6)
    defer { try? FileManager.default.removeItem(at: root.deletingLastPathComponent().deletingLastPathComponent()) }
    let main = root.appendingPathComponent("ImageSets/Main")
    let classList = try #require(try FileManager.default.contentsOfDirectory(atPath: main.path)
                                   .filter { $0.hasSuffix("_trainval.txt") }.sorted().first)
    let saved = try Data(contentsOf: main.appendingPathComponent(classList))
    try FileManager.default.removeItem(at: main.appendingPathComponent(classList))
    #expect {
      _ = try VOCImageSource(root: root)
    } throws: { error in
      guard case DatasetError.missingFile(let path, _) = error else { return false }
      return path.hasSuffix("ImageSets/Main/\(classList)")
    }
    try (saved + Data("stray_image 1\n".utf8)).write(to: main.appendingPathComponent(classList))
    #expect {
      _ = try VOCImageSource(root: root)
    } throws: { error in
      guard case DatasetError.inconsistentSplits(let path, let reason) = error else { return false }
      return path.hasSuffix("ImageSets/Main/\(classList)") && reason.contains("'stray_image'")
    }
  }
}
