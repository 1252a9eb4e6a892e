// What can go wrong in the VOC07 SVM protocols, each case with the file or item at fault and a hint.
import Foundation

public enum SVMError: Error, Equatable, CustomStringConvertible, LocalizedError {
  /// A feature is NaN or infinite.
  case nonFiniteFeature(layer: String, image: String, column: Int, value: Double)
  /// A class has no positive image in a split.
  case noPositives(className: String, split: String)
  /// The 3-fold CV needs every training fold to hold both labels.
  case tooFewPositivesForCV(className: String, positives: Int, folds: Int)
  /// A fit was asked for with one label only.
  case singleClassFit(positives: Int, rows: Int)
  /// Features and labels disagree in size.
  case shapeMismatch(what: String, expected: String, actual: String)
  /// Low-shot sample files missing or of the wrong shape.
  case missingLowShotSample(path: String)
  case badLowShotSample(path: String, reason: String)
  /// The test hook stopped the run after this many units.
  case interrupted(afterUnits: Int)
  /// The journal file cannot be read or written.
  case journal(path: String, reason: String)
  case badCostList(String)
  /// A `--features` directory lacks a file or holds one of the wrong shape or content.
  case badFeatureDirectory(path: String, reason: String)

  public var description: String {
    switch self {
    case .nonFiniteFeature(let layer, let image, let column, let value):
      "\(layer) features of \(image) hold \(value) at column \(column); the backbone produced non-finite "
        + "activations (check the checkpoint: `simsiam-bench checkpoint inspect`)."
    case .noPositives(let className, let split):
      "Class '\(className)' has no positive image in \(split); the SVM cannot be trained or scored for it "
        + "(check ImageSets/Main/\(className)_\(split).txt)."
    case .tooFewPositivesForCV(let className, let positives, let folds):
      "Class '\(className)' has \(positives) positive trainval image(s); the \(folds)-fold cross-validation "
        + "needs at least \(folds) so that every fold trains on both labels (use a larger devkit)."
    case .singleClassFit(let positives, let rows):
      "An SVM fit got \(positives) positive(s) among \(rows) rows; it needs both labels."
    case .shapeMismatch(let what, let expected, let actual):
      "\(what): expected \(expected), got \(actual)."
    case .missingLowShotSample(let path):
      "Low-shot sample file \(path) does not exist; --low-shot-samples expects the FAIR benchmark's "
        + "train_targets_sample{1..5}_k{k}.npy files."
    case .badLowShotSample(let path, let reason):
      "Low-shot sample file \(path) is unusable: \(reason)."
    case .interrupted(let units): "Stopped after \(units) units (test hook)."
    case .journal(let path, let reason): "SVM journal \(path): \(reason)."
    case .badCostList(let text): "Cannot read the cost list '\(text)': give positive numbers separated by commas."
    case .badFeatureDirectory(let path, let reason):
      "\(path): \(reason). --features reads the layout `run voc-svm --export-features` writes: classes.txt, "
        + "trainval_labels.npy / test_labels.npy (int32 [images, classes], 1 / 0 / -1) and "
        + "trainval_<layer>.npy / test_<layer>.npy (float32 [images, dim])."
    }
  }

  public var errorDescription: String? { description }
}
