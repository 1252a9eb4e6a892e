// Errors and warnings of the on-disk feature cache (HOUSE_STYLE D8: name the file, say what is wrong, give a hint).
import Foundation

/// A feature-cache operation that cannot go on.
public enum FeatureCacheError: Error, CustomStringConvertible, LocalizedError, Equatable, Sendable {
  /// The cache directory does not exist and cannot be created, or is a file.
  case unusableDirectory(path: String, reason: String)
  /// Writing (or renaming, or syncing) a cache file failed, e.g. the disk is full.
  case writeFailed(path: String, reason: String)
  /// A cache file is not a valid, complete feature file (`FeatureCache.read` only; lookups rebuild instead).
  case invalidFile(path: String, problem: String)

  public var description: String {
    switch self {
    case let .unusableDirectory(path, reason):
      "Cannot use \(path) as the feature cache directory: \(reason). Pass a writable directory with --feature-cache."
    case let .writeFailed(path, reason):
      "Cannot write the feature cache file \(path): \(reason). Check the free space of the disk "
        + "(features take rows × columns × 4 bytes per layer) or pass another --feature-cache."
    case let .invalidFile(path, problem):
      "\(path) is not a valid feature cache file: it \(problem). Delete it; the next run extracts the features again."
    }
  }

  public var errorDescription: String? { description }
}

/// A cache file found invalid during a lookup: it has been deleted and the features are extracted again.
public struct FeatureCacheWarning: CustomStringConvertible, Equatable, Sendable {
  public var path: String
  /// What is wrong, as a verb phrase ("fails its checksum …", "is truncated …").
  public var problem: String

  public init(path: String, problem: String) {
    self.path = path
    self.problem = problem
  }

  public var description: String {
    "warning: feature cache file \(path) \(problem); deleted, its features will be extracted again."
  }
}
