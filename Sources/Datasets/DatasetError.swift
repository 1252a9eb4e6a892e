// Errors for bad input from outside: missing or malformed dataset files (HOUSE_STYLE D8).
import Foundation
import Support

/// An error reading a dataset from disk. Each message names the file or directory, says what is wrong,
/// and gives a hint.
public enum DatasetError: Error, CustomStringConvertible, Equatable, Sendable {
  /// The support layer's error for the same failure (reading, decompressing) in this module's terms.
  init(_ error: SupportError) {
    switch error {
    case let .unreadableFile(path, reason): self = .unreadableFile(path: path, reason: reason)
    case let .unwritableFile(path, reason): self = .unreadableFile(path: path, reason: "cannot write it: " + reason)
    case let .corruptCompressedData(path, reason): self = .corruptCompressedData(path: path, reason: reason)
    case let .decompressedSizeExceedsLimit(path, limit): self = .decompressedSizeExceedsLimit(path: path, limit: limit)
    }
  }

  /// A directory the layout needs does not exist (or is a file).
  case missingDirectory(path: String, hint: String)
  /// A file the layout needs does not exist.
  case missingFile(path: String, hint: String)
  /// A file exists but could not be read (permissions, I/O error).
  case unreadableFile(path: String, reason: String)
  /// A text list (image list, ImageSets, CSV) has a line that cannot be parsed; `line` is 1-based.
  case malformedLine(path: String, line: Int, text: String, expected: String)
  /// An XML annotation is not well-formed XML.
  case malformedXML(path: String, reason: String)
  /// An annotation lacks a field the reader needs (`field` is its path, e.g. `object[2]/bndbox/xmin`).
  case missingField(path: String, field: String)
  /// An annotation field is present but its value is not what the format allows.
  case invalidField(path: String, field: String, value: String, expected: String)
  /// A JSON file is not valid JSON or does not have the expected structure.
  case malformedJSON(path: String, reason: String)
  /// A binary file (IDX, CIFAR batch, gzip) is truncated or has an unexpected header.
  case malformedBinary(path: String, reason: String)
  /// A compressed stream (gzip / DEFLATE) is corrupt.
  case corruptCompressedData(path: String, reason: String)
  /// A compressed file inflates to more than `limit` bytes, the most its reader accepts (decompression stopped there).
  case decompressedSizeExceedsLimit(path: String, limit: Int)
  /// A run-length-encoded COCO mask is invalid (bad characters, or run lengths that do not cover the image).
  case invalidRLE(reason: String)
  /// Two lists of a dataset disagree (e.g. a VOC split list and its class lists name different images).
  case inconsistentSplits(path: String, reason: String)
  /// A directory was expected to hold images but none were found.
  case noImages(path: String, hint: String)
  /// The layout of a dataset directory could not be recognised.
  case unknownLayout(path: String, hint: String)
  /// A segmentation label map holds a class index at or above the class count that is not 255 (ignore).
  case labelOutOfRange(path: String, value: Int, classCount: Int, hint: String)
  /// A segmentation label map's size differs from its image's (sizes as "width×height").
  case labelSizeMismatch(path: String, labelSize: String, imagePath: String, imageSize: String)

  /// At most `limit` characters of `text` (line ends shown as \\n, \\r), so a message never quotes a whole file.
  static func excerpt(_ text: String, limit: Int = 80) -> String {
    let shown = text.prefix(limit).map { $0 == "\n" ? "\\n" : $0 == "\r" ? "\\r" : $0 == "\r\n" ? "\\r\\n" : String($0) }
    return shown.joined() + (text.count > limit ? "… (\(text.count) characters)" : "")
  }

  public var description: String {
    switch self {
    case let .missingDirectory(path, hint):
      "Directory \(path) does not exist. \(hint)"
    case let .missingFile(path, hint):
      "File \(path) does not exist. \(hint)"
    case let .unreadableFile(path, reason):
      "Cannot read \(path): \(reason). Check the file's permissions and that the disk is mounted."
    case let .malformedLine(path, line, text, expected):
      "\(path), line \(line): cannot parse '\(Self.excerpt(text))'; expected \(expected). Is this the right file for the format?"
    case let .malformedXML(path, reason):
      "\(path) is not well-formed XML: \(reason). The file may be truncated; re-extract the dataset archive."
    case let .missingField(path, field):
      "\(path) has no <\(field)>, which the reader needs. Annotations must follow the PASCAL VOC schema."
    case let .invalidField(path, field, value, expected):
      "\(path): field \(field) is '\(Self.excerpt(value))', expected \(expected)."
    case let .malformedJSON(path, reason):
      "\(path) is not a valid annotation file: \(reason). Is it a COCO instances_*.json file, complete and not truncated?"
    case let .malformedBinary(path, reason):
      "\(path) is not a valid dataset file: \(reason). The file may be truncated; download or extract it again."
    case let .corruptCompressedData(path, reason):
      "\(path) holds corrupt compressed data: \(reason). Check it with `gzip -t` and download it again."
    case let .decompressedSizeExceedsLimit(path, limit):
      SupportError.decompressedSizeExceedsLimit(path: path, limit: limit).description
    case let .invalidRLE(reason):
      "Invalid COCO RLE mask: \(reason). The annotation file may be corrupt."
    case let .inconsistentSplits(path, reason):
      "\(path) does not match the other lists of the dataset: \(reason). Re-extract the dataset's ImageSets."
    case let .noImages(path, hint):
      "No images found in \(path). \(hint)"
    case let .unknownLayout(path, hint):
      "Cannot recognise the dataset layout of \(path). \(hint)"
    case let .labelOutOfRange(path, value, classCount, hint):
      "\(path) holds class index \(value), but the dataset has \(classCount) classes (0…\(classCount - 1), 255 = "
        + "ignore). \(hint)"
    case let .labelSizeMismatch(path, labelSize, imagePath, imageSize):
      "\(path) is \(labelSize) but its image \(imagePath) is \(imageSize); a label map must match its image pixel "
        + "for pixel. Re-extract or re-convert the labels."
    }
  }
}
