// Pascal VOC detection data: one or several devkit year folders read together (mmdet's list of VOCDatasets for
// VOC2007 trainval + VOC2012 trainval, concatenated in order), each image with its objects. Reference: mmdet 2.x
// mmdet/datasets/{xml_style,voc,custom}.py (see DetectionAnnotations.swift for the box conventions).
//
// Bad input, and what happens to it:
//   malformed XML, missing fields, non-numeric coordinates → DatasetError naming the file (VOCAnnotation; mmdet
//     would crash in ElementTree)
//   missing image or annotation file                      → DatasetError.missingFile naming it
//   box with xmax < xmin or ymax < ymin                    → DatasetError.invalidField naming the file and object
//   class not in the list                                  → skipped and counted (mmdet); refused (detectron2)
//   zero-area box, box crossing the image border           → kept and counted (both references keep them; the
//                                                             train pipeline clips to the image)
//   image without objects of a listed class                → training: dropped and counted; evaluation: kept
//   image under 32 px (mmdet convention, training)         → dropped and counted
import Foundation
import Support
import Synchronization
import Tensors

/// One image of a detection split: where its files are, its annotated size, and its objects.
public struct DetectionRecord: Sendable, Equatable {
  /// `ImageSets/Main/<split>.txt`'s id.
  public var imageID: String
  /// The devkit year folder it came from.
  public var devkit: URL
  public var image: URL
  public var annotation: URL
  /// `<size>` of the annotation (mmdet uses it only for filtering; the pipeline uses the decoded image's size).
  public var width: Int
  public var height: Int
  /// Objects of listed classes in file order, difficult ones included and flagged.
  public var objects: [DetectionObject]
}

public struct DetectionDataset: Sendable {
  /// mmdet's `VOCDataset.CLASSES`: the 20 VOC classes in alphabetical order, label = index.
  public static let vocClasses = Array(SegmentationClasses.voc.dropFirst())
  /// mmdet's `_filter_imgs(min_size=32)`: training images with a shorter annotated side below this are dropped.
  public static let minimumTrainingImageSide = 32

  public let devkits: [URL]
  public let split: String
  public let classes: [String]
  public let difficult: DifficultHandling
  public let boxConvention: VOCBoxConvention
  public let use: DetectionDatasetUse
  /// The images kept, devkit by devkit in list order.
  public private(set) var samples: [DetectionRecord]
  /// What was dropped or flagged while reading (log it).
  public let counts: DetectionLoadCounts
  /// SHA-256 (hex) over the options, class list and every kept sample's devkit, id, annotated size and objects.
  public private(set) var fingerprint: String

  public var count: Int { samples.count }

  /// Reads `ImageSets/Main/<split>.txt` of every devkit (e.g. VOCdevkit/VOC2007 and VOCdevkit/VOC2012) and all their
  /// annotations (on all cores), checking that every image file exists. `classes` gives the label order
  /// (`vocClasses`, or `classes(ofDevkit:)` for a scene devkit).
  public init(devkits: [URL], split: String, classes: [String], difficult: DifficultHandling = .ignore,
              boxConvention: VOCBoxConvention = .mmdet, use: DetectionDatasetUse = .training) throws {
    precondition(!devkits.isEmpty, "A detection dataset needs at least one devkit folder.")
    precondition(!classes.isEmpty && Set(classes).count == classes.count,
                 "Detection classes must be distinct and not empty, got \(classes).")
    let classIndex = Dictionary(uniqueKeysWithValues: classes.enumerated().map { ($1, $0) })
    var samples: [DetectionRecord] = []
    var counts = DetectionLoadCounts()
    for root in devkits {
      let voc = try VOCDataset(root: root)
      let ids = try voc.imageIDs(split: split)
      guard !ids.isEmpty else {
        throw DatasetError.noImages(path: voc.mainSetsDirectory.appendingPathComponent("\(split).txt").path,
                                    hint: "The split list names no image; VOC has trainval and test lists.")
      }
      let read = Mutex([(DetectionRecord, DetectionLoadCounts)?](repeating: nil, count: ids.count))
      try runWorkQueue(count: ids.count, workers: Threads.count) { index, _ in
        let id = ids[index]
        let image = voc.imageURL(id: id), annotationURL = voc.annotationURL(id: id)
        try DatasetFiles.requireFile(image, hint: "ImageSets/Main/\(split).txt lists '\(id)'; every listed image "
                                       + "needs JPEGImages/\(id).jpg.")
        let annotation = try VOCAnnotation(contentsOf: annotationURL)
        let (objects, fileCounts) = try annotation.detectionObjects(classes: classIndex, convention: boxConvention,
                                                                    path: annotationURL.path)
        let record = DetectionRecord(imageID: id, devkit: root, image: image, annotation: annotationURL,
                                     width: annotation.width, height: annotation.height, objects: objects)
        read.withLock { $0[index] = (record, fileCounts) }
      }
      for (record, fileCounts) in read.withLock({ $0 }).map({ $0! }) {
        counts.listedImages += 1
        if use == .training {
          if record.objects.isEmpty {
            counts.imagesWithoutObjects += 1
            counts.unknownClassObjects += fileCounts.unknownClassObjects
            continue
          }
          if boxConvention == .mmdet && min(record.width, record.height) < Self.minimumTrainingImageSide {
            counts.imagesTooSmall += 1
            counts.unknownClassObjects += fileCounts.unknownClassObjects
            continue
          }
        }
        var kept = fileCounts
        kept.listedImages = 0
        counts = counts + kept
        samples.append(record)
      }
    }
    guard !samples.isEmpty else {
      throw DatasetError.noImages(
        path: devkits.map(\.path).joined(separator: ", "),
        hint: "Split '\(split)' has no image with an object of the \(classes.count) classes (\(counts)). Are the "
          + "class names those of the devkit?")
    }
    self.devkits = devkits
    self.split = split
    self.classes = classes
    self.difficult = difficult
    self.boxConvention = boxConvention
    self.use = use
    self.samples = samples
    self.counts = counts
    fingerprint = Self.fingerprint(devkits: devkits, split: split, classes: classes, difficult: difficult,
                                   boxConvention: boxConvention, use: use, samples: samples)
  }

  /// The ground truth of every sample, in sample order, for `VOCDetectionEvaluator` (Evaluation turns each into a
  /// `GroundTruthObject`): all objects of listed classes with their difficult flags, boxes as read (not clipped),
  /// as mmdet's `eval_map` receives `bboxes` + `bboxes_ignore` and detectron2's evaluator re-reads the XML.
  public var groundTruth: [[DetectionObject]] { samples.map(\.objects) }

  /// The training targets of `record`: its objects without the difficult ones under `DifficultHandling.ignore`.
  public func targets(of record: DetectionRecord) -> [DetectionObject] {
    difficult == .keep ? record.objects : record.objects.filter { !$0.isDifficult }
  }

  /// Sample `index` through `pipeline`: decoded as RGB (mmdet's cv2 BGR, converted), its training targets resized,
  /// flipped and clipped with the image. Random draws come from `pipeline.decisions(seed:position:)`, keyed by
  /// `position` (the sample's place in the run's stream, e.g. iteration · batch + slot; `index` when nil) so a
  /// resumed run draws the same.
  public func load(at index: Int, pipeline: DetectionPipeline, seed: UInt64, position: Int? = nil) throws -> DetectionSample {
    precondition(index >= 0 && index < count, "Detection sample index \(index) is outside 0..<\(count).")
    let record = samples[index]
    let image = try Image(contentsOf: record.image, mode: .rgb)
    let decisions = pipeline.decisions(seed: seed, position: position ?? index)
    return pipeline.apply(image: image, objects: targets(of: record), imageID: record.imageID, decisions: decisions)
  }

  /// The first `count` samples only (a run's `train_limit` / `test_limit`), fingerprinted as such.
  public func prefix(_ count: Int) -> DetectionDataset {
    var copy = self
    copy.samples = Array(samples.prefix(count))
    copy.fingerprint = Self.fingerprint(devkits: devkits, split: split, classes: classes, difficult: difficult,
                                        boxConvention: boxConvention, use: use, samples: copy.samples)
    return copy
  }

  /// The class list of a devkit: the 20 VOC classes (mmdet's order) when its ImageSets/Main class lists name
  /// exactly those (or it has none), else the scene devkit's classes in label order (the categories of the COCO
  /// file `data make-scenes` writes beside it, or the Fashion-MNIST scene classes).
  public static func classes(ofDevkit root: URL) throws -> [String] {
    try DatasetFiles.requireDirectory(root, hint: "--data must be a VOC year directory such as VOCdevkit/VOC2007.")
    let listed = try SegmentationDataset.mainClassNames(root)
    if listed.isEmpty || Set(listed) == Set(vocClasses) { return vocClasses }
    return Array(try SegmentationDataset.devkitClassNames(root).dropFirst())
  }

  static func fingerprint(devkits: [URL], split: String, classes: [String], difficult: DifficultHandling,
                          boxConvention: VOCBoxConvention, use: DetectionDatasetUse,
                          samples: [DetectionRecord]) -> String {
    var hash = SHA256()
    func add(_ text: String) { hash.update(Data((text + "\n").utf8)) }
    add("detection-dataset v1")
    add("\(split)\t\(difficult.rawValue)\t\(boxConvention.rawValue)\t\(use.rawValue)")
    add(classes.joined(separator: ","))
    let devkitNames = devkits.map { $0.standardizedFileURL.lastPathComponent }
    add(devkitNames.joined(separator: ","))
    for record in samples {
      let objects = record.objects.map { "\($0.x1),\($0.y1),\($0.x2),\($0.y2),\($0.classIndex),\($0.isDifficult ? 1 : 0)" }
      add("\(record.devkit.standardizedFileURL.lastPathComponent)/\(record.imageID)\t\(record.width)x\(record.height)\t"
          + objects.joined(separator: ";"))
    }
    return hash.finalize().map { String(format: "%02x", $0) }.joined()
  }
}
