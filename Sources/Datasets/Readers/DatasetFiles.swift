// File-system helpers the readers share: existence checks with typed errors, whole-file reads, text lines,
// and Python's string order (code points), which torchvision and the MMSelfSup scripts sort by.
import Foundation

enum DatasetFiles {
  /// Whether `url` is an existing directory (symbolic links followed).
  static func isDirectory(_ url: URL) -> Bool {
    var isDirectory: ObjCBool = false
    return FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) && isDirectory.boolValue
  }

  /// Whether `url` is an existing file that is not a directory.
  static func isFile(_ url: URL) -> Bool {
    var isDirectory: ObjCBool = false
    return FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) && !isDirectory.boolValue
  }

  static func requireDirectory(_ url: URL, hint: String) throws {
    guard isDirectory(url) else { throw DatasetError.missingDirectory(path: url.path, hint: hint) }
  }

  static func requireFile(_ url: URL, hint: String) throws {
    guard isFile(url) else { throw DatasetError.missingFile(path: url.path, hint: hint) }
  }

  /// The whole file.
  static func readBytes(_ url: URL, hint: String = "") throws -> [UInt8] {
    try requireFile(url, hint: hint)
    do {
      return [UInt8](try Data(contentsOf: url))
    } catch {
      throw DatasetError.unreadableFile(path: url.path, reason: "\(error.localizedDescription)")
    }
  }

  /// The file's lines as UTF-8 text, split by `listLines`.
  static func readLines(_ url: URL, hint: String = "") throws -> [Substring] {
    let bytes = try readBytes(url, hint: hint)
    guard let text = String(validating: bytes, as: UTF8.self) else {
      throw DatasetError.unreadableFile(path: url.path, reason: "it is not UTF-8 text")
    }
    return listLines(text)
  }

  /// Names in a directory (hidden ones included, as `os.scandir` lists them).
  static func contents(of url: URL) throws -> [String] {
    do {
      return try FileManager.default.contentsOfDirectory(atPath: url.path)
    } catch {
      throw DatasetError.unreadableFile(path: url.path, reason: "the directory cannot be listed")
    }
  }

  /// The size of a file in bytes, or nil when it does not exist.
  static func size(of url: URL) -> Int64? {
    guard let attributes = try? FileManager.default.attributesOfItem(atPath: url.path),
          let size = attributes[.size] as? NSNumber else { return nil }
    return size.int64Value
  }
}

/// The lines of a text list (image list, ImageSets, class names): split at LF, CRLF or a lone CR, as Python's
/// universal newlines split the files the reference scripts read, without the line ends. A final line end does not
/// start another line; blank lines are kept, so that line numbers in errors match an editor's.
///
/// Every list reader goes through here. (Splitting a Swift `String` at "\n" alone misses CRLF: "\r\n" is one
/// `Character`, so a CRLF file would be one line.)
public func listLines(_ text: String) -> [Substring] {
  var lines = text.split(omittingEmptySubsequences: false) { $0 == "\n" || $0 == "\r\n" || $0 == "\r" }
  if lines.last?.isEmpty == true { lines.removeLast() }
  return lines
}

extension String {
  /// Python's `str` order: lexicographic by Unicode code point, without normalisation.
  func precedesInCodePointOrder(_ other: String) -> Bool {
    unicodeScalars.lexicographicallyPrecedes(other.unicodeScalars)
  }
}

extension Sequence where Element == String {
  /// Sorted as Python's `sorted` sorts strings.
  func sortedByCodePoint() -> [String] { sorted { $0.precedesInCodePointOrder($1) } }
}

extension Substring {
  /// The whitespace-separated fields, as Python's `str.split()` with no argument.
  var whitespaceFields: [Substring] { split(whereSeparator: { $0.isWhitespace }) }
}

/// The training or test part of a dataset distributed as fixed files (IDX, CIFAR batches).
public enum DatasetSplit: String, Sendable, CaseIterable {
  case train, test
}
