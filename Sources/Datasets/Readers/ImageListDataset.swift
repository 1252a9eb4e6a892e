// Image-list files: one "relative/path.jpg label" per line, MMSelfSup's ImageList data source
// (mmselfsup/datasets/data_sources/image_list.py@v0.8.0); also Places205's csv lists ("path label" or "path,label").
import Foundation

/// A dataset listed in a text file, with paths relative to `root`.
///
/// As in MMSelfSup, the first line decides whether the list is labeled (two fields) or not (one field), and every
/// line must then have the same number of fields. Fields are separated by whitespace; a line without whitespace but
/// with a comma is split at its last comma (csv lists). In a `.csv` file, a first line whose label is not an integer
/// is a header and is skipped. Blank lines are skipped.
public struct ImageListDataset: Sendable {
  /// One line of the list.
  public struct Sample: Sendable, Equatable {
    public var url: URL
    /// The path as written in the list.
    public var relativePath: String
    /// nil in an unlabeled list.
    public var label: Int?
  }

  public let listFile: URL
  public let root: URL
  public let samples: [Sample]
  /// Whether the lines carry labels.
  public let isLabeled: Bool

  /// Reads `listFile`; paths are resolved against `root` (default: the list file's directory). Throws
  /// `DatasetError.malformedLine` naming the line when a line does not parse. Files are not checked here.
  public init(listFile: URL, root: URL? = nil) throws {
    let root = root ?? listFile.deletingLastPathComponent()
    try DatasetFiles.requireDirectory(root, hint: "The image root of the list does not exist; check --root.")
    let lines = try DatasetFiles.readLines(listFile, hint: "Check the path of the image-list file.")
    let isCSV = listFile.pathExtension.lowercased() == "csv"
    var samples: [Sample] = []
    var fieldCount: Int?
    for (index, line) in lines.enumerated() {
      var fields = line.whitespaceFields
      if fields.count == 1, let comma = fields[0].lastIndex(of: ",") {
        fields = [fields[0][..<comma], fields[0][fields[0].index(after: comma)...]]
      }
      if fields.isEmpty { continue }
      if isCSV && samples.isEmpty && fieldCount == nil && fields.count == 2 && Int(fields[1]) == nil { continue }
      let expected = fieldCount ?? fields.count
      guard fields.count == expected && (expected == 1 || expected == 2) else {
        throw DatasetError.malformedLine(
          path: listFile.path, line: index + 1, text: String(line),
          expected: fieldCount == 2 ? "'relative/path label' like the first line"
            : fieldCount == 1 ? "a single path like the first line" : "'relative/path' or 'relative/path label'")
      }
      fieldCount = expected
      var label: Int?
      if expected == 2 {
        guard let value = Int(fields[1]), value >= 0, value < Self.maximumClassCount else {
          throw DatasetError.malformedLine(
            path: listFile.path, line: index + 1, text: String(line),
            expected: "a non-negative integer label below \(Self.maximumClassCount) after the path")
        }
        label = value
      }
      let path = String(fields[0])
      samples.append(Sample(url: root.appendingPathComponent(path), relativePath: path, label: label))
    }
    guard !samples.isEmpty else {
      throw DatasetError.noImages(path: listFile.path, hint: "The list file has no entries.")
    }
    self.listFile = listFile
    self.root = root
    self.samples = samples
    self.isLabeled = fieldCount == 2
  }

  public var count: Int { samples.count }

  /// Labels are class indices below this. Readers size per-class tables (counts, probe outputs) by the largest
  /// label, so one corrupt label such as 9223372036854775807 must not reach them; 100,000 is far above any
  /// benchmark's class count (Places205: 205, ImageNet-21k: 21,843).
  public static let maximumClassCount = 100_000

  /// 1 + the largest label, or 0 for an unlabeled list.
  public var classCount: Int { (samples.compactMap(\.label).max() ?? -1) + 1 }
}
