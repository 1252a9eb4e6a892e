// Detections → COCO results json, as mmdet 2.x mmdet/datasets/coco.py `CocoDataset._det2json` / `_segm2json` +
// `results2json` write them (mmcv.dump → json.dump) for pycocotools' `COCO.loadRes`:
//   records go image by image (dataset order), then label by label (0, 1, …; mmdet's `bbox2result` groups the
//   detections per class keeping their order), then in detection order within a label;
//   bbox = xyxy2xywh of the float32 box: `bbox.tolist()` (exact float32 values as float64), then x2 − x1 and
//   y2 − y1 in float64; score = float(float32 score); category_id = cat_ids[label];
//   segm records carry the same bbox and score plus `segmentation` = pycocotools `encode` of the binary mask at the
//   original image size, {"size": [h, w], "counts": compressed string}.
// Note for the evaluation: because every segm record has a bbox, `loadRes` reads the segm file as box results
// (area = w · h of the box, used for the small/medium/large ranges); `COCODetections` (Evaluation) does the same.
// Numbers are written as the shortest text that reads back to the same double (Python's repr does the same).
import Foundation

/// The detections of one image, in the original image frame, for a COCO results file.
public struct COCOImageDetections: Sendable, Equatable {
  /// The COCO image id.
  public var imageID: Int
  /// `[k · 4]` boxes (x1, y1, x2, y2) in original-image pixels, float32 as mmdet's `det_bboxes`.
  public var boxes: [Float]
  public var scores: [Float]
  /// 0-based labels; the category id is `categoryIDs[label]`.
  public var labels: [Int]
  /// One RLE per detection at the original image size (pycocotools `encode` of the column-major binary mask,
  /// `COCORLE(columnMajorMask:height:width:)`), or nil for box results only.
  public var masks: [COCORLE]?

  public init(imageID: Int, boxes: [Float], scores: [Float], labels: [Int], masks: [COCORLE]? = nil) {
    precondition(boxes.count == 4 * scores.count && labels.count == scores.count,
                 "COCO detections need 4 box values, a score and a label each; got \(boxes.count) box values, "
                   + "\(scores.count) scores and \(labels.count) labels.")
    precondition(masks == nil || masks!.count == scores.count,
                 "\(masks?.count ?? 0) masks for \(scores.count) detections.")
    precondition((boxes + scores).allSatisfy(\.isFinite), "COCO detections of image \(imageID) are not finite.")
    self.imageID = imageID
    self.boxes = boxes
    self.scores = scores
    self.labels = labels
    self.masks = masks
  }

  /// Detection indices in mmdet's record order: by label, then by position.
  var recordOrder: [Int] {
    labels.indices.sorted { labels[$0] != labels[$1] ? labels[$0] < labels[$1] : $0 < $1 }
  }
}

public enum COCOResultsJSON {
  /// The `.bbox.json` text (`_det2json`, or the first list of `_segm2json`): one record per detection.
  public static func boxRecords(_ images: [COCOImageDetections], categoryIDs: [Int]) -> String {
    records(images, categoryIDs: categoryIDs, withMasks: false)
  }

  /// The `.segm.json` text (the second list of `_segm2json`): one record per detection with its mask.
  public static func segmentationRecords(_ images: [COCOImageDetections], categoryIDs: [Int]) -> String {
    for image in images {
      precondition(image.masks != nil, "Segmentation records need masks; image \(image.imageID) has none.")
    }
    return records(images, categoryIDs: categoryIDs, withMasks: true)
  }

  /// `results2json(results, prefix)`: writes `<prefix>.bbox.json` and, when every image has masks,
  /// `<prefix>.segm.json`; returns the files written (bbox first).
  @discardableResult
  public static func write(_ images: [COCOImageDetections], categoryIDs: [Int], prefix: URL) throws -> [URL] {
    let directory = prefix.deletingLastPathComponent(), name = prefix.lastPathComponent
    let boxFile = directory.appendingPathComponent(name + ".bbox.json")
    try DatasetWriting.write(boxRecords(images, categoryIDs: categoryIDs), to: boxFile)
    guard !images.isEmpty && images.allSatisfy({ $0.masks != nil }) else { return [boxFile] }
    let segmentationFile = directory.appendingPathComponent(name + ".segm.json")
    try DatasetWriting.write(segmentationRecords(images, categoryIDs: categoryIDs), to: segmentationFile)
    return [boxFile, segmentationFile]
  }

  /// The xywh box of mmdet's `xyxy2xywh`: float32 corners as float64, widths in float64.
  public static func xywh(_ boxes: [Float], at index: Int) -> [Double] {
    let x1 = Double(boxes[4 * index]), y1 = Double(boxes[4 * index + 1])
    let x2 = Double(boxes[4 * index + 2]), y2 = Double(boxes[4 * index + 3])
    return [x1, y1, x2 - x1, y2 - y1]
  }

  private static func records(_ images: [COCOImageDetections], categoryIDs: [Int], withMasks: Bool) -> String {
    var lines: [String] = []
    for image in images {
      for index in image.recordOrder {
        let label = image.labels[index]
        precondition(categoryIDs.indices.contains(label),
                     "Label \(label) of image \(image.imageID) is outside the \(categoryIDs.count) categories.")
        var record = "{\"image_id\": \(image.imageID), \"bbox\": ["
          + xywh(image.boxes, at: index).map(number).joined(separator: ", ")
          + "], \"score\": \(number(Double(image.scores[index]))), \"category_id\": \(categoryIDs[label])"
        if withMasks, let rle = image.masks?[index] {
          record += ", \"segmentation\": {\"size\": [\(rle.height), \(rle.width)], \"counts\": "
            + COCOInstancesWriter.quoted(rle.compressedString) + "}"
        }
        lines.append(record + "}")
      }
    }
    return lines.isEmpty ? "[]\n" : "[" + lines.joined(separator: ",\n") + "]\n"
  }

  /// A finite double as the shortest text that reads back to it, with a ".0" on integral values as Python writes
  /// floats.
  static func number(_ value: Double) -> String {
    precondition(value.isFinite, "COCO results hold finite numbers only, got \(value).")
    return "\(value)"
  }
}
