// MNIST / Fashion-MNIST IDX files (yann.lecun.com/exdb/mnist format), plain or gzip-compressed: idx3 images
// [n, rows, cols] and idx1 labels [n], unsigned bytes.
import Foundation
import Support

/// An unsigned-byte IDX array: magic 00 00 08 <ndims>, then each dimension as a big-endian UInt32, then the data.
public struct IDXArray: Sendable, Equatable {
  public var dimensions: [Int]
  public var bytes: [UInt8]

  /// The most a gzipped IDX file may inflate to: 4 GiB. The largest IDX files in use (EMNIST ByClass, 0.55 GB of
  /// training images) are far below it; Fashion-MNIST's training images are 47 MB.
  public static let maximumInflatedBytes = 1 << 32

  /// Parses IDX bytes, gunzipping them first when they start with the gzip magic (stopping with an error as soon
  /// as the output passes `maximumInflatedBytes`). `path` names the file in errors; only the unsigned-byte type
  /// (0x08) is supported, which MNIST and Fashion-MNIST use.
  public init(bytes raw: [UInt8], path: String, maximumInflatedBytes: Int = IDXArray.maximumInflatedBytes) throws {
    let bytes: [UInt8]
    do throws(SupportError) {
      bytes = Gzip.isCompressed(raw) ? try Gzip.decompress(raw, path: path, maximumSize: maximumInflatedBytes) : raw
    } catch {
      throw DatasetError(error)
    }
    guard bytes.count >= 4 else {
      throw DatasetError.malformedBinary(path: path, reason: "\(bytes.count) bytes is shorter than an IDX header")
    }
    guard bytes[0] == 0 && bytes[1] == 0 else {
      throw DatasetError.malformedBinary(path: path, reason: "the IDX magic number does not start with 00 00")
    }
    guard bytes[2] == 0x08 else {
      throw DatasetError.malformedBinary(
        path: path, reason: "IDX data type 0x\(String(bytes[2], radix: 16)) is not unsigned byte (0x08)")
    }
    let rank = Int(bytes[3])
    let headerSize = 4 + 4 * rank
    guard rank >= 1 && bytes.count >= headerSize else {
      throw DatasetError.malformedBinary(path: path, reason: "the IDX header of rank \(rank) is truncated")
    }
    var dimensions: [Int] = []
    var total = 1
    for d in 0..<rank {
      let at = 4 + 4 * d
      let size = Int(bytes[at]) << 24 | Int(bytes[at + 1]) << 16 | Int(bytes[at + 2]) << 8 | Int(bytes[at + 3])
      dimensions.append(size)
      let (product, overflow) = total.multipliedReportingOverflow(by: size)
      guard !overflow else { throw DatasetError.malformedBinary(path: path, reason: "IDX dimensions overflow") }
      total = product
    }
    guard bytes.count - headerSize == total else {
      throw DatasetError.malformedBinary(
        path: path, reason: "dimensions \(dimensions) need \(total) data bytes, the file has \(bytes.count - headerSize)")
    }
    self.dimensions = dimensions
    self.bytes = Array(bytes[headerSize...])
  }

  /// Reads and parses an IDX file (`.gz` or not).
  public init(contentsOf url: URL) throws {
    try self.init(bytes: try DatasetFiles.readBytes(url, hint: "Check the IDX file path."), path: url.path)
  }
}

/// An image-classification set stored as an idx3 image file and an idx1 label file (MNIST, Fashion-MNIST).
public struct IDXDataset: Sendable {
  /// Fashion-MNIST's class names, by label (github.com/zalandoresearch/fashion-mnist).
  public static let fashionMNISTClasses = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                                           "Sneaker", "Bag", "Ankle boot"]

  public let imageFile: URL
  public let labelFile: URL
  public let height: Int
  public let width: Int
  public let pixels: [UInt8]  // [count, height, width]
  public let labels: [UInt8]  // [count]

  /// Reads an idx3 image file and the idx1 label file that goes with it.
  public init(images: URL, labels: URL) throws {
    let imageArray = try IDXArray(contentsOf: images)
    let labelArray = try IDXArray(contentsOf: labels)
    guard imageArray.dimensions.count == 3 else {
      throw DatasetError.malformedBinary(path: images.path,
                                         reason: "images need 3 dimensions, the file has \(imageArray.dimensions)")
    }
    guard labelArray.dimensions.count == 1 else {
      throw DatasetError.malformedBinary(path: labels.path,
                                         reason: "labels need 1 dimension, the file has \(labelArray.dimensions)")
    }
    guard imageArray.dimensions[0] == labelArray.dimensions[0] else {
      throw DatasetError.inconsistentSplits(
        path: labels.path, reason: "it has \(labelArray.dimensions[0]) labels for \(imageArray.dimensions[0]) "
          + "images in \(images.lastPathComponent)")
    }
    imageFile = images
    labelFile = labels
    height = imageArray.dimensions[1]
    width = imageArray.dimensions[2]
    pixels = imageArray.bytes
    self.labels = labelArray.bytes
  }

  /// Reads `train-*` or `t10k-*` from a directory such as /usr/share/datasets/fashion-mnist, accepting the
  /// `-idx3-ubyte` and `.idx3-ubyte` spellings, plain or `.gz`.
  public init(directory: URL, split: DatasetSplit) throws {
    try DatasetFiles.requireDirectory(directory, hint: "Fashion-MNIST installs under /usr/share/datasets/fashion-mnist "
                                        + "(Debian package dataset-fashion-mnist; `make setup`).")
    let prefix = split == .train ? "train" : "t10k"
    func find(_ kind: String, _ rank: Int) throws -> URL {
      let names = ["-\(kind)-idx\(rank)-ubyte", "-\(kind).idx\(rank)-ubyte"].flatMap { [prefix + $0, prefix + $0 + ".gz"] }
      guard let url = names.map(directory.appendingPathComponent).first(where: DatasetFiles.isFile) else {
        throw DatasetError.missingFile(path: directory.appendingPathComponent(names[1]).path,
                                       hint: "Expected one of \(names.joined(separator: ", ")).")
      }
      return url
    }
    try self.init(images: try find("images", 3), labels: try find("labels", 1))
  }

  public var count: Int { labels.count }

  /// 1 + the largest label.
  public var classCount: Int { Int(labels.max() ?? 0) + 1 }

  /// Image `index` as a grayscale image.
  public func image(at index: Int) -> Image {
    precondition(index >= 0 && index < count, "IDX image index \(index) is outside 0..<\(count).")
    let size = height * width
    return Image(width: width, height: height, channels: 1, pixels: Array(pixels[(index * size)..<((index + 1) * size)]))
  }
}
