// Errors for bad COCO evaluation input from outside: the ground-truth and detection json files (HOUSE_STYLE D8).
import Foundation

/// A ground-truth or detection file that cannot be evaluated. Each message names the file, says what is wrong and
/// gives a hint.
public enum COCOEvalError: Error, Equatable, Sendable, CustomStringConvertible, LocalizedError {
  /// The file does not exist or cannot be read.
  case unreadableFile(path: String, reason: String)
  /// The file is not JSON, or not shaped like the expected COCO file (`reason` names the first problem's place).
  case malformedJSON(path: String, reason: String, hint: String)
  /// A detection names an image the ground truth does not have (pycocotools: "Results do not correspond to current
  /// coco set"). `index` is the detection's 0-based position in the file.
  case unknownImage(path: String, index: Int, imageID: Int)
  /// An entry has a value the evaluation cannot use (`entry` names it, e.g. `[12]` or `annotation id 7`).
  case invalidEntry(path: String, entry: String, reason: String)
  /// Two ground-truth annotations (or images, or categories) share an id.
  case duplicateID(path: String, kind: String, id: Int)

  public var description: String {
    switch self {
    case let .unreadableFile(path, reason):
      "Cannot read \(path): \(reason). Check the path and the file's permissions."
    case let .malformedJSON(path, reason, hint):
      "\(path) is not a valid COCO file: \(reason). \(hint)"
    case let .unknownImage(path, index, imageID):
      "\(path): detection [\(index)] is on image_id \(imageID), which the ground truth has no image for. "
        + "Are the detections for this ground-truth file (the same split)?"
    case let .invalidEntry(path, entry, reason):
      "\(path): \(entry): \(reason)."
    case let .duplicateID(path, kind, id):
      "\(path): two \(kind) have id \(id); ids must be unique. Is the file hand-edited or two files concatenated?"
    }
  }

  public var errorDescription: String? { description }
}
