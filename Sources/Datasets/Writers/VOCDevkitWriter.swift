// Writing a PASCAL VOC devkit year directory in the layout `VOCDataset` (and the VOC devkit, mmdetection,
// mmsegmentation, MMSelfSup's create_voc_data_files.py) reads: JPEGImages, Annotations, ImageSets/Main,
// ImageSets/Segmentation and SegmentationClass.
import Foundation

/// Writes the files of one VOC year directory, e.g. `VOCdevkit/VOC2007`.
public struct VOCDevkitWriter: Sendable {
  public let root: URL

  /// Creates `root` and its Annotations, ImageSets/{Main,Segmentation}, JPEGImages and SegmentationClass folders.
  public init(root: URL) throws {
    self.root = root
    for folder in ["Annotations", "ImageSets/Main", "ImageSets/Segmentation", "JPEGImages", "SegmentationClass"] {
      try DatasetWriting.createDirectory(root.appendingPathComponent(folder))
    }
  }

  /// The year folder's name, written as `<folder>` in annotations.
  public var folder: String { root.lastPathComponent }

  /// JPEGImages/<id>.jpg.
  public func writeImage(_ image: Image, id: String, jpegQuality: Int = 90) throws {
    try image.write(to: root.appendingPathComponent("JPEGImages/\(id).jpg"), format: .jpeg, jpegQuality: jpegQuality)
  }

  /// Annotations/<id>.xml.
  public func writeAnnotation(_ annotation: VOCAnnotation, id: String) throws {
    try DatasetWriting.write(Self.xml(annotation, folder: folder), to: root.appendingPathComponent("Annotations/\(id).xml"))
  }

  /// SegmentationClass/<id>.png: a palette PNG of class indices (0 background, 255 void) with VOC's colour map.
  public func writeSegmentationMask(_ mask: Image, id: String) throws {
    try mask.writePalettePNG(to: root.appendingPathComponent("SegmentationClass/\(id).png"))
  }

  /// ImageSets/Main/<split>.txt and, for each class, ImageSets/Main/<class>_<split>.txt with one
  /// `<id> <flag>` line per image of the split (flag from `classificationFlag`). `objects[i]` belongs to `ids[i]`.
  public func writeMainSet(split: String, ids: [String], objects: [[VOCAnnotation.Object]], classes: [String]) throws {
    precondition(ids.count == objects.count, "VOC split \(split) has \(ids.count) ids and \(objects.count) object lists.")
    precondition(classes.allSatisfy { !$0.contains("_") && !$0.isEmpty },
                 "VOC class names must be non-empty and contain no '_' (VOCDataset drops such class files).")
    let main = root.appendingPathComponent("ImageSets/Main")
    try DatasetWriting.write(Self.list(ids), to: main.appendingPathComponent("\(split).txt"))
    for name in classes {
      // VOC's own files right-align the flag in two columns: "000005 -1", "000007  1".
      let lines = zip(ids, objects).map { id, objects in
        let flag = Self.classificationFlag(of: objects, className: name)
        return id + (flag < 0 ? " " : "  ") + String(flag)
      }
      try DatasetWriting.write(Self.list(lines), to: main.appendingPathComponent("\(name)_\(split).txt"))
    }
  }

  /// ImageSets/Segmentation/<split>.txt.
  public func writeSegmentationSet(split: String, ids: [String]) throws {
    try DatasetWriting.write(Self.list(ids), to: root.appendingPathComponent("ImageSets/Segmentation/\(split).txt"))
  }

  /// VOC's classification flag of an image for one class: 1 when it holds a non-difficult instance, 0 when it
  /// holds only difficult ones, −1 when it holds none.
  public static func classificationFlag(of objects: [VOCAnnotation.Object], className: String) -> Int {
    let instances = objects.filter { $0.name == className }
    if instances.contains(where: { !$0.isDifficult }) { return 1 }
    return instances.isEmpty ? -1 : 0
  }

  /// The annotation as VOC2007 writes it (tab-indented; `<segmented>`, `<pose>`, `<truncated>`, `<difficult>`
  /// always present; box coordinates 1-based inclusive).
  public static func xml(_ annotation: VOCAnnotation, folder: String) -> String {
    var lines = ["<annotation>",
                 "\t<folder>\(escaped(folder))</folder>",
                 "\t<filename>\(escaped(annotation.filename))</filename>",
                 "\t<source>", "\t\t<database>simsiam-bench scenes</database>", "\t</source>",
                 "\t<size>", "\t\t<width>\(annotation.width)</width>", "\t\t<height>\(annotation.height)</height>",
                 "\t\t<depth>\(annotation.depth ?? 3)</depth>", "\t</size>",
                 "\t<segmented>\(annotation.isSegmented ? 1 : 0)</segmented>"]
    for object in annotation.objects {
      lines += ["\t<object>",
                "\t\t<name>\(escaped(object.name))</name>",
                "\t\t<pose>\(escaped(object.pose ?? "Unspecified"))</pose>",
                "\t\t<truncated>\(object.isTruncated ? 1 : 0)</truncated>",
                "\t\t<difficult>\(object.isDifficult ? 1 : 0)</difficult>",
                "\t\t<bndbox>",
                "\t\t\t<xmin>\(coordinate(object.box.xmin))</xmin>",
                "\t\t\t<ymin>\(coordinate(object.box.ymin))</ymin>",
                "\t\t\t<xmax>\(coordinate(object.box.xmax))</xmax>",
                "\t\t\t<ymax>\(coordinate(object.box.ymax))</ymax>",
                "\t\t</bndbox>",
                "\t</object>"]
    }
    lines.append("</annotation>")
    return lines.joined(separator: "\n") + "\n"
  }

  private static func list(_ lines: [String]) -> String { lines.map { $0 + "\n" }.joined() }

  private static func coordinate(_ value: Double) -> String {
    Int(exactly: value).map(String.init) ?? "\(value)"
  }

  private static func escaped(_ text: String) -> String {
    text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
      .replacingOccurrences(of: ">", with: "&gt;")
  }
}
