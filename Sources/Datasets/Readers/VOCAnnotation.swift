// One PASCAL VOC Annotations/<id>.xml file, parsed with FoundationXML's XMLParser.
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif

/// The contents of a VOC annotation XML file.
public struct VOCAnnotation: Sendable, Equatable {
  /// A box in VOC's pixel coordinates: 1-based and inclusive, exactly as written in the file (mmdet 2.x's
  /// XMLDataset subtracts 1 from all four, detectron2 from xmin and ymin: see `VOCBoxConvention`).
  public struct Box: Sendable, Equatable {
    public var xmin: Double
    public var ymin: Double
    public var xmax: Double
    public var ymax: Double

    public init(xmin: Double, ymin: Double, xmax: Double, ymax: Double) {
      (self.xmin, self.ymin, self.xmax, self.ymax) = (xmin, ymin, xmax, ymax)
    }
  }

  /// An `<object>`. Its `<part>` children (VOC2012 person layout) are not read.
  public struct Object: Sendable, Equatable {
    public var name: String
    public var pose: String?
    /// `<truncated>`; 0 when absent.
    public var isTruncated: Bool
    /// `<difficult>`; 0 when absent (as mmdetection reads it).
    public var isDifficult: Bool
    public var box: Box

    public init(name: String, pose: String? = nil, isTruncated: Bool = false, isDifficult: Bool = false, box: Box) {
      self.name = name
      self.pose = pose
      self.isTruncated = isTruncated
      self.isDifficult = isDifficult
      self.box = box
    }
  }

  public var filename: String
  public var width: Int
  public var height: Int
  /// `<size><depth>`, when present.
  public var depth: Int?
  /// `<segmented>`: whether SegmentationClass has a mask for this image; false when absent.
  public var isSegmented: Bool
  public var objects: [Object]

  public init(filename: String, width: Int, height: Int, depth: Int? = 3, isSegmented: Bool = false,
              objects: [Object]) {
    self.filename = filename
    self.width = width
    self.height = height
    self.depth = depth
    self.isSegmented = isSegmented
    self.objects = objects
  }

  /// Reads and parses an annotation file.
  public init(contentsOf url: URL) throws {
    try DatasetFiles.requireFile(url, hint: "Every image of a VOC split needs Annotations/<id>.xml.")
    let data: Data
    do { data = try Data(contentsOf: url) } catch {
      throw DatasetError.unreadableFile(path: url.path, reason: error.localizedDescription)
    }
    try self.init(xml: data, path: url.path)
  }

  /// Parses annotation XML; `path` names the file in errors. Required: `filename`, `size/width`, `size/height`,
  /// and each object's `name` and `bndbox/{xmin,ymin,xmax,ymax}`.
  public init(xml: Data, path: String) throws {
    // swift-corelibs-foundation's XMLParser force-unwraps names it cannot decode as UTF-8 (a trap, not an error),
    // so text that is not UTF-8 is rejected first. VOC files are ASCII and have no DTD; one is refused as well
    // (no entity expansion from untrusted files).
    guard String(validating: xml, as: UTF8.self) != nil else {
      throw DatasetError.malformedXML(path: path, reason: "the file is not UTF-8 text")
    }
    if xml.range(of: Data("<!DOCTYPE".utf8)) != nil || xml.range(of: Data("<!ENTITY".utf8)) != nil {
      throw DatasetError.malformedXML(path: path, reason: "it has a document type declaration, which VOC files do not")
    }
    // The same XMLParser passes a processing instruction without data (`<?x?>`) to a non-optional pointer and
    // reads through null (a crash), so processing instructions are refused too; VOC files have none besides the
    // XML declaration at the very start.
    if let instruction = xml.range(of: Data("<?".utf8), options: [], in: xmlDeclarationEnd(xml)..<xml.endIndex) {
      let line = xml[..<instruction.lowerBound].reduce(1) { $0 + ($1 == UInt8(ascii: "\n") ? 1 : 0) }
      throw DatasetError.malformedXML(
        path: path, reason: "it has a processing instruction (<?…?>) at line \(line), which VOC files do not")
    }
    let collector = VOCXMLCollector()
    let parser = XMLParser(data: xml)
    parser.delegate = collector
    parser.shouldResolveExternalEntities = false
    guard parser.parse() else {
      let reason = parser.parserError.map { "\($0.localizedDescription)" } ?? "unknown parser error"
      throw DatasetError.malformedXML(path: path, reason: "\(reason) (line \(parser.lineNumber))")
    }
    guard collector.isComplete else {
      throw DatasetError.malformedXML(path: path, reason: "the document ends before its root element is closed")
    }
    guard collector.rootName == "annotation" else {
      throw DatasetError.missingField(path: path, field: "annotation")
    }
    let fields = collector.fields
    func required(_ key: String, in fields: [String: String], as field: String) throws -> String {
      guard let value = fields[key], !value.isEmpty else { throw DatasetError.missingField(path: path, field: field) }
      return value
    }
    func integer(_ text: String, field: String) throws -> Int {
      if let value = Int(text) { return value }
      if let value = Double(text), let exact = Int(exactly: value) { return exact }
      throw DatasetError.invalidField(path: path, field: field, value: text, expected: "an integer")
    }
    func flag(_ text: String?, field: String) throws -> Bool {
      guard let text, !text.isEmpty else { return false }
      return try integer(text, field: field) != 0
    }
    filename = try required("filename", in: fields, as: "annotation/filename")
    width = try integer(try required("size/width", in: fields, as: "annotation/size/width"),
                        field: "annotation/size/width")
    height = try integer(try required("size/height", in: fields, as: "annotation/size/height"),
                         field: "annotation/size/height")
    guard width > 0 && height > 0 else {
      throw DatasetError.invalidField(path: path, field: "annotation/size", value: "\(width)×\(height)",
                                      expected: "a positive width and height")
    }
    depth = try fields["size/depth"].flatMap { $0.isEmpty ? nil : try integer($0, field: "annotation/size/depth") }
    isSegmented = try flag(fields["segmented"], field: "annotation/segmented")
    objects = try collector.objects.enumerated().map { index, fields in
      let prefix = "annotation/object[\(index + 1)]/"
      func coordinate(_ name: String) throws -> Double {
        let text = try required("bndbox/" + name, in: fields, as: prefix + "bndbox/" + name)
        guard let value = Double(text), value.isFinite else {
          throw DatasetError.invalidField(path: path, field: prefix + "bndbox/" + name, value: text,
                                          expected: "a pixel coordinate")
        }
        return value
      }
      let box = Box(xmin: try coordinate("xmin"), ymin: try coordinate("ymin"),
                    xmax: try coordinate("xmax"), ymax: try coordinate("ymax"))
      return Object(name: try required("name", in: fields, as: prefix + "name"),
                    pose: fields["pose"],
                    isTruncated: try flag(fields["truncated"], field: prefix + "truncated"),
                    isDifficult: try flag(fields["difficult"], field: prefix + "difficult"),
                    box: box)
    }
  }
}

/// The index just past a leading XML declaration (`<?xml …?>`, after an optional byte-order mark), or the start.
private func xmlDeclarationEnd(_ xml: Data) -> Data.Index {
  let start = xml.startIndex + (xml.starts(with: [0xEF, 0xBB, 0xBF]) ? 3 : 0)
  guard xml[start...].starts(with: Data("<?xml".utf8)),
        let end = xml.range(of: Data("?>".utf8), options: [], in: (start + 5)..<xml.endIndex) else {
    return xml.startIndex
  }
  return end.upperBound
}

/// Collects leaf text under `<annotation>` by relative path ("size/width"), and per `<object>` ("bndbox/xmin").
private final class VOCXMLCollector: NSObject, XMLParserDelegate {
  var rootName: String?
  /// Whether the root element was closed: libxml2 accepts some truncated documents without an error.
  var isComplete = false
  var fields: [String: String] = [:]
  var objects: [[String: String]] = []
  private var path: [String] = []
  private var hasChildren: [Bool] = []
  private var text = ""

  func parser(_ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?,
              qualifiedName: String?, attributes: [String: String] = [:]) {
    if path.isEmpty { rootName = elementName }
    if !hasChildren.isEmpty { hasChildren[hasChildren.count - 1] = true }
    path.append(elementName)
    hasChildren.append(false)
    text = ""
    if path.count == 2 && elementName == "object" { objects.append([:]) }
  }

  func parser(_ parser: XMLParser, foundCharacters string: String) { text += string }

  func parser(_ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?,
              qualifiedName: String?) {
    if hasChildren.last == false && path.count >= 2 {
      let value = text.trimmingCharacters(in: .whitespacesAndNewlines)
      if path[1] == "object" && path.count >= 3 {
        let key = path[2...].joined(separator: "/")
        if objects[objects.count - 1][key] == nil { objects[objects.count - 1][key] = value }
      } else if path[1] != "object" {
        let key = path[1...].joined(separator: "/")
        if fields[key] == nil { fields[key] = value }
      }
    }
    path.removeLast()
    hasChildren.removeLast()
    text = ""
    if path.isEmpty { isComplete = true }
  }
}
