// Writing COCO instances json (the format `COCOInstances` reads): images, categories, and annotations with
// bbox [x, y, w, h], area, iscrowd and a compressed-RLE segmentation, as pycocotools' `encode` + `toString` make it.
import Foundation

extension COCORLE {
  /// The RLE of a 1-channel mask (nonzero = inside), pycocotools `encode` of the same array: runs over the pixels
  /// in column-major order, starting with a (possibly empty) run of 0s.
  public init(encoding mask: Image) {
    precondition(mask.channels == 1, "An RLE encodes a 1-channel mask, got \(mask.channels) channels.")
    self.init(height: mask.height, width: mask.width,
              counts: Self.runs(width: mask.width, height: mask.height) { mask.pixels[$0] != 0 })
  }

  /// The RLE of the pixels of `labels` (row-major [height, width]) equal to `label`.
  init(labels: [UInt8], width: Int, height: Int, label: UInt8) {
    precondition(labels.count == width * height, "Labels of \(labels.count) do not fill \(width)×\(height).")
    self.init(height: height, width: width, counts: Self.runs(width: width, height: height) { labels[$0] == label })
  }

  /// Alternating run lengths of `isInside(row-major index)`, visiting pixels column by column.
  private static func runs(width: Int, height: Int, _ isInside: (Int) -> Bool) -> [UInt32] {
    var counts: [UInt32] = []
    var current = false
    var run: UInt32 = 0
    for x in 0..<width {
      for y in 0..<height {
        let inside = isInside(y * width + x)
        if inside != current {
          counts.append(run)
          run = 0
          current = inside
        }
        run += 1
      }
    }
    counts.append(run)
    return counts
  }
}

/// Builds a COCO instances json file.
public struct COCOInstancesWriter: Sendable {
  /// An entry of `annotations`, written with `iscrowd` 0 unless `isCrowd`.
  public struct Annotation: Sendable, Equatable {
    public var id: Int
    public var imageID: Int
    public var categoryID: Int
    /// [x, y, width, height], 0-based continuous pixel coordinates.
    public var bbox: [Double]
    public var area: Double
    public var isCrowd: Bool
    public var segmentation: COCORLE

    public init(id: Int, imageID: Int, categoryID: Int, bbox: [Double], area: Double, isCrowd: Bool = false,
                segmentation: COCORLE) {
      precondition(bbox.count == 4, "A COCO bbox is [x, y, w, h], got \(bbox.count) values.")
      self.id = id; self.imageID = imageID; self.categoryID = categoryID; self.bbox = bbox; self.area = area
      self.isCrowd = isCrowd; self.segmentation = segmentation
    }
  }

  public var description: String
  public var images: [COCOInstances.ImageInfo] = []
  public var categories: [COCOInstances.Category] = []
  public var annotations: [Annotation] = []

  public init(description: String) { self.description = description }

  /// The json text: keys in a fixed order, one image, category or annotation per line, integers without ".0",
  /// so equal contents give equal bytes.
  public func json() -> String {
    var lines: [String] = []
    lines.append("{\"info\": {\"description\": \(Self.quoted(description))},")
    lines.append("\"images\": [")
    lines += images.enumerated().map { index, image in
      "{\"id\": \(image.id), \"file_name\": \(Self.quoted(image.fileName)), \"width\": \(image.width), "
        + "\"height\": \(image.height)}" + (index + 1 < images.count ? "," : "")
    }
    lines.append("],")
    lines.append("\"categories\": [")
    lines += categories.enumerated().map { index, category in
      "{\"id\": \(category.id), \"name\": \(Self.quoted(category.name)), \"supercategory\": "
        + "\(Self.quoted(category.supercategory ?? category.name))}" + (index + 1 < categories.count ? "," : "")
    }
    lines.append("],")
    lines.append("\"annotations\": [")
    lines += annotations.enumerated().map { index, a in
      let rle = a.segmentation
      return "{\"id\": \(a.id), \"image_id\": \(a.imageID), \"category_id\": \(a.categoryID), "
        + "\"bbox\": [\(a.bbox.map(Self.number).joined(separator: ", "))], \"area\": \(Self.number(a.area)), "
        + "\"iscrowd\": \(a.isCrowd ? 1 : 0), \"segmentation\": {\"size\": [\(rle.height), \(rle.width)], "
        + "\"counts\": \(Self.quoted(rle.compressedString))}}" + (index + 1 < annotations.count ? "," : "")
    }
    lines.append("]}")
    return lines.joined(separator: "\n") + "\n"
  }

  /// Writes `json()` to `url`.
  public func write(to url: URL) throws {
    try DatasetWriting.write(json(), to: url)
  }

  static func number(_ value: Double) -> String {
    if let integer = Int(exactly: value) { return String(integer) }
    return value.isFinite ? "\(value)" : "0"
  }

  /// A JSON string literal. The RLE alphabet '0'…'o' includes '\\', which is escaped like any other.
  static func quoted(_ text: String) -> String {
    var out = "\""
    for scalar in text.unicodeScalars {
      switch scalar {
      case "\"": out += "\\\""
      case "\\": out += "\\\\"
      case "\n": out += "\\n"
      case "\r": out += "\\r"
      case "\t": out += "\\t"
      default:
        if scalar.value < 0x20 {
          out += String(format: "\\u%04x", scalar.value)
        } else {
          out.unicodeScalars.append(scalar)
        }
      }
    }
    return out + "\""
  }
}
