// The two inputs of a COCO evaluation: the ground truth (an instances json, read by Datasets' COCOInstances) and
// the detections (a results json), prepared as pycocotools' COCO() and COCO.loadRes() prepare them
// (PythonAPI/pycocotools/coco.py).
import Datasets
import Foundation

/// Ground truth for a COCO evaluation: the images (with their sizes, for rasterising polygons), the category ids
/// and the annotations of an instances json.
public struct COCOGroundTruth: Sendable {
  /// The file it came from, for messages.
  public let path: String
  public let images: [COCOInstances.ImageInfo]
  public let categoryIDs: [Int]
  public let annotations: [COCOInstances.Annotation]

  /// Checks what the evaluation relies on: unique image, category and annotation ids (pycocotools indexes them by
  /// id, so a repeated id silently replaces the earlier entry), finite boxes and areas.
  public init(instances: COCOInstances, path: String) throws(COCOEvalError) {
    self.path = path
    images = instances.images
    categoryIDs = instances.categories.map(\.id)
    annotations = instances.annotations
    try Self.requireUnique(images.map(\.id), kind: "images", path: path)
    try Self.requireUnique(categoryIDs, kind: "categories", path: path)
    try Self.requireUnique(annotations.map(\.id), kind: "annotations", path: path)
    for image in images where image.width <= 0 || image.height <= 0 {
      throw .invalidEntry(path: path, entry: "image id \(image.id)",
                          reason: "its size is \(image.width)×\(image.height); width and height must be positive")
    }
    for annotation in annotations where !(annotation.bbox + [annotation.area]).allSatisfy(\.isFinite) {
      throw .invalidEntry(path: path, entry: "annotation id \(annotation.id)",
                          reason: "bbox \(annotation.bbox) and area \(annotation.area) must be finite numbers")
    }
  }

  /// Reads an instances json (`--gt`).
  public static func load(_ url: URL) throws(COCOEvalError) -> COCOGroundTruth {
    let data = try readFile(url)
    let instances: COCOInstances
    do {
      instances = try COCOInstances(json: data, path: url.path)
    } catch let error as DatasetError {
      throw .malformedJSON(path: url.path, reason: reason(of: error),
                           hint: "The ground truth must be a COCO instances json (images, categories, annotations).")
    } catch {
      throw .malformedJSON(path: url.path, reason: "\(error)", hint: "")
    }
    return try COCOGroundTruth(instances: instances, path: url.path)
  }

  private static func requireUnique(_ ids: [Int], kind: String, path: String) throws(COCOEvalError) {
    var seen = Set<Int>(minimumCapacity: ids.count)
    for id in ids where !seen.insert(id).inserted { throw .duplicateID(path: path, kind: kind, id: id) }
  }

  /// The reason inside a DatasetError.malformedJSON, without its generic sentence.
  private static func reason(of error: DatasetError) -> String {
    if case let .malformedJSON(_, reason) = error { return reason }
    return error.description
  }
}

/// One detection after pycocotools' `loadRes`: the box and area are always there, the segmentation when given
/// (or, for box results, the box's outline as a polygon).
public struct COCODetection: Sendable, Equatable {
  public var imageID: Int
  public var categoryID: Int
  public var score: Double
  /// [x, y, width, height]: as given, or for mask results without a box the mask's `toBbox`.
  public var bbox: [Double]
  /// Box results: width · height of the box (even when a mask is given too); mask results: the mask's pixel count.
  public var area: Double
  public var segmentation: COCOInstances.Segmentation?

  public init(imageID: Int, categoryID: Int, score: Double, bbox: [Double], area: Double,
              segmentation: COCOInstances.Segmentation?) {
    self.imageID = imageID
    self.categoryID = categoryID
    self.score = score
    self.bbox = bbox
    self.area = area
    self.segmentation = segmentation
  }
}

/// A results json (`--dt`): a list of `{image_id, category_id, score, bbox | segmentation}`.
public struct COCODetections: Sendable {
  public let path: String
  public let detections: [COCODetection]

  /// One entry as written in the file.
  public struct Entry: Sendable, Equatable, Decodable {
    public var imageID: Int
    public var categoryID: Int
    public var score: Double?
    public var bbox: [Double]?
    public var segmentation: COCOInstances.Segmentation?

    enum CodingKeys: String, CodingKey {
      case score, bbox, segmentation
      case imageID = "image_id"
      case categoryID = "category_id"
    }

    public init(imageID: Int, categoryID: Int, score: Double?, bbox: [Double]?,
                segmentation: COCOInstances.Segmentation?) {
      self.imageID = imageID
      self.categoryID = categoryID
      self.score = score
      self.bbox = bbox
      self.segmentation = segmentation
    }
  }

  /// Prepares entries as `COCO.loadRes` does. The FIRST entry decides the kind of the whole file: if it has a
  /// non-empty `bbox`, every entry is a box result (area = w · h, segmentation = the box's outline when absent);
  /// otherwise, if it has a `segmentation`, every entry is a mask result (area = the mask's pixel count, bbox =
  /// its `toBbox` when absent). Every image id must be one of the ground truth's images. No entries: no detections
  /// (pycocotools fails on an empty list; we evaluate it as "nothing detected").
  public init(entries: [Entry], path: String, groundTruth: COCOGroundTruth) throws(COCOEvalError) {
    self.path = path
    guard let first = entries.first else {
      detections = []
      return
    }
    let imageSizes = Dictionary(groundTruth.images.map { ($0.id, ($0.height, $0.width)) },
                                uniquingKeysWith: { a, _ in a })
    let boxResults = !(first.bbox ?? []).isEmpty
    guard boxResults || first.segmentation != nil else {
      throw .invalidEntry(path: path, entry: "[0]", reason: "it has neither a bbox nor a segmentation, so the file "
                            + "is neither box nor mask results (keypoint and caption results are not supported)")
    }
    var prepared: [COCODetection] = []
    prepared.reserveCapacity(entries.count)
    for (index, entry) in entries.enumerated() {
      guard let size = imageSizes[entry.imageID] else {
        throw .unknownImage(path: path, index: index, imageID: entry.imageID)
      }
      guard let score = entry.score, score.isFinite else {
        throw .invalidEntry(path: path, entry: "[\(index)]",
                            reason: entry.score == nil ? "it has no score" : "its score is \(entry.score!)")
      }
      if boxResults {
        guard let box = entry.bbox, box.count == 4, box.allSatisfy(\.isFinite) else {
          throw .invalidEntry(path: path, entry: "[\(index)]", reason: "bbox must be 4 finite numbers [x, y, w, h] "
                                + "(the file's first entry has a bbox, so every entry is a box result)")
        }
        let (x1, x2, y1, y2) = (box[0], box[0] + box[2], box[1], box[1] + box[3])
        let segmentation = entry.segmentation ?? .polygons([[x1, y1, x1, y2, x2, y2, x2, y1]])
        prepared.append(COCODetection(imageID: entry.imageID, categoryID: entry.categoryID, score: score,
                                      bbox: box, area: box[2] * box[3], segmentation: segmentation))
      } else {
        guard let segmentation = entry.segmentation else {
          throw .invalidEntry(path: path, entry: "[\(index)]", reason: "it has no segmentation "
                                + "(the file's first entry has no bbox, so every entry is a mask result)")
        }
        let mask = try COCOMasks.rle(segmentation, height: size.0, width: size.1, path: path,
                                     entry: "[\(index)].segmentation")
        let box = entry.bbox.flatMap { $0.count == 4 && $0.allSatisfy(\.isFinite) ? $0 : nil } ?? mask.boundingBox
        prepared.append(COCODetection(imageID: entry.imageID, categoryID: entry.categoryID, score: score,
                                      bbox: box, area: Double(UInt32(truncatingIfNeeded: mask.area)),
                                      segmentation: .rle(mask)))
      }
    }
    detections = prepared
  }

  /// Reads a results json (`--dt`) against its ground truth.
  public static func load(_ url: URL, groundTruth: COCOGroundTruth) throws(COCOEvalError) -> COCODetections {
    let data = try readFile(url)
    // The fast reader for plain results lists; JSONDecoder (for its error messages) when it declines.
    if let entries = COCOResultsParser.entries(data) {
      return try COCODetections(entries: entries, path: url.path, groundTruth: groundTruth)
    }
    let entries: [Entry]
    do {
      entries = try JSONDecoder().decode([Entry].self, from: data)
    } catch let error as DecodingError {
      throw .malformedJSON(path: url.path, reason: DecodingError.explained(error),
                           hint: "Detections must be a json list of {image_id, category_id, score, bbox | "
                             + "segmentation} objects, as detectors write for COCO.")
    } catch {
      throw .malformedJSON(path: url.path, reason: "\(error)", hint: "")
    }
    return try COCODetections(entries: entries, path: url.path, groundTruth: groundTruth)
  }
}

/// Turning segmentations into RLEs as pycocotools' `annToRLE` does.
enum COCOMasks {
  /// Polygons are rasterised at the image size and merged; an uncompressed or compressed RLE keeps its own size.
  static func rle(_ segmentation: COCOInstances.Segmentation, height: Int, width: Int, path: String, entry: String)
    throws(COCOEvalError) -> COCORLE
  {
    switch segmentation {
    case let .rle(rle):
      guard rle.height >= 0 && rle.width >= 0 else {
        throw .invalidEntry(path: path, entry: entry, reason: "RLE size \(rle.height)×\(rle.width) is negative")
      }
      return rle
    case let .polygons(polygons):
      do {
        return try COCORLE(polygons: polygons, height: height, width: width, field: entry)
      } catch let DatasetError.invalidField(_, field, value, expected) {
        throw .invalidEntry(path: path, entry: field, reason: "it is \(value); expected \(expected)")
      } catch {
        throw .invalidEntry(path: path, entry: entry, reason: "\(error)")
      }
    }
  }
}

/// Reads a whole file, naming it on failure.
func readFile(_ url: URL) throws(COCOEvalError) -> Data {
  guard FileManager.default.fileExists(atPath: url.path) else {
    throw .unreadableFile(path: url.path, reason: "no such file")
  }
  do {
    return try Data(contentsOf: url, options: .mappedIfSafe)
  } catch {
    throw .unreadableFile(path: url.path, reason: error.localizedDescription)
  }
}
