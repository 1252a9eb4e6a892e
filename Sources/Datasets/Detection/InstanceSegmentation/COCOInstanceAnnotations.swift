// From a COCO instances json to per-image training targets, as mmdet 2.x mmdet/datasets/coco.py
// `CocoDataset._parse_ann_info` reads them, and each target's segmentation to a bitmap at the annotated size as
// `LoadAnnotations._poly2mask` does (mmdet/datasets/pipelines/loading.py):
//   - an annotation whose box [x, y, w, h] does not overlap the image [0, width] × [0, height] at all
//     (inter_w · inter_h == 0) is skipped;
//   - an annotation with area ≤ 0, w < 1 or h < 1 is skipped;
//   - the box becomes [x, y, x + w, y + h] (no −1; float64 sums, stored float32);
//   - iscrowd → `bboxes_ignore` (no training target; Mask R-CNN's pipeline does not collect it);
//   - otherwise a target: box, label = cat2label[category_id], mask annotation = its segmentation.
// mmdet also skips annotations with `ignore: true` (COCO files have no such key; it is not read) and annotations of
// categories outside CLASSES (all of a COCO file's categories are classes here; an id the file does not define is
// refused as a broken file, see `COCOInstanceDataset`).
import Foundation

/// One image of a COCO instance-segmentation split: where its file is, its annotated size and its parsed targets.
public struct COCOInstanceRecord: Sendable, Equatable {
  /// The json's image id.
  public var imageID: Int
  public var image: URL
  /// The json's `width` and `height` (mmdet filters by them and rasterises polygons at this size).
  public var width: Int
  public var height: Int
  /// Non-crowd targets in annotation order: box (x1, y1, x2, y2) float32, `classIndex` = label (index of the
  /// category id in `COCOInstanceDataset.categoryIDs`). Never difficult.
  public var objects: [DetectionObject]
  /// Each target's segmentation (polygons or RLE), parallel to `objects`.
  public var segmentations: [COCOInstances.Segmentation]
  /// Each target's annotation id, parallel to `objects` (for messages).
  public var annotationIDs: [Int]
  /// Crowd boxes `[c · 4]` (x1, y1, x2, y2), mmdet's `gt_bboxes_ignore`: no training target.
  public var crowdBoxes: [Float]
  /// Whether the json has any annotation for this image (mmdet `_filter_imgs`' `ids_with_ann`), skipped or not.
  public var hasAnnotations: Bool
}

/// What reading a COCO split kept, skipped or dropped (log it).
public struct COCOInstanceLoadCounts: Sendable, Equatable, CustomStringConvertible {
  /// Images in the json.
  public var listedImages = 0
  /// Training only: images without any annotation, dropped (mmdet `_filter_imgs` with filter_empty_gt).
  public var imagesWithoutAnnotations = 0
  /// Training only: images whose annotated shorter side is under 32 px, dropped (`_filter_imgs(min_size=32)`).
  public var imagesTooSmall = 0
  /// Kept images with annotations but no target (all crowd or skipped): mmdet 2.x keeps them in training, where
  /// they contribute negatives only.
  public var imagesWithoutTargets = 0
  /// Non-crowd targets in the kept images.
  public var targets = 0
  /// Crowd annotations in the kept images (`bboxes_ignore`).
  public var crowdAnnotations = 0
  /// Annotations skipped because their box lies wholly outside the image.
  public var annotationsOutsideImage = 0
  /// Annotations skipped for area ≤ 0, width < 1 or height < 1.
  public var degenerateAnnotations = 0

  public init() {}

  public var description: String {
    "\(listedImages) images listed, \(imagesWithoutAnnotations) without annotations and \(imagesTooSmall) under "
      + "32 px dropped, \(imagesWithoutTargets) kept without targets; \(targets) targets, \(crowdAnnotations) "
      + "crowd (ignored), \(annotationsOutsideImage) outside the image and \(degenerateAnnotations) with area ≤ 0 "
      + "or a side < 1 skipped"
  }
}

/// The most pixels an annotated image may have (masks are decoded at that size): 2²⁸ (16384 × 16384).
let cocoInstanceMaximumPixels = 1 << 28

extension COCOInstanceRecord {
  /// mmdet `_parse_ann_info` for one image's annotations (json order). `labels` maps category id → label; the
  /// caller has checked that every annotation's category is in it and that its bbox and area are finite.
  /// `path` names the json in errors: a target without a segmentation, or one that cannot be rasterised at the
  /// image's size (checked here cheaply, without rasterising), is refused.
  static func parse(image info: COCOInstances.ImageInfo, url: URL, annotations: [COCOInstances.Annotation],
                    labels: [Int: Int], path: String, counts: inout COCOInstanceLoadCounts) throws -> COCOInstanceRecord
  {
    var record = COCOInstanceRecord(imageID: info.id, image: url, width: info.width, height: info.height,
                                    objects: [], segmentations: [], annotationIDs: [], crowdBoxes: [],
                                    hasAnnotations: !annotations.isEmpty)
    let (imageWidth, imageHeight) = (Double(info.width), Double(info.height))
    for annotation in annotations {
      let (x1, y1, w, h) = (annotation.bbox[0], annotation.bbox[1], annotation.bbox[2], annotation.bbox[3])
      let overlapWidth = max(0, min(x1 + w, imageWidth) - max(x1, 0))
      let overlapHeight = max(0, min(y1 + h, imageHeight) - max(y1, 0))
      if overlapWidth * overlapHeight == 0 {
        counts.annotationsOutsideImage += 1
        continue
      }
      if annotation.area <= 0 || w < 1 || h < 1 {
        counts.degenerateAnnotations += 1
        continue
      }
      let box = [Float(x1), Float(y1), Float(x1 + w), Float(y1 + h)]
      if annotation.isCrowd {
        record.crowdBoxes += box
        counts.crowdAnnotations += 1
        continue
      }
      let field = "annotations[id=\(annotation.id)].segmentation"
      guard let segmentation = annotation.segmentation else {
        throw DatasetError.invalidField(path: path, field: field, value: "missing",
                                        expected: "polygons or an RLE (instance segmentation needs a mask per "
                                          + "non-crowd annotation)")
      }
      try Self.check(segmentation, width: info.width, height: info.height, path: path, field: field)
      record.objects.append(DetectionObject(x1: box[0], y1: box[1], x2: box[2], y2: box[3],
                                            classIndex: labels[annotation.categoryID]!, isDifficult: false))
      record.segmentations.append(segmentation)
      record.annotationIDs.append(annotation.id)
      counts.targets += 1
    }
    return record
  }

  /// What pycocotools needs to turn `segmentation` into a `height × width` mask without failing: polygons whose
  /// first has more than 4 values (frPyObjects reads 4 as a box) and finite coordinates; an RLE of the image's
  /// size whose runs cover it.
  static func check(_ segmentation: COCOInstances.Segmentation, width: Int, height: Int, path: String,
                    field: String) throws {
    switch segmentation {
    case let .polygons(polygons):
      guard let first = polygons.first, first.count > 4 else {
        throw DatasetError.invalidField(
          path: path, field: field, value: polygons.first.map { "a first polygon of \($0.count) values" } ?? "[]",
          expected: "polygons [[x1, y1, x2, y2, x3, y3, …], …] whose first has at least 3 points")
      }
      for (index, polygon) in polygons.enumerated() where !polygon.allSatisfy({ $0.isFinite && abs($0) <= 1e8 }) {
        throw DatasetError.invalidField(path: path, field: "\(field)[\(index)]", value: "\(polygon.prefix(8))",
                                        expected: "finite coordinates within ±1e8")
      }
    case let .rle(rle):
      guard rle.height == height && rle.width == width else {
        throw DatasetError.invalidField(path: path, field: field + ".size", value: "[\(rle.height), \(rle.width)]",
                                        expected: "the image's [height, width] = [\(height), \(width)]")
      }
      let covered = rle.counts.reduce(0) { $0 + Int($1) }
      guard covered == height * width else {
        throw DatasetError.invalidField(path: path, field: field + ".counts", value: "runs covering \(covered) pixels",
                                        expected: "runs covering the \(height)×\(width) = \(height * width) pixels")
      }
    }
  }

  /// Each target's mask at the annotated size (`height × width`, 1-channel, 1 inside), as `_poly2mask` +
  /// `maskUtils.decode`: polygons rasterised by pycocotools' rule and merged; RLEs decoded. `path` names the json.
  public func bitmaps(path: String) throws -> [Image] {
    try zip(segmentations, annotationIDs).map { segmentation, annotationID in
      let field = "annotations[id=\(annotationID)].segmentation"
      do {
        switch segmentation {
        case let .polygons(polygons):
          return try COCORLE(polygons: polygons, height: height, width: width, field: field).mask()
        case let .rle(rle):
          try Self.check(segmentation, width: width, height: height, path: path, field: field)
          return try rle.mask()
        }
      } catch let DatasetError.invalidField(_, field, value, expected) {
        throw DatasetError.invalidField(path: path, field: field, value: value, expected: expected)
      } catch let DatasetError.invalidRLE(reason) {
        throw DatasetError.invalidField(path: path, field: field, value: reason, expected: "a valid COCO RLE")
      }
    }
  }
}
