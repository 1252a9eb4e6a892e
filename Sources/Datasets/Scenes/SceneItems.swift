// The small gray object images that `SceneGenerator` composes into scenes: Fashion-MNIST items.
import Foundation

/// Gray object images with class labels, `pixels[(index · height + y) · width + x]`; bright pixels are the object,
/// black is background (as in MNIST and Fashion-MNIST).
public struct SceneItems: Sendable {
  /// Fashion-MNIST's ten classes, lowercase and without '_' (VOC's `<class>_<split>.txt` files split on '_').
  public static let fashionMNISTClassNames = ["tshirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt",
                                              "sneaker", "bag", "ankleboot"]

  public let classNames: [String]
  public let width: Int
  public let height: Int
  public let pixels: [UInt8]  // [count, height, width]
  public let labels: [Int]    // [count], each in 0..<classNames.count

  public init(classNames: [String], width: Int, height: Int, pixels: [UInt8], labels: [Int]) {
    precondition(width > 0 && height > 0 && pixels.count == labels.count * width * height,
                 "Scene items of \(width)×\(height) need \(labels.count * width * height) bytes for \(labels.count) "
                   + "labels, got \(pixels.count).")
    precondition(!labels.isEmpty, "Scene items need at least one item.")
    precondition(labels.allSatisfy { (0..<classNames.count).contains($0) },
                 "Scene item labels must lie in 0..<\(classNames.count).")
    self.classNames = classNames
    self.width = width
    self.height = height
    self.pixels = pixels
    self.labels = labels
  }

  /// Fashion-MNIST's `split` from `directory` (e.g. /usr/share/datasets/fashion-mnist), with
  /// `fashionMNISTClassNames`.
  public init(fashionMNIST directory: URL, split: DatasetSplit) throws {
    let dataset = try IDXDataset(directory: directory, split: split)
    guard dataset.classCount <= Self.fashionMNISTClassNames.count else {
      throw DatasetError.malformedBinary(path: dataset.labelFile.path,
                                         reason: "labels run to \(dataset.classCount - 1); Fashion-MNIST has 0…9")
    }
    self.init(classNames: Self.fashionMNISTClassNames, width: dataset.width, height: dataset.height,
              pixels: dataset.pixels, labels: dataset.labels.map(Int.init))
  }

  public var count: Int { labels.count }

  /// Item `index` as a 1-channel image.
  public func image(at index: Int) -> Image {
    precondition(index >= 0 && index < count, "Scene item index \(index) is outside 0..<\(count).")
    let size = width * height
    return Image(width: width, height: height, channels: 1, pixels: Array(pixels[(index * size)..<((index + 1) * size)]))
  }
}
