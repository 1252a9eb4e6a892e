// Errors of the support layer: files that cannot be read or written, compressed data that is corrupt or too large.
// Each message names the file; callers in other targets map them into their own error types where tests or users
// rely on those.
import Foundation

/// An error reading, writing or decompressing a file.
public enum SupportError: Error, CustomStringConvertible, Equatable, Sendable {
  /// A file could not be opened or read (missing, a directory, permissions, I/O error).
  case unreadableFile(path: String, reason: String)
  /// A file could not be written, synced or renamed into place; nothing was left under its name.
  case unwritableFile(path: String, reason: String)
  /// A gzip member or DEFLATE stream is corrupt or truncated (zlib's reason, or which check failed).
  case corruptCompressedData(path: String, reason: String)
  /// The data inflates to more than `limit` bytes; decompression stopped there instead of allocating the rest.
  case decompressedSizeExceedsLimit(path: String, limit: Int)

  /// The part after the path, for callers that wrap the error into their own message.
  public var reason: String {
    switch self {
    case let .unreadableFile(_, reason), let .unwritableFile(_, reason), let .corruptCompressedData(_, reason):
      reason
    case let .decompressedSizeExceedsLimit(_, limit):
      "it inflates to more than \(limit) bytes (\(formatBytes(limit))), the most its reader accepts"
    }
  }

  public var path: String {
    switch self {
    case let .unreadableFile(path, _), let .unwritableFile(path, _), let .corruptCompressedData(path, _),
         let .decompressedSizeExceedsLimit(path, _):
      path
    }
  }

  public var description: String {
    switch self {
    case let .unreadableFile(path, reason):
      "Cannot read \(path): \(reason)."
    case let .unwritableFile(path, reason):
      "Cannot write \(path): \(reason). Check that the folder exists, is writable and has free space."
    case let .corruptCompressedData(path, reason):
      "\(path) holds corrupt compressed data: \(reason). Check it with `gzip -t` and download it again."
    case let .decompressedSizeExceedsLimit(path, _):
      "\(path): \(reason); it is not the file it claims to be (or a decompression bomb)."
    }
  }
}

/// `bytes` in binary units with one decimal, e.g. "4.0 GiB".
func formatBytes(_ bytes: Int) -> String {
  let units = ["bytes", "KiB", "MiB", "GiB", "TiB"]
  var value = Double(bytes)
  var unit = 0
  while value >= 1024 && unit < units.count - 1 {
    value /= 1024
    unit += 1
  }
  guard unit > 0 else { return "\(bytes) bytes" }
  let tenths = Int((value * 10).rounded())
  return "\(tenths / 10).\(tenths % 10) \(units[unit])"
}

extension SupportError: LocalizedError {
  /// The same sentence as `description`, so callers that wrap `error.localizedDescription` keep the file and reason.
  public var errorDescription: String? { description }
}
