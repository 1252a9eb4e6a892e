// Errors writing a dataset to disk (`data make-scenes`, `data preview`).
import Support
import Foundation

/// An error writing dataset files. Each message names the path, says what is wrong, and gives a hint.
public enum DatasetWriteError: Error, CustomStringConvertible, Equatable, Sendable {
  /// A file or directory could not be created or written.
  case unwritableFile(path: String, reason: String)
  /// The output already holds a dataset, which would be mixed with the new one.
  case outputExists(path: String)

  public var description: String {
    switch self {
    case let .unwritableFile(path, reason):
      "Cannot write \(path): \(reason). Check that the folder is writable and has free space."
    case let .outputExists(path):
      "\(path) already exists. Remove it or choose another --out, so old and new files are not mixed."
    }
  }
}

enum DatasetWriting {
  /// Writes `text` as UTF-8 to `url`.
  static func write(_ text: String, to url: URL) throws {
    do {
      try AtomicFile.write(Data(text.utf8), to: url)
    } catch {
      throw DatasetWriteError.unwritableFile(path: url.path, reason: error.localizedDescription)
    }
  }

  /// Creates `url` and its parents.
  static func createDirectory(_ url: URL) throws {
    do {
      try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    } catch {
      throw DatasetWriteError.unwritableFile(path: url.path, reason: error.localizedDescription)
    }
  }
}
