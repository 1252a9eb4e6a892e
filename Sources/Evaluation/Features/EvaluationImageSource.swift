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

/// `image` converted to `channels` channels: grey replicated to RGB, or RGB reduced to ITU-R 601-2 luma (Pillow's
/// `convert('L')`).
public func convertChannels(_ image: Image, to channels: Int) -> Image {
  precondition(channels == 1 || channels == 3, "Images have 1 or 3 channels, asked for \(channels).")
  if image.channels == channels { return image }
  if channels == 3 {
    return Image(width: image.width, height: image.height, channels: 3, pixels: image.pixels.flatMap { [$0, $0, $0] })
  }
  let gray = rgbToGrayscale(image)
  let stride = gray.channels
  return Image(width: gray.width, height: gray.height, channels: 1,
               pixels: (0..<(gray.width * gray.height)).map { gray.pixels[$0 * stride] })
}
