// `data make-scenes`: the small scene set read back through VOCDataset, COCODataset and DatasetCheck, its
// determinism, and hand-checked pieces (RLE encoding, outline mask, classification flags).
import Support
import Foundation
import Testing
import Tensors
@testable import Datasets

/// One small scene set (seed 7), written once for the whole suite.
struct SceneFixture: Sendable {
  let directory: URL
  let summary: SceneSetSummary
  let items: SceneItems
  let size = SceneSetSize.small
  static let seed: UInt64 = 7

  /// Fashion-MNIST's t10k items when installed (for both splits: one small file to gunzip), else synthetic items.
  static func makeItems() throws -> SceneItems {
    let directory = URL(fileURLWithPath: "/usr/share/datasets/fashion-mnist")
    if FileManager.default.fileExists(atPath: directory.path) {
      return try SceneItems(fashionMNIST: directory, split: .test)
    }
    return syntheticItems()
  }

  /// 20 items, 28×28: filled rectangles of class-dependent shape and gray level 60…255.
  static func syntheticItems() -> SceneItems {
    var pixels: [UInt8] = []
    var labels: [Int] = []
    for index in 0..<20 {
      let label = index % 10
      let (w, h) = (6 + 2 * label, 24 - label)
      for y in 0..<28 {
        for x in 0..<28 {
          let inside = abs(x - 14) * 2 < w && abs(y - 14) * 2 < h
          pixels.append(inside ? UInt8(60 + (x * 7 + y * 3 + index) % 196) : 0)
        }
      }
      labels.append(label)
    }
    return SceneItems(classNames: SceneItems.fashionMNISTClassNames, width: 28, height: 28, pixels: pixels,
                      labels: labels)
  }

  static func write(seed: UInt64, items: SceneItems, to directory: URL) throws -> SceneSetSummary {
    try SceneSet.write(to: directory, seed: seed, size: .small, trainItems: items, testItems: items)
  }

  /// Removed when the test process exits.
  static let sharedDirectory = FileManager.default.temporaryDirectory
    .appendingPathComponent("simsiam-scenes-\(UUID().uuidString)")

  static let shared: Result<SceneFixture, FixtureError> = {
    do {
      let items = try makeItems()
      let directory = sharedDirectory
      atexit { try? FileManager.default.removeItem(at: SceneFixture.sharedDirectory) }
      return .success(SceneFixture(directory: directory, summary: try write(seed: seed, items: items, to: directory),
                                   items: items))
    } catch {
      return .failure(FixtureError(description: "\(error)"))
    }
  }()

  struct FixtureError: Error, Sendable { var description: String }

  var vocRoot: URL { directory.appendingPathComponent("VOCdevkit/VOC2007") }

  func scene(_ number: Int) -> Scene {
    SceneSet.scene(number: number, seed: Self.seed, size: size, trainItems: items, testItems: items)
  }

  var classNames: [String] { SceneItems.fashionMNISTClassNames }
}

/// Every regular file under `directory` as "relative path: SHA-256" lines, sorted.
func fileHashes(under directory: URL) throws -> [String] {
  let enumerator = try #require(FileManager.default.enumerator(at: directory, includingPropertiesForKeys: nil))
  var lines: [String] = []
  for case let url as URL in enumerator {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), !isDirectory.boolValue else {
      continue
    }
    let relative = String(url.standardizedFileURL.path.dropFirst(directory.standardizedFileURL.path.count))
    lines.append(relative + ": " + SHA256.hexDigest(of: [UInt8](try Data(contentsOf: url))))
  }
  return lines.sorted()
}

@Suite("Scene set")
struct SceneTests {
  // MARK: - Hand-checked pieces

  @Test func rleEncodingIsColumnMajorAndStartsWithZeros() throws {
    // [[0, 1, 1], [0, 1, 0]]: columns (0, 0), (1, 1), (1, 0) → runs 2 zeros, 3 ones, 1 zero
    // (pycocotools.mask.encode of the Fortran-order array gives counts [2, 3, 1]).
    let mask = Image(width: 3, height: 2, channels: 1, pixels: [0, 1, 1, 0, 1, 0])
    let rle = COCORLE(encoding: mask)
    #expect(rle.counts == [2, 3, 1])
    #expect(rle.area == 3)
    #expect(try rle.mask() == mask)
    // A mask that starts inside gets an empty first run.
    #expect(COCORLE(encoding: Image(width: 1, height: 2, channels: 1, pixels: [1, 1])).counts == [0, 2])
    let decoded = try COCORLE(height: 2, width: 3, compressed: rle.compressedString)
    #expect(decoded == rle)
  }

  @Test func classMaskMarksOutlinesOnBothSidesAsVoid() {
    // Instances (0 background): object 1 (class 4) at x 1…2, object 2 (class 0) at x 3, rows 0…2 of a 5×3 map.
    let instances: [UInt8] = [0, 1, 1, 2, 0,
                              0, 1, 1, 2, 0,
                              0, 1, 1, 2, 0]
    let mask = SceneGenerator.classMask(instances: instances, width: 5, height: 3, classes: [4, 0])
    // Every pixel touches a different label within its 3×3 neighbourhood, except none: x 1 touches x 0,
    // x 2 touches x 3. So all are 255 here; widen to check an interior pixel.
    #expect(mask.pixels == [UInt8](repeating: 255, count: 15))
    let wide: [UInt8] = [1, 1, 1, 1, 0,
                         1, 1, 1, 1, 0,
                         1, 1, 1, 1, 0]
    let wideMask = SceneGenerator.classMask(instances: wide, width: 5, height: 3, classes: [4])
    // x 0…2 see only label 1 (class 4 → index 5); x 3 and x 4 touch each other's label.
    #expect(wideMask.pixels == [5, 5, 5, 255, 255,
                                5, 5, 5, 255, 255,
                                5, 5, 5, 255, 255])
  }

  @Test func silhouetteFillsEnclosedDarkPixels() {
    // A bright ring (200) around a dark centre (10) in a 5×4 item, with a dark notch open to the border at
    // (4, 1): the centre is enclosed (object), the notch and the outer frame are background.
    let gray: [UInt8] = [0, 0, 0, 0, 0,
                         0, 200, 200, 200, 10,
                         0, 200, 10, 200, 0,
                         0, 200, 200, 200, 0]
    let shape = SceneGenerator.silhouette(gray, width: 5, height: 4, level: 40)
    #expect(shape == [false, false, false, false, false,
                      false, true, true, true, false,
                      false, true, true, true, false,
                      false, true, true, true, false])
  }

  @Test func classificationFlagFollowsVOC() {
    let box = VOCAnnotation.Box(xmin: 1, ymin: 1, xmax: 2, ymax: 2)
    let easy = VOCAnnotation.Object(name: "bag", box: box)
    let hard = VOCAnnotation.Object(name: "bag", isDifficult: true, box: box)
    #expect(VOCDevkitWriter.classificationFlag(of: [hard, easy], className: "bag") == 1)
    #expect(VOCDevkitWriter.classificationFlag(of: [hard], className: "bag") == 0)
    #expect(VOCDevkitWriter.classificationFlag(of: [hard], className: "coat") == -1)
  }

  @Test func scenesFollowTheConfiguration() throws {
    let fixture = try SceneFixture.shared.get()
    let c = SceneConfiguration()
    var objects = 0, difficult = 0
    for number in 0..<(fixture.size.trainval + fixture.size.test) {
      let scene = fixture.scene(number)
      #expect(c.imageSizes.contains(scene.image.width) && c.imageSizes.contains(scene.image.height))
      #expect(scene.objects.count <= c.objectCounts.upperBound)
      for object in scene.objects {
        #expect(0 <= object.xmin && object.xmin <= object.xmax && object.xmax < scene.image.width)
        #expect(0 <= object.ymin && object.ymin <= object.ymax && object.ymax < scene.image.height)
        #expect(Double(object.area) >= c.minimumKeptFraction * Double(object.fullArea) - 1e-9)
        let expected = Double(object.area) < c.difficultVisibleFraction * Double(object.fullArea)
          || object.area < c.difficultArea
        #expect(object.isDifficult == expected)
        #expect(object.mask.area == object.area)
        objects += 1
        difficult += object.isDifficult ? 1 : 0
      }
    }
    #expect(objects >= 80)  // 1–4 per image, 80 images
    #expect(difficult > 0 && difficult < objects)
    #expect(fixture.summary.objectCount == objects && fixture.summary.difficultCount == difficult)
  }

  /// The knobs of the in-domain scenes: gray objects (tint probability 0) on backgrounds at a fifth of their
  /// brightness, items at most 2× — and the defaults draw exactly the scenes they always drew.
  @Test func darkGrayScenesFollowTheirKnobs() throws {
    let items = SceneItems.syntheticForTests()
    var dark = SceneConfiguration()
    dark.scales = 1...2
    dark.backgroundBrightness = 0.2
    dark.tintProbability = 0
    let size = SceneSetSize(trainval: 6, test: 0)
    for number in 0..<6 {
      let bright = SceneSet.scene(number: number, seed: 3, size: size, trainItems: items, testItems: items)
      let same = SceneSet.scene(number: number, seed: 3, size: size, trainItems: items, testItems: items,
                                configuration: SceneConfiguration())
      #expect(bright == same)
      let scene = SceneSet.scene(number: number, seed: 3, size: size, trainItems: items, testItems: items,
                                 configuration: dark)
      let pixels = scene.image.pixels, mask = scene.classMask.pixels
      var backgroundSum = 0.0, backgroundCount = 0.0
      for p in 0..<mask.count {
        let rgb = pixels[(3 * p)..<(3 * p + 3)]
        if mask[p] != 0 && mask[p] != 255 {
          #expect(Set(rgb).count == 1, "object pixel \(p) of scene \(number) is tinted: \(Array(rgb))")
        } else if mask[p] == 0 {
          backgroundSum += Double(rgb.reduce(0) { $0 + Int($1) }) / 3
          backgroundCount += 1
        }
      }
      // A drawn background is at most 255; a fifth of it plus at most 12 of noise stays below 64.
      #expect(backgroundSum / max(backgroundCount, 1) < 64)
      for object in scene.objects { #expect(object.fullArea <= 56 * 56) }
    }
  }

  /// Issue 19 item 5: the SVM scenes' knobs — fixed 64 px sides, items at 1–1.25× (28–35 px), 1–2 objects — are
  /// what the generator draws.
  @Test func sidesScalesAndObjectCountsFollowTheirKnobs() throws {
    let items = SceneItems.syntheticForTests()
    var design = SceneConfiguration()
    design.imageSizes = 64...64
    design.scales = 1...1.25
    design.objectCounts = 1...2
    let size = SceneSetSize(trainval: 12, test: 0)
    var objects = 0
    for number in 0..<12 {
      let scene = SceneSet.scene(number: number, seed: 5, size: size, trainItems: items, testItems: items,
                                 configuration: design)
      #expect(scene.image.width == 64 && scene.image.height == 64)
      #expect((1...2).contains(scene.objects.count))
      for object in scene.objects {
        // A 28 px item at most 1.25× is at most 35 × 35 px, and its visible box is no larger.
        #expect(object.fullArea <= 35 * 35)
        #expect(object.xmax - object.xmin < 35 && object.ymax - object.ymin < 35)
      }
      objects += scene.objects.count
    }
    #expect(objects > 12)  // some scenes hold two
  }

  // MARK: - VOC round trip

  @Test func vocListsAndAnnotationsRoundTrip() throws {
    let fixture = try SceneFixture.shared.get()
    let voc = try VOCDataset(root: fixture.vocRoot)
    let trainval = (0..<40).map(SceneSet.imageID)
    #expect(try voc.mainSplits() == ["test", "train", "trainval", "val"])
    #expect(try voc.imageIDs(split: "trainval") == trainval)
    #expect(try voc.imageIDs(split: "train") == stride(from: 0, to: 40, by: 2).map(SceneSet.imageID))
    #expect(try voc.imageIDs(split: "val") == stride(from: 1, to: 40, by: 2).map(SceneSet.imageID))
    #expect(try voc.imageIDs(split: "test") == (40..<80).map(SceneSet.imageID))
    #expect(trainval.first == "000001")
    for number in 0..<80 {
      let id = SceneSet.imageID(number)
      let scene = fixture.scene(number)
      let annotation = try voc.annotation(id: id)
      #expect(annotation == SceneSet.vocAnnotation(scene, id: id, classNames: fixture.classNames))
      #expect(annotation.objects.count == scene.objects.count)
      if let first = scene.objects.first, let read = annotation.objects.first {
        #expect(read.box.xmin == Double(first.xmin + 1) && read.box.ymax == Double(first.ymax + 1))
      }
      let image = try Image(contentsOf: voc.imageURL(id: id))
      #expect(image.width == scene.image.width && image.height == scene.image.height && image.channels == 3)
      let meanError = zip(image.pixels, scene.image.pixels).reduce(0) { $0 + abs(Int($1.0) - Int($1.1)) }
        / image.pixels.count
      #expect(meanError < 8, "JPEG \(id) is far from the scene (mean abs error \(meanError))")
    }
  }

  @Test func classificationLabelsFollowDifficultFlags() throws {
    let fixture = try SceneFixture.shared.get()
    let voc = try VOCDataset(root: fixture.vocRoot)
    for (split, numbers) in [("trainval", Array(0..<40)), ("test", Array(40..<80))] {
      let matrix = try voc.classificationLabels(split: split)
      #expect(matrix.classes == fixture.classNames.sorted())
      #expect(matrix.imageIDs == numbers.map(SceneSet.imageID))
      for (row, number) in numbers.enumerated() {
        let objects = fixture.scene(number).objects
        for (column, name) in matrix.classes.enumerated() {
          let classIndex = fixture.classNames.firstIndex(of: name)!
          let instances = objects.filter { $0.classIndex == classIndex }
          // PROTOCOLS §2.1: present (non-difficult) → 1, absent → 0, only difficult → −1.
          let expected: Int32 = instances.contains { !$0.isDifficult } ? 1 : (instances.isEmpty ? 0 : -1)
          #expect(matrix[row, column] == expected, "\(split) \(number) \(name)")
        }
      }
    }
    let splits = try voc.svmSplits()
    #expect(splits.splitAt == 40 && splits.extractionList.count == 80)
  }

  @Test func segmentationMasksRoundTrip() throws {
    let fixture = try SceneFixture.shared.get()
    let voc = try VOCDataset(root: fixture.vocRoot)
    #expect(try voc.segmentationSplits() == ["test", "train", "trainval", "val"])
    let pairs = try voc.segmentationPairs(split: "trainval") + voc.segmentationPairs(split: "test")
    #expect(pairs.map(\.id) == (0..<80).map(SceneSet.imageID))
    for (number, pair) in pairs.enumerated() {
      let scene = fixture.scene(number)
      let mask = try decodePNGIndices(try Data(contentsOf: pair.mask), source: pair.mask.path)
      #expect(mask == scene.classMask)
      #expect(try ImageHeader(contentsOf: pair.mask).hasPalette)
      #expect(mask.pixels.allSatisfy { $0 <= 10 || $0 == 255 })
    }
  }

  // MARK: - COCO round trip

  @Test func cocoInstancesRoundTrip() throws {
    let fixture = try SceneFixture.shared.get()
    var nextAnnotationID = 1
    for (split, numbers) in [("trainval", Array(0..<40)), ("test", Array(40..<80))] {
      let coco = try COCODataset(
        annotationFile: fixture.directory.appendingPathComponent("annotations/instances_\(split).json"))
      #expect(coco.imageDirectory.standardizedFileURL.path == fixture.directory.standardizedFileURL.path)
      #expect(coco.instances.categories.map(\.name) == fixture.classNames)
      #expect(coco.sortedCategoryIDs == Array(1...10))
      #expect(coco.instances.images.map(\.id) == numbers.map { $0 + 1 })
      let byImage = coco.annotationsByImage()
      for (info, number) in zip(coco.instances.images, numbers) {
        let scene = fixture.scene(number)
        #expect(info.width == scene.image.width && info.height == scene.image.height)
        #expect(FileManager.default.fileExists(atPath: coco.imageURL(info).path))
        let annotations = byImage[info.id] ?? []
        #expect(annotations.count == scene.objects.count)
        for (annotation, object) in zip(annotations, scene.objects) {
          #expect(annotation.id == nextAnnotationID)
          nextAnnotationID += 1
          #expect(annotation.categoryID == object.classIndex + 1)
          #expect(annotation.bbox == [Double(object.xmin), Double(object.ymin), Double(object.xmax - object.xmin + 1),
                                      Double(object.ymax - object.ymin + 1)])
          #expect(annotation.area == Double(object.area))
          #expect(!annotation.isCrowd)
          guard case let .rle(rle) = annotation.segmentation else {
            Issue.record("annotation \(annotation.id) has no RLE segmentation")
            continue
          }
          #expect(rle == object.mask)
          // The instance mask agrees with the class mask: its pixels are the class or the void outline.
          let mask = try rle.mask()
          #expect(mask.width == scene.image.width && mask.height == scene.image.height)
          let agrees = zip(mask.pixels, scene.classMask.pixels).allSatisfy { inside, label in
            inside == 0 || label == UInt8(object.classIndex + 1) || label == 255
          }
          #expect(agrees, "instance mask \(annotation.id) disagrees with the class mask")
        }
        // Every labelled (non-void, non-background) class-mask pixel lies in exactly one instance mask.
        let masks = try annotations.map { annotation -> Image in
          guard case let .rle(rle) = annotation.segmentation else { throw SceneFixture.FixtureError(description: "") }
          return try rle.mask()
        }
        var owners = [Int](repeating: 0, count: scene.classMask.pixels.count)
        for mask in masks { for (i, inside) in mask.pixels.enumerated() where inside == 1 { owners[i] += 1 } }
        #expect(owners.allSatisfy { $0 <= 1 })
        let covered = zip(scene.classMask.pixels, owners).allSatisfy { label, owners in
          label == 0 || label == 255 || owners == 1
        }
        #expect(covered, "image \(info.id): a labelled class-mask pixel is in no instance mask")
      }
    }
  }

  // MARK: - Determinism and data check

  @Test func sameSeedWritesIdenticalFiles() throws {
    let fixture = try SceneFixture.shared.get()
    let again = FileManager.default.temporaryDirectory.appendingPathComponent("simsiam-scenes-\(UUID().uuidString)")
    let other = FileManager.default.temporaryDirectory.appendingPathComponent("simsiam-scenes-\(UUID().uuidString)")
    defer {
      try? FileManager.default.removeItem(at: again)
      try? FileManager.default.removeItem(at: other)
    }
    _ = try SceneFixture.write(seed: SceneFixture.seed, items: fixture.items, to: again)
    let hashes = try fileHashes(under: fixture.directory)
    #expect(hashes.count == 2 * 80 + 80 + 4 + 4 * 10 + 4 + 2)  // jpg+xml, png, Main lists, class lists, Seg, json
    #expect(try fileHashes(under: again) == hashes)
    _ = try SceneFixture.write(seed: SceneFixture.seed + 1, items: fixture.items, to: other)
    let otherHashes = try fileHashes(under: other)
    #expect(otherHashes != hashes)
    #expect(otherHashes.filter { $0.contains("JPEGImages") } != hashes.filter { $0.contains("JPEGImages") })
  }

  @Test func writingIntoAnExistingSetIsRefused() throws {
    let fixture = try SceneFixture.shared.get()
    #expect(throws: DatasetWriteError.outputExists(path: fixture.vocRoot.path)) {
      _ = try SceneFixture.write(seed: 1, items: fixture.items, to: fixture.directory)
    }
  }

  /// Issue 14 item 9: a make-scenes that fails part-way left an empty VOCdevkit/VOC2007 that `data check` accepted and
  /// that blocked a rerun. Scenes are staged and moved into place at the end: a failure (here: `annotations` is a
  /// file, so the set cannot be published) leaves neither the devkit nor the staging folder, and a success leaves no
  /// staging folder either.
  @Test func aFailedWriteLeavesNoHalfMadeDevkit() throws {
    let items = SceneItems.syntheticForTests()
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("scenes-fail-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: directory) }
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    try Data("not a folder".utf8).write(to: directory.appendingPathComponent("annotations"))
    #expect(throws: (any Error).self) {
      _ = try SceneSet.write(to: directory, seed: 1, size: SceneSetSize(trainval: 4, test: 4), trainItems: items,
                             testItems: items)
    }
    let left = try FileManager.default.contentsOfDirectory(atPath: directory.path)
    #expect(left == ["annotations"], "left behind: \(left)")

    try FileManager.default.removeItem(at: directory.appendingPathComponent("annotations"))
    let summary = try SceneSet.write(to: directory, seed: 1, size: SceneSetSize(trainval: 4, test: 4),
                                     trainItems: items, testItems: items)
    #expect(Set(try FileManager.default.contentsOfDirectory(atPath: directory.path)) == ["VOCdevkit", "annotations"])
    #expect(try DatasetCheck.run(data: summary.vocRoot).isComplete)
  }

  /// Issue 14 item 9: a devkit whose lists name no image (what an interrupted make-scenes left) passed `data check`
  /// with "files: 0"; it is refused, naming the folder.
  @Test func dataCheckRefusesADevkitWithoutImages() throws {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("empty-devkit-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: root) }
    let voc = root.appendingPathComponent("VOCdevkit/VOC2007")
    for folder in ["JPEGImages", "Annotations", "ImageSets/Main", "ImageSets/Segmentation", "SegmentationClass"] {
      try FileManager.default.createDirectory(at: voc.appendingPathComponent(folder), withIntermediateDirectories: true)
    }
    do {
      let report = try DatasetCheck.run(data: voc)
      Issue.record("an empty devkit passed data check: \(report.counts)")
    } catch let error as DatasetError {
      guard case let .noImages(path, _) = error else { Issue.record("\(error)"); return }
      #expect(path == voc.path)
    }
  }

  @Test func dataCheckReportsOnTheSet() throws {
    let fixture = try SceneFixture.shared.get()
    let voc = try DatasetCheck.run(data: fixture.vocRoot)
    #expect(voc.format == .voc)
    #expect(voc.isComplete)
    let counts = Dictionary(uniqueKeysWithValues: voc.counts.map { ($0.name, $0.value) })
    #expect(counts["trainval images"] == 40 && counts["test images"] == 40)
    #expect(counts["annotated objects"] == fixture.summary.objectCount)
    #expect(counts["classes"] == 10 && counts["segmentation trainval images"] == 40)
    #expect(voc.classes.map(\.name) == fixture.classNames.sorted())
    #expect(voc.classes.map { $0.counts[1] }.reduce(0, +) == fixture.summary.difficultCount)
    #expect(voc.fingerprint.count == 64)

    let coco = try DatasetCheck.run(data: fixture.directory)
    #expect(coco.format == .coco)
    #expect(coco.isComplete)
    #expect(coco.classColumns == ["test", "trainval"])
    #expect(coco.classes.map { $0.counts.reduce(0, +) }.reduce(0, +) == fixture.summary.objectCount)
  }

  /// The scene design's range checks: the defaults pass and give `SceneConfiguration()`; each value outside its
  /// range, or a lower bound above its upper bound, is refused naming its option (no `ClosedRange` trap).
  @Test func checkedConfigurationRefusesOutOfRangeDesigns() throws {
    typealias Design = (Double, Double, Int, Int, Int, Int, Double, Double)
    let defaults: Design = (1, 4, 96, 256, 1, 4, 1, 0.75)
    func make(_ d: Design) throws -> SceneConfiguration {
      try SceneConfiguration.checked(minScale: d.0, maxScale: d.1, minSide: d.2, maxSide: d.3, minObjects: d.4,
                                     maxObjects: d.5, backgroundBrightness: d.6, tintProbability: d.7)
    }
    #expect(try make(defaults) == SceneConfiguration())
    var bad: [(Design, String)] = []
    var d = defaults; d.1 = 0.5; bad.append((d, "max-scale"))
    d = defaults; d.1 = .infinity; bad.append((d, "max-scale"))
    d = defaults; d.0 = 5; bad.append((d, "min-scale"))
    d = defaults; d.0 = 0.1; bad.append((d, "min-scale"))
    d = defaults; d.2 = 4; bad.append((d, "min-side"))
    d = defaults; d.3 = 90; bad.append((d, "max-side"))
    d = defaults; d.3 = 5000; bad.append((d, "max-side"))
    d = defaults; d.4 = -1; bad.append((d, "min-objects"))
    d = defaults; d.4 = 5; bad.append((d, "max-objects"))
    d = defaults; d.6 = .nan; bad.append((d, "background-brightness"))
    d = defaults; d.7 = 1.5; bad.append((d, "tint-probability"))
    for (design, option) in bad {
      #expect(throws: SceneConfigurationError.self, "\(option)") { try make(design) }
      do { _ = try make(design) } catch let error as SceneConfigurationError { #expect(error.option == option) }
    }
  }
}
