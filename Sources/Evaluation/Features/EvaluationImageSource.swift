// Where an evaluator's images come from: a VOC devkit list, an image folder, an image list, or an embedded dataset.
// Feature extraction reads images through this protocol and keys its cache on `fingerprint`.
import Datasets

/// A fixed, ordered list of images. Image `i` is always the same file or record.
public protocol EvaluationImageSource: Sendable {
  /// Number of images.
  var count: Int { get }
  /// Identifies the list and its contents (paths and sizes, or a content hash): part of the feature-cache key and
  /// of every stored run's provenance.
  var fingerprint: String { get }
  /// Image `index`, decoded, with `channels` channels (grey replicated to RGB, or RGB reduced to luma). Throws a
  /// `DatasetError` naming the file when it cannot be read.
  func image(at index: Int, channels: Int) throws -> Image
  /// Where image `index` comes from (a path, or `name[index]`), for error messages.
  func location(of index: Int) -> String
}

/// Labelled classification datasets (Datasets) are read by feature extraction like any other list.
extension ClassificationSource: EvaluationImageSource {}
