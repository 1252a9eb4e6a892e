// What a path given from outside names, so an option that takes a file or a folder can say which it got instead of
// passing Foundation's "NSCocoaErrorDomain error 256" on.
import Foundation

/// What is at a path.
public enum PathKind: Sendable, Equatable {
  case missing
  case file
  case directory

  /// Follows symbolic links, as opening the path would.
  public init(_ path: String) {
    var isDirectory: ObjCBool = false
    if !FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
      self = .missing
    } else {
      self = isDirectory.boolValue ? .directory : .file
    }
  }
}
