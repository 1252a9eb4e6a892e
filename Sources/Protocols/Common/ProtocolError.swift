// Errors of the protocol layer: bad requests from outside (a file, a folder, a flag's value), each naming what is
// wrong and what to do. Errors of the layers below (checkpoints, datasets, configs, SVMs) pass through unchanged.
import Foundation

public enum ProtocolError: Error, CustomStringConvertible, Equatable {
  /// A request that cannot run as given (conflicting or missing inputs); `hint` says what to give instead.
  case invalidRequest(reason: String, hint: String)
  /// A file or folder that cannot be written.
  case unwritable(path: String, reason: String)
  /// A checkpoint whose backbone is not one of the ResNets the evaluators build.
  case unsupportedBackbone(path: String, architecture: String)
  /// `--resume` found head or run state that belongs to another checkpoint, config or dataset.
  case resumeMismatch(path: String, reason: String)

  public var description: String {
    switch self {
    case let .invalidRequest(reason, hint): "\(reason) \(hint)"
    case let .unwritable(path, reason): "Cannot write \(path): \(reason). Choose another --work-dir or check permissions."
    case let .unsupportedBackbone(path, architecture):
      "\(path) holds a \(architecture) backbone; the evaluators build ResNet-18/34/50 only."
    case let .resumeMismatch(path, reason):
      "Cannot resume from \(path): \(reason). Use another --work-dir, or run without --resume to start over."
    }
  }
}
