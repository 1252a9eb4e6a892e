// COCO instances annotation files (annotations/instances_<split>.json): images, categories, and annotations with
// bbox [x, y, w, h], iscrowd, area and segmentation (polygons, or RLE compressed or not), as pycocotools reads them.
import Foundation

/// The contents of a COCO instances json file.
public struct COCOInstances: Sendable, Decodable {
  /// An entry of `images`.
  public struct ImageInfo: Sendable, Equatable, Decodable {
    public var id: Int
    public var fileName: String
    public var width: Int
    public var height: Int

    enum CodingKeys: String, CodingKey {
      case id, width, height
      case fileName = "file_name"
    }
  }

  /// An entry of `categories`. COCO's ids run 1…90 with gaps.
  public struct Category: Sendable, Equatable, Decodable {
    public var id: Int
    public var name: String
    public var supercategory: String?
  }

  /// An object's outline: polygons `[x1, y1, x2, y2, …]` in pixels, or a run-length-encoded mask
  /// (iscrowd annotations and results files).
  public enum Segmentation: Sendable, Equatable, Decodable {
    case polygons([[Double]])
    case rle(COCORLE)

    private enum Keys: String, CodingKey { case counts, size }

    public init(from decoder: any Decoder) throws {
      if let polygons = try? decoder.singleValueContainer().decode([[Double]].self) {
        self = .polygons(polygons)
        return
      }
      let container = try decoder.container(keyedBy: Keys.self)
      let size = try container.decode([Int].self, forKey: .size)
      guard size.count == 2 else {
        throw DecodingError.dataCorruptedError(forKey: .size, in: container,
                                               debugDescription: "RLE size must be [height, width], got \(size)")
      }
      if let string = try? container.decode(String.self, forKey: .counts) {
        do {
          self = .rle(try COCORLE(height: size[0], width: size[1], compressed: string))
        } catch {
          throw DecodingError.dataCorruptedError(forKey: .counts, in: container, debugDescription: "\(error)")
        }
      } else {
        let runs = try container.decode([Int64].self, forKey: .counts)
        guard let counts = try? runs.map({ run throws -> UInt32 in
          guard let count = UInt32(exactly: run) else { throw DatasetError.invalidRLE(reason: "") }
          return count
        }) else {
          throw DecodingError.dataCorruptedError(forKey: .counts, in: container,
                                                 debugDescription: "RLE run lengths must be in 0…2³²−1")
        }
        self = .rle(COCORLE(height: size[0], width: size[1], counts: counts))
      }
    }
  }

  /// An entry of `annotations`.
  public struct Annotation: Sendable, Equatable, Decodable {
    public var id: Int
    public var imageID: Int
    public var categoryID: Int
    /// [x, y, width, height] in pixels, x and y of the top-left corner (0-based, continuous coordinates).
    public var bbox: [Double]
    public var area: Double
    public var isCrowd: Bool
    public var segmentation: Segmentation?

    enum CodingKeys: String, CodingKey {
      case id, bbox, area, segmentation, iscrowd
      case imageID = "image_id"
      case categoryID = "category_id"
    }

    public init(from decoder: any Decoder) throws {
      let container = try decoder.container(keyedBy: CodingKeys.self)
      id = try container.decode(Int.self, forKey: .id)
      imageID = try container.decode(Int.self, forKey: .imageID)
      categoryID = try container.decode(Int.self, forKey: .categoryID)
      bbox = try container.decode([Double].self, forKey: .bbox)
      guard bbox.count == 4 else {
        throw DecodingError.dataCorruptedError(forKey: .bbox, in: container,
                                               debugDescription: "bbox must be [x, y, w, h], got \(bbox.count) values")
      }
      area = try container.decode(Double.self, forKey: .area)
      isCrowd = try container.decodeIfPresent(Int.self, forKey: .iscrowd).map { $0 != 0 } ?? false
      segmentation = try container.decodeIfPresent(Segmentation.self, forKey: .segmentation)
    }
  }

  public var images: [ImageInfo]
  public var categories: [Category]
  public var annotations: [Annotation]

  enum CodingKeys: String, CodingKey { case images, categories, annotations }

  public init(from decoder: any Decoder) throws {
    let container = try decoder.container(keyedBy: CodingKeys.self)
    images = try container.decode([ImageInfo].self, forKey: .images)
    categories = try container.decode([Category].self, forKey: .categories)
    annotations = try container.decodeIfPresent([Annotation].self, forKey: .annotations) ?? []
  }

  /// Parses an instances json; `path` names the file in errors. Throws `DatasetError.malformedJSON` naming the
  /// JSON path of the first problem (e.g. `annotations[3].bbox`).
  public init(json: Data, path: String) throws {
    do {
      self = try JSONDecoder().decode(COCOInstances.self, from: json)
    } catch let error as DecodingError {
      throw DatasetError.malformedJSON(path: path, reason: DecodingError.explained(error))
    } catch {
      throw DatasetError.malformedJSON(path: path, reason: "\(error)")
    }
  }
}

/// A COCO split: its instances json and the directory its `file_name`s are relative to.
public struct COCODataset: Sendable {
  public let annotationFile: URL
  public let imageDirectory: URL
  public let instances: COCOInstances

  /// Reads `annotationFile`. `imageDirectory` defaults to the standard layout: for
  /// `coco/annotations/instances_val2017.json`, the first of `coco/val2017`, `coco/images/val2017`,
  /// `annotations/val2017` and the json's own directory that holds the first image.
  public init(annotationFile: URL, imageDirectory: URL? = nil) throws {
    let bytes = try DatasetFiles.readBytes(annotationFile, hint: "Check the path of the COCO instances json.")
    let instances = try COCOInstances(json: Data(bytes), path: annotationFile.path)
    self.annotationFile = annotationFile
    self.instances = instances
    if let imageDirectory {
      try DatasetFiles.requireDirectory(imageDirectory, hint: "The COCO image directory does not exist.")
      self.imageDirectory = imageDirectory
    } else {
      let candidates = Self.imageDirectoryCandidates(for: annotationFile)
      let first = instances.images.first?.fileName
      self.imageDirectory = candidates.first { directory in
        DatasetFiles.isDirectory(directory)
          && (first.map { DatasetFiles.isFile(directory.appendingPathComponent($0)) } ?? true)
      } ?? candidates[0]
    }
  }

  /// Where images usually live relative to an instances json.
  static func imageDirectoryCandidates(for annotationFile: URL) -> [URL] {
    let name = annotationFile.deletingPathExtension().lastPathComponent
    let split = name.hasPrefix("instances_") ? String(name.dropFirst("instances_".count)) : name
    let directory = annotationFile.deletingLastPathComponent()
    let parent = directory.deletingLastPathComponent()
    return [parent.appendingPathComponent(split), parent.appendingPathComponent("images/\(split)"),
            directory.appendingPathComponent(split), directory, parent]
  }

  public func imageURL(_ image: COCOInstances.ImageInfo) -> URL {
    imageDirectory.appendingPathComponent(image.fileName)
  }

  /// Category ids in ascending order; a category's contiguous label (0-based) is its index here.
  public var sortedCategoryIDs: [Int] { instances.categories.map(\.id).sorted() }

  /// Annotations grouped by image id.
  public func annotationsByImage() -> [Int: [COCOInstances.Annotation]] {
    Dictionary(grouping: instances.annotations, by: \.imageID)
  }
}

extension DecodingError {
  /// A decoding error as "where: what" (e.g. `[12].bbox: Expected to decode Double …`), for messages that name
  /// the entry of a json file (COCO instances here, detection results in Evaluation).
  public static func explained(_ error: DecodingError) -> String {
    func location(_ path: [any CodingKey]) -> String {
      path.map { key in key.intValue.map { "[\($0)]" } ?? ".\(key.stringValue)" }.joined()
        .trimmingPrefix(".").description
    }
    switch error {
    case let .keyNotFound(key, context):
      let parent = location(context.codingPath)
      return "missing field '\(key.stringValue)'" + (parent.isEmpty ? "" : " in \(parent)")
    case let .typeMismatch(_, context), let .valueNotFound(_, context):
      return "\(location(context.codingPath)): \(context.debugDescription)"
    case let .dataCorrupted(context):
      let place = location(context.codingPath)
      let underlying = context.underlyingError.map { " (\($0.localizedDescription))" } ?? ""
      return (place.isEmpty ? "" : "\(place): ") + context.debugDescription + underlying
    @unknown default:
      return "\(error)"
    }
  }
}
