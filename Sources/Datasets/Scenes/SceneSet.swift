// `data make-scenes`: a reproducible scene set written as a VOC2007-style devkit and as COCO instances json.
//
// Layout under the output directory:
//   VOCdevkit/VOC2007/{JPEGImages,Annotations,SegmentationClass}/<id>.{jpg,xml,png}
//   VOCdevkit/VOC2007/ImageSets/Main/{train,val,trainval,test}.txt and <class>_<split>.txt
//   VOCdevkit/VOC2007/ImageSets/Segmentation/{train,val,trainval,test}.txt
//   annotations/instances_{trainval,test}.json   (file_name relative to the output directory)
import Foundation
import Tensors

/// How many scenes each split gets. Trainval scenes alternate train, val, train, … like VOC2007's halves.
public struct SceneSetSize: Sendable, Equatable {
  public var trainval: Int
  public var test: Int

  public init(trainval: Int, test: Int) {
    precondition(trainval >= 0 && test >= 0, "Scene split sizes must be ≥ 0, got \(trainval) and \(test).")
    self.trainval = trainval
    self.test = test
  }

  /// VOC2007's split sizes: 5011 trainval (2501 train + 2510 val there; 2506 + 2505 here) and 4952 test.
  public static let voc2007 = SceneSetSize(trainval: 5011, test: 4952)
  /// 40 + 40, for tests.
  public static let small = SceneSetSize(trainval: 40, test: 40)
}

/// What `SceneSet.write` produced.
public struct SceneSetSummary: Sendable, Equatable {
  public var vocRoot: URL
  public var cocoFiles: [URL]
  public var classNames: [String]
  public var imageCount = 0
  public var objectCount = 0
  public var difficultCount = 0
  public var truncatedCount = 0
  /// Objects per class, difficult included.
  public var objectsPerClass: [Int]
}

public enum SceneSet {
  /// The VOC year folder the set is written as.
  public static let vocYear = "VOC2007"

  /// VOC-style 6-digit id of scene `number` (0-based over trainval then test): "000001", "000002", …
  public static func imageID(_ number: Int) -> String {
    let digits = String(number + 1)
    return String(repeating: "0", count: max(0, 6 - digits.count)) + digits
  }

  /// Scene `number`, drawn from its own stream `SplitMix64.derived(seed, 0x5CE4E5, number)`: trainval scenes
  /// take items from `trainItems`, test scenes from `testItems`.
  public static func scene(number: Int, seed: UInt64, size: SceneSetSize, trainItems: SceneItems,
                           testItems: SceneItems, configuration: SceneConfiguration = SceneConfiguration()) -> Scene {
    var generator = SplitMix64.derived(seed, 0x5CE4E5, UInt64(number))
    let items = number < size.trainval ? trainItems : testItems
    return SceneGenerator(items: items, configuration: configuration).makeScene(using: &generator)
  }

  /// Generates `size` scenes and writes them under `directory` (see the file header for the layout).
  /// Refuses to write into an existing `VOCdevkit/VOC2007` or `annotations/instances_*.json`. Scenes are
  /// generated and written on `Threads.count` threads; `progress(done, total)` is called after each block.
  public static func write(to directory: URL, seed: UInt64, size: SceneSetSize, trainItems: SceneItems,
                           testItems: SceneItems, configuration: SceneConfiguration = SceneConfiguration(),
                           jpegQuality: Int = 90, progress: ((Int, Int) -> Void)? = nil) throws -> SceneSetSummary {
    precondition(trainItems.classNames == testItems.classNames,
                 "Train and test scene items must share class names, got \(trainItems.classNames) and "
                   + "\(testItems.classNames).")
    let classNames = trainItems.classNames
    let vocRoot = directory.appendingPathComponent("VOCdevkit/\(vocYear)")
    let annotations = directory.appendingPathComponent("annotations")
    let cocoFiles = ["trainval", "test"].map { annotations.appendingPathComponent("instances_\($0).json") }
    for url in [vocRoot] + cocoFiles where FileManager.default.fileExists(atPath: url.path) {
      throw DatasetWriteError.outputExists(path: url.path)
    }
    // Everything is written into a staging folder next to the outputs and moved into place at the end (the devkit
    // last), so a failure part-way (a full disk, an interrupt) leaves no half-made devkit that would pass
    // `data check` or block a rerun (issue 14 item 9); the staging folder is removed on failure.
    let fileManager = FileManager.default
    let staging = directory.appendingPathComponent(".make-scenes-partial-\(UUID().uuidString)")
    var published = false
    defer { if !published { try? fileManager.removeItem(at: staging) } }
    let stagedVOC = staging.appendingPathComponent("VOCdevkit/\(vocYear)")
    let stagedAnnotations = staging.appendingPathComponent("annotations")
    let stagedCOCO = cocoFiles.map { stagedAnnotations.appendingPathComponent($0.lastPathComponent) }
    let writer = try VOCDevkitWriter(root: stagedVOC)
    try DatasetWriting.createDirectory(stagedAnnotations)

    // Generate and write each scene's image, annotation and mask; keep what the lists and json need.
    struct Record { var width: Int, height: Int, objects: [Scene.Object] }
    let total = size.trainval + size.test
    var records = [Record?](repeating: nil, count: total)
    var errors = [(any Error)?](repeating: nil, count: total)
    let block = 256
    for start in stride(from: 0, to: total, by: block) {
      let range = start..<min(total, start + block)
      records.withUnsafeMutableBufferPointer { records in
        errors.withUnsafeMutableBufferPointer { errors in
          parallelFor(range) { numbers in
            for number in numbers {
              let scene = Self.scene(number: number, seed: seed, size: size, trainItems: trainItems,
                                     testItems: testItems, configuration: configuration)
              let id = imageID(number)
              do {
                try writer.writeImage(scene.image, id: id, jpegQuality: jpegQuality)
                try writer.writeAnnotation(vocAnnotation(scene, id: id, classNames: classNames), id: id)
                try writer.writeSegmentationMask(scene.classMask, id: id)
                records[number] = Record(width: scene.image.width, height: scene.image.height, objects: scene.objects)
              } catch {
                errors[number] = error
              }
            }
          }
        }
      }
      if let error = errors[range].lazy.compactMap({ $0 }).first { throw error }
      progress?(range.upperBound, total)
    }
    let all = records.map { $0! }

    // Image sets.
    let trainval = Array(0..<size.trainval), test = Array(size.trainval..<total)
    let splits: [(String, [Int])] = [("train", trainval.filter { $0 % 2 == 0 }), ("val", trainval.filter { $0 % 2 == 1 }),
                                     ("trainval", trainval), ("test", test)]
    for (split, numbers) in splits {
      let ids = numbers.map(imageID)
      try writer.writeMainSet(split: split, ids: ids,
                              objects: numbers.map { vocObjects(all[$0].objects, classNames: classNames) },
                              classes: classNames)
      try writer.writeSegmentationSet(split: split, ids: ids)
    }

    // COCO json, one file per split; annotation ids are unique across both.
    var annotationID = 1
    for (file, numbers) in zip(stagedCOCO, [trainval, test]) {
      var coco = COCOInstancesWriter(description: "simsiam-bench scenes, seed \(seed)")
      coco.categories = classNames.enumerated().map {
        COCOInstances.Category(id: $0 + 1, name: $1, supercategory: "fashion")
      }
      for number in numbers {
        let record = all[number]
        coco.images.append(COCOInstances.ImageInfo(
          id: number + 1, fileName: "VOCdevkit/\(vocYear)/JPEGImages/\(imageID(number)).jpg",
          width: record.width, height: record.height))
        for object in record.objects {
          coco.annotations.append(COCOInstancesWriter.Annotation(
            id: annotationID, imageID: number + 1, categoryID: object.classIndex + 1,
            bbox: [Double(object.xmin), Double(object.ymin), Double(object.xmax - object.xmin + 1),
                   Double(object.ymax - object.ymin + 1)],
            area: Double(object.area), segmentation: object.mask))
          annotationID += 1
        }
      }
      try coco.write(to: file)
    }

    // Publish: the json files, then the devkit; if a move fails, what was moved is taken back out.
    var moved: [URL] = []
    do {
      try DatasetWriting.createDirectory(annotations)
      try DatasetWriting.createDirectory(vocRoot.deletingLastPathComponent())
      for (from, to) in zip(stagedCOCO, cocoFiles) {
        try fileManager.moveItem(at: from, to: to)
        moved.append(to)
      }
      try fileManager.moveItem(at: stagedVOC, to: vocRoot)
    } catch {
      for url in moved { try? fileManager.removeItem(at: url) }
      throw DatasetWriteError.unwritableFile(path: directory.path, reason: "moving the finished scene set into place failed: \(error)")
    }
    published = true
    try? fileManager.removeItem(at: staging)

    var summary = SceneSetSummary(vocRoot: vocRoot, cocoFiles: cocoFiles, classNames: classNames,
                                  objectsPerClass: [Int](repeating: 0, count: classNames.count))
    summary.imageCount = total
    for object in all.lazy.flatMap(\.objects) {
      summary.objectCount += 1
      summary.difficultCount += object.isDifficult ? 1 : 0
      summary.truncatedCount += object.isTruncated ? 1 : 0
      summary.objectsPerClass[object.classIndex] += 1
    }
    return summary
  }

  /// The VOC annotation of a scene: boxes 1-based inclusive (0-based pixel index + 1), pose "Unspecified".
  public static func vocAnnotation(_ scene: Scene, id: String, classNames: [String]) -> VOCAnnotation {
    VOCAnnotation(filename: "\(id).jpg", width: scene.image.width, height: scene.image.height, depth: 3,
                  isSegmented: true, objects: vocObjects(scene.objects, classNames: classNames))
  }

  static func vocObjects(_ objects: [Scene.Object], classNames: [String]) -> [VOCAnnotation.Object] {
    objects.map { object in
      VOCAnnotation.Object(
        name: classNames[object.classIndex], pose: "Unspecified", isTruncated: object.isTruncated,
        isDifficult: object.isDifficult,
        box: VOCAnnotation.Box(xmin: Double(object.xmin + 1), ymin: Double(object.ymin + 1),
                               xmax: Double(object.xmax + 1), ymax: Double(object.ymax + 1)))
    }
  }
}
