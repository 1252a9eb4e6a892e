// COCO instance segmentation for Mask R-CNN: mmdet 2.x mmdet/datasets/coco.py `CocoDataset` on an
// instances_{train,val}2017.json (or the json `data make-scenes` writes) and its image directory.
//
//   labels (cat2label)   the json's category ids in ascending order, label = index. mmdet takes
//                        `coco.get_cat_ids(cat_names=CLASSES)`, the ids of the categories named in CLASSES in the
//                        json's order; for instances_*2017.json (80 categories listed by ascending id) and the scene
//                        json both are the same. detectron2 sorts the ids too.
//   images               the json's order (`coco.get_img_ids()`).
//   training filter      mmdet 2.x `_filter_imgs(min_size=32)` with filter_empty_gt=True: an image is dropped when
//                        the json has NO annotation for it, or when min(width, height) < 32 (the json's size). An
//                        image whose annotations are all crowd (or all skipped by `_parse_ann_info`) is KEPT and
//                        trains with zero targets (counted in `imagesWithoutTargets`).
//   evaluation           every image, in json order (test_mode=True filters nothing).
//
// Bad input, and what happens to it (each error names the json, the entry and what is wrong):
//   duplicate image or annotation ids        → refused (mmdet asserts unique annotation ids)
//   image size ≤ 0 or over 2²⁸ pixels       → refused
//   annotation of an unknown image or category id → refused (mmdet would skip it silently; a COCO file never has one)
//   bbox or area not finite                  → refused
//   a target without a segmentation, polygons pycocotools cannot read, an RLE of another size or whose runs do not
//     cover the image                        → refused (mmdet would crash in pycocotools or np.stack)
//   a listed image file missing              → DatasetError.missingFile (checked for the kept images at init)
//   a decoded image of another size than the json says → refused at load (the masks would not line up)
import Foundation
import Support

public struct COCOInstanceDataset: Sendable {
  /// mmdet's `_filter_imgs(min_size=32)`: training images with a shorter annotated side below this are dropped.
  public static let minimumTrainingImageSide = 32

  public let annotationFile: URL
  public let imageDirectory: URL
  public let use: DetectionDatasetUse
  /// Label → COCO category id: the json's category ids ascending (`cat_ids`; `categoryIDs[label]`).
  public let categoryIDs: [Int]
  /// The category names in label order.
  public let classNames: [String]
  /// The images kept, in json order.
  public private(set) var samples: [COCOInstanceRecord]
  /// What was dropped or skipped while reading (log it).
  public let counts: COCOInstanceLoadCounts
  /// SHA-256 (hex) over the use, the categories and every kept sample's id, size, targets and crowd boxes.
  public private(set) var fingerprint: String

  public var count: Int { samples.count }

  /// Reads `annotationFile` (and finds the image directory as `COCODataset` does unless given).
  public init(annotationFile: URL, imageDirectory: URL? = nil, use: DetectionDatasetUse) throws {
    try self.init(coco: COCODataset(annotationFile: annotationFile, imageDirectory: imageDirectory), use: use)
  }

  /// Parses every image's annotations as mmdet's `_parse_ann_info`, filters as `_filter_imgs` for training, and
  /// checks that every kept image file exists.
  public init(coco: COCODataset, use: DetectionDatasetUse) throws {
    let path = coco.annotationFile.path
    let instances = coco.instances
    // Categories: unique ids, label = rank of the id.
    var seenCategories = Set<Int>()
    for category in instances.categories where !seenCategories.insert(category.id).inserted {
      throw DatasetError.invalidField(path: path, field: "categories[id=\(category.id)]", value: "a repeated id",
                                      expected: "unique category ids")
    }
    let sortedCategories = instances.categories.sorted { $0.id < $1.id }
    let labels = Dictionary(uniqueKeysWithValues: sortedCategories.enumerated().map { ($1.id, $0) })
    // Images: unique ids, sizes that masks can be decoded at.
    var imageIndex: [Int: Int] = [:]
    for (index, image) in instances.images.enumerated() {
      guard imageIndex.updateValue(index, forKey: image.id) == nil else {
        throw DatasetError.invalidField(path: path, field: "images[id=\(image.id)]", value: "a repeated id",
                                        expected: "unique image ids")
      }
      guard image.width > 0 && image.height > 0 && image.width <= cocoInstanceMaximumPixels
        && image.height <= cocoInstanceMaximumPixels && image.width * image.height <= cocoInstanceMaximumPixels else {
        throw DatasetError.invalidField(path: path, field: "images[id=\(image.id)].width/height",
                                        value: "\(image.width)×\(image.height)",
                                        expected: "a positive size of at most 2²⁸ pixels")
      }
    }
    // Annotations grouped by image in json order, each checked.
    var annotationsByImage = [[COCOInstances.Annotation]](repeating: [], count: instances.images.count)
    var seenAnnotations = Set<Int>(minimumCapacity: instances.annotations.count)
    for annotation in instances.annotations {
      let entry = "annotations[id=\(annotation.id)]"
      guard seenAnnotations.insert(annotation.id).inserted else {
        throw DatasetError.invalidField(path: path, field: entry, value: "a repeated id",
                                        expected: "unique annotation ids")
      }
      guard let index = imageIndex[annotation.imageID] else {
        throw DatasetError.invalidField(path: path, field: entry + ".image_id", value: "\(annotation.imageID)",
                                        expected: "the id of an entry of images")
      }
      guard labels[annotation.categoryID] != nil else {
        throw DatasetError.invalidField(
          path: path, field: entry + ".category_id", value: "\(annotation.categoryID)",
          expected: "one of the \(labels.count) category ids of categories (\(sortedCategories.prefix(5).map { String($0.id) }.joined(separator: ", "))…)")
      }
      guard (annotation.bbox + [annotation.area]).allSatisfy(\.isFinite) else {
        throw DatasetError.invalidField(path: path, field: entry + ".bbox/area",
                                        value: "\(annotation.bbox), \(annotation.area)", expected: "finite numbers")
      }
      annotationsByImage[index].append(annotation)
    }
    // Records, filtered for training.
    var counts = COCOInstanceLoadCounts()
    var samples: [COCOInstanceRecord] = []
    for (index, image) in instances.images.enumerated() {
      counts.listedImages += 1
      if use == .training {
        if annotationsByImage[index].isEmpty {
          counts.imagesWithoutAnnotations += 1
          continue
        }
        if min(image.width, image.height) < Self.minimumTrainingImageSide {
          counts.imagesTooSmall += 1
          continue
        }
      }
      let record = try COCOInstanceRecord.parse(image: image, url: coco.imageURL(image),
                                                annotations: annotationsByImage[index], labels: labels, path: path,
                                                counts: &counts)
      if record.hasAnnotations && record.objects.isEmpty { counts.imagesWithoutTargets += 1 }
      samples.append(record)
    }
    for record in samples {
      try DatasetFiles.requireFile(record.image, hint: "\(path) lists image id \(record.imageID) as this file; is "
                                     + "the image directory \(coco.imageDirectory.path) the right one?")
    }
    guard !samples.isEmpty else {
      throw DatasetError.noImages(path: path, hint: "No image is left for \(use.rawValue) (\(counts)).")
    }
    annotationFile = coco.annotationFile
    imageDirectory = coco.imageDirectory
    self.use = use
    categoryIDs = sortedCategories.map(\.id)
    classNames = sortedCategories.map(\.name)
    self.samples = samples
    self.counts = counts
    fingerprint = Self.fingerprint(use: use, categoryIDs: categoryIDs, samples: samples)
  }

  /// The COCO category id of a 0-based label (mmdet `self.cat_ids[label]`).
  public func categoryID(ofLabel label: Int) -> Int {
    precondition(categoryIDs.indices.contains(label), "Label \(label) is outside 0..<\(categoryIDs.count).")
    return categoryIDs[label]
  }

  /// Sample `index` through `pipeline`: the image decoded as RGB, its targets' boxes and masks (decoded at the
  /// annotated size, which must be the image's) resized, flipped and clipped with it. Random draws come from
  /// `pipeline.decisions(seed:position:)` keyed by `position` (`index` when nil), as `DetectionDataset.load`.
  public func load(at index: Int, pipeline: DetectionPipeline, seed: UInt64, position: Int? = nil) throws
    -> InstanceSample
  {
    precondition(index >= 0 && index < count, "COCO sample index \(index) is outside 0..<\(count).")
    let record = samples[index]
    let image = try Image(contentsOf: record.image, mode: .rgb)
    guard image.width == record.width && image.height == record.height else {
      throw DatasetError.invalidField(
        path: annotationFile.path, field: "images[id=\(record.imageID)].width/height",
        value: "\(record.width)×\(record.height)",
        expected: "the size of \(record.image.path), \(image.width)×\(image.height) (masks are decoded at the "
          + "json's size and must line up with the image)")
    }
    let bitmaps = try record.bitmaps(path: annotationFile.path)
    let decisions = pipeline.decisions(seed: seed, position: position ?? index)
    return pipeline.apply(image: image, objects: record.objects, masks: bitmaps, cocoImageID: record.imageID,
                          decisions: decisions)
  }

  /// The first `count` samples only (a run's `train_limit` / `test_limit`), fingerprinted as such.
  public func prefix(_ count: Int) -> COCOInstanceDataset {
    var copy = self
    copy.samples = Array(samples.prefix(count))
    copy.fingerprint = Self.fingerprint(use: use, categoryIDs: categoryIDs, samples: copy.samples)
    return copy
  }

  static func fingerprint(use: DetectionDatasetUse, categoryIDs: [Int], samples: [COCOInstanceRecord]) -> String {
    var hash = SHA256()
    func add(_ text: String) { hash.update(Data((text + "\n").utf8)) }
    add("coco-instance-dataset v1")
    add(use.rawValue)
    add(categoryIDs.map(String.init).joined(separator: ","))
    for record in samples {
      let objects = zip(record.objects, record.annotationIDs).map { object, id in
        "\(id):\(object.x1),\(object.y1),\(object.x2),\(object.y2),\(object.classIndex)"
      }
      add("\(record.imageID)\t\(record.image.lastPathComponent)\t\(record.width)x\(record.height)\t"
          + objects.joined(separator: ";") + "\t" + record.crowdBoxes.map { "\($0)" }.joined(separator: ","))
    }
    return hash.finalize().map { String(format: "%02x", $0) }.joined()
  }
}

extension DetectionPipeline {
  /// MMSelfSup's `mask_rcnn_r50_fpn_mstrain_1x_coco` training: img_scale [(1333, 640), (1333, 672), …,
  /// (1333, 800)] (multiscale 'value'), keep_ratio, flip 0.5, pad to 32.
  public static let mmdetCOCOInstanceTrain = DetectionPipeline(
    shortSides: Array(stride(from: 640, through: 800, by: 32)), maxSize: 1333, flipProbability: 0.5)
  /// `coco_instance.py`'s test pipeline: (1333, 800), no flip, pad to 32.
  public static let mmdetCOCOInstanceTest = DetectionPipeline(shortSides: [800], maxSize: 1333, flipProbability: 0)
}
