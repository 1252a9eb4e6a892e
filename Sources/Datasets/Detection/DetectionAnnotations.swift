// From a VOC annotation to detection objects, as the two reference loaders turn `<bndbox>` text into boxes:
// - mmdet 2.x mmdet/datasets/xml_style.py `XMLDataset.get_ann_info`: `int(float(text))` per coordinate (truncation
//   toward zero), then `np.array(bboxes, ndmin=2) - 1` on ALL FOUR coordinates, float32; difficult objects (and
//   boxes under `min_size`, unset for VOC) go to `bboxes_ignore`, which the train pipeline does not collect;
//   objects of a class not in CLASSES are skipped (`continue`).
// - detectron2 detectron2/data/datasets/pascal_voc.py `load_voc_instances`: `float(text)`, `xmin -= 1`, `ymin -= 1`,
//   xmax and ymax as written ("1-based pixel indices, inclusive" → continuous [xmin − 1, xmax]); difficult objects
//   are kept ("We include difficult samples in training"); an unknown class name raises in `class_names.index`.
import Foundation

/// How `<bndbox>` text becomes a box (x1, y1, x2, y2) in pixels.
public enum VOCBoxConvention: String, Sendable, Codable, CaseIterable {
  /// mmdet 2.x: `int(float(v)) − 1` for all four coordinates (a box written 1…W becomes 0…W−1).
  case mmdet
  /// detectron2: `float(v)`, xmin − 1 and ymin − 1 (a box written 1…W becomes 0…W).
  case detectron2

  /// The box of `box` in this convention, float32 as both references store it.
  public func box(_ box: VOCAnnotation.Box) -> (x1: Float, y1: Float, x2: Float, y2: Float) {
    switch self {
    case .mmdet:
      // Python's int() of a float truncates toward zero; the −1 is applied to the integers (numpy int64), then
      // cast to float32.
      func truncated(_ v: Double) -> Float { Float(v.rounded(.towardZero) - 1) }
      return (truncated(box.xmin), truncated(box.ymin), truncated(box.xmax), truncated(box.ymax))
    case .detectron2:
      return (Float(box.xmin - 1), Float(box.ymin - 1), Float(box.xmax), Float(box.ymax))
    }
  }
}

/// What training does with `<difficult>1</difficult>` objects. Evaluation always keeps them, flagged.
public enum DifficultHandling: String, Sendable, Codable, CaseIterable {
  /// mmdet 2.x (the seed's config): they go to `bboxes_ignore` and are no training target.
  case ignore
  /// detectron2: they are ordinary training targets.
  case keep
}

/// Whether a dataset is read for training (mmdet's `test_mode=False`: images filtered) or for evaluation (all kept).
public enum DetectionDatasetUse: String, Sendable, Codable {
  case training
  case evaluation
}

/// One annotated object: box in the convention's pixel frame, class index into the dataset's class list.
public struct DetectionObject: Sendable, Equatable {
  public var x1: Float, y1: Float, x2: Float, y2: Float
  public var classIndex: Int
  public var isDifficult: Bool

  public init(x1: Float, y1: Float, x2: Float, y2: Float, classIndex: Int, isDifficult: Bool) {
    (self.x1, self.y1, self.x2, self.y2) = (x1, y1, x2, y2)
    self.classIndex = classIndex
    self.isDifficult = isDifficult
  }

  /// Width or height ≤ 0 (mmdet: an annotated one-pixel-wide box, xmin = xmax, has width 0).
  public var hasZeroArea: Bool { x2 - x1 <= 0 || y2 - y1 <= 0 }

  /// Whether some part lies outside the `width × height` image (the continuous frame [0, width] × [0, height]).
  public func crossesBorder(width: Int, height: Int) -> Bool {
    x1 < 0 || y1 < 0 || x2 > Float(width) || y2 > Float(height)
  }
}

/// How many images and objects were dropped or flagged while reading, so the caller can log every one.
public struct DetectionLoadCounts: Sendable, Equatable, CustomStringConvertible {
  /// Images named by the split lists.
  public var listedImages = 0
  /// Training only: images with no object of a listed class (difficult ones count as objects), dropped as mmdet's
  /// `_filter_imgs` (filter_empty_gt) and detectron2's `filter_images_with_only_crowd_annotations` drop them.
  public var imagesWithoutObjects = 0
  /// Training with the mmdet convention only: images whose annotated shorter side is under 32 px, dropped as
  /// mmdet's `_filter_imgs(min_size=32)` drops them.
  public var imagesTooSmall = 0
  /// Objects kept (difficult included) in the images kept.
  public var objects = 0
  /// Difficult objects among `objects`: flagged for evaluation; no training target with `DifficultHandling.ignore`.
  public var difficultObjects = 0
  /// Objects whose class is not in the class list, skipped (mmdet convention; detectron2's refuses the file).
  public var unknownClassObjects = 0
  /// Kept objects with width or height ≤ 0 after the convention (kept, as both references keep them; they match
  /// no anchor).
  public var zeroAreaBoxes = 0
  /// Kept objects reaching outside the annotated image size (kept; the train pipeline clips them to the resized
  /// image as mmdet's Resize with bbox_clip_border=True does).
  public var boxesCrossingBorder = 0

  public init() {}

  static func + (a: Self, b: Self) -> Self {
    var sum = a
    sum.listedImages += b.listedImages
    sum.imagesWithoutObjects += b.imagesWithoutObjects
    sum.imagesTooSmall += b.imagesTooSmall
    sum.objects += b.objects
    sum.difficultObjects += b.difficultObjects
    sum.unknownClassObjects += b.unknownClassObjects
    sum.zeroAreaBoxes += b.zeroAreaBoxes
    sum.boxesCrossingBorder += b.boxesCrossingBorder
    return sum
  }

  /// One log line.
  public var description: String {
    "\(listedImages) images listed, \(imagesWithoutObjects) without objects and \(imagesTooSmall) under 32 px "
      + "dropped; \(objects) objects (\(difficultObjects) difficult), \(unknownClassObjects) of unknown classes "
      + "skipped, \(zeroAreaBoxes) with zero area and \(boxesCrossingBorder) crossing the image border kept"
  }
}

extension VOCAnnotation {
  /// The objects of a listed class in file order, converted by `convention`, and the counts of this one file.
  /// `path` names the file in errors.
  ///
  /// Refused (typed error naming the file): with the detectron2 convention, a class not in `classes` (detectron2
  /// raises there); with either, a box written with xmax < xmin or ymax < ymin (mmdet would train on a
  /// negative-width box; no VOC file has one, so it is taken as a broken file).
  func detectionObjects(classes: [String: Int], convention: VOCBoxConvention,
                        path: String) throws -> (objects: [DetectionObject], counts: DetectionLoadCounts) {
    var counts = DetectionLoadCounts()
    var kept: [DetectionObject] = []
    for (index, object) in objects.enumerated() {
      let field = "annotation/object[\(index + 1)]"
      guard let classIndex = classes[object.name] else {
        if convention == .detectron2 {
          throw DatasetError.invalidField(
            path: path, field: field + "/name", value: object.name,
            expected: "one of the \(classes.count) classes of the dataset (\(classes.keys.sorted().prefix(5).joined(separator: ", "))…)")
        }
        counts.unknownClassObjects += 1
        continue
      }
      let box = object.box
      guard box.xmax >= box.xmin && box.ymax >= box.ymin else {
        throw DatasetError.invalidField(
          path: path, field: field + "/bndbox",
          value: "xmin \(box.xmin), ymin \(box.ymin), xmax \(box.xmax), ymax \(box.ymax)",
          expected: "a box with xmin ≤ xmax and ymin ≤ ymax")
      }
      let (x1, y1, x2, y2) = convention.box(box)
      let converted = DetectionObject(x1: x1, y1: y1, x2: x2, y2: y2, classIndex: classIndex,
                                      isDifficult: object.isDifficult)
      counts.objects += 1
      if object.isDifficult { counts.difficultObjects += 1 }
      if converted.hasZeroArea { counts.zeroAreaBoxes += 1 }
      if converted.crossesBorder(width: width, height: height) { counts.boxesCrossingBorder += 1 }
      kept.append(converted)
    }
    return (kept, counts)
  }
}
