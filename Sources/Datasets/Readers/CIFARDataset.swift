// CIFAR-10 / CIFAR-100 binary batches (www.cs.toronto.edu/~kriz/cifar.html, "binary version"): each record is the
// label byte(s) then 3072 bytes of 32×32 planes, red, green, blue, each row-major.
import Foundation

/// CIFAR-10 (`cifar-10-batches-bin`) or CIFAR-100 (`cifar-100-binary`) read from the binary distribution.
public struct CIFARDataset: Sendable {
  public enum Variant: Sendable {
    /// Records of 1 label byte + 3072 pixel bytes; files data_batch_1…5.bin and test_batch.bin.
    case cifar10
    /// Records of a coarse and a fine label byte + 3072 pixel bytes; files train.bin and test.bin.
    case cifar100

    var labelBytes: Int { self == .cifar10 ? 1 : 2 }
    var recordSize: Int { labelBytes + 3072 }
    /// The number of (fine) classes.
    var classCount: Int { self == .cifar10 ? 10 : 100 }
  }

  public static let imageSize = 32

  public let variant: Variant
  public let files: [URL]
  /// Class names from batches.meta.txt / fine_label_names.txt, or "0", "1", … when those are absent.
  public let classes: [String]
  /// CIFAR-100's 20 superclass labels, one per image; nil for CIFAR-10.
  public let coarseLabels: [UInt8]?
  public let labels: [UInt8]
  private let planes: [UInt8]  // [count, 3, 32, 32]

  /// Reads the batches of `split` from an extracted CIFAR binary directory; the variant is told by the file names.
  public init(directory: URL, split: DatasetSplit) throws {
    try DatasetFiles.requireDirectory(directory, hint: "Extract cifar-10-binary.tar.gz or cifar-100-binary.tar.gz "
                                        + "and pass the cifar-10-batches-bin or cifar-100-binary directory.")
    let variant = try Self.variant(of: directory)
    let names = switch (variant, split) {
    case (.cifar10, .train): (1...5).map { "data_batch_\($0).bin" }
    case (.cifar10, .test): ["test_batch.bin"]
    case (.cifar100, .train): ["train.bin"]
    case (.cifar100, .test): ["test.bin"]
    }
    let metaName = variant == .cifar10 ? "batches.meta.txt" : "fine_label_names.txt"
    let meta = directory.appendingPathComponent(metaName)
    let classes = DatasetFiles.isFile(meta)
      ? try DatasetFiles.readLines(meta).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty } : nil
    try self.init(files: names.map(directory.appendingPathComponent), variant: variant, classes: classes)
  }

  /// Reads the given batch files. Throws `DatasetError.malformedBinary` when a file's size is not a whole number
  /// of records or a label is out of range.
  public init(files: [URL], variant: Variant, classes: [String]? = nil) throws {
    var labels: [UInt8] = []
    var coarse: [UInt8] = []
    var planes: [UInt8] = []
    for file in files {
      let bytes = try DatasetFiles.readBytes(file, hint: "A CIFAR batch file is missing; extract the archive again.")
      guard !bytes.isEmpty && bytes.count % variant.recordSize == 0 else {
        throw DatasetError.malformedBinary(
          path: file.path, reason: "\(bytes.count) bytes is not a whole number of \(variant.recordSize)-byte records")
      }
      let count = bytes.count / variant.recordSize
      planes.reserveCapacity(planes.count + count * 3072)
      for record in 0..<count {
        let start = record * variant.recordSize
        let fine = bytes[start + variant.labelBytes - 1]
        guard Int(fine) < variant.classCount && (variant == .cifar10 || bytes[start] < 20) else {
          throw DatasetError.malformedBinary(path: file.path, reason: "record \(record) has label \(fine) out of range")
        }
        if variant == .cifar100 { coarse.append(bytes[start]) }
        labels.append(fine)
        planes.append(contentsOf: bytes[(start + variant.labelBytes)..<(start + variant.recordSize)])
      }
    }
    if let classes, classes.count != variant.classCount {
      throw DatasetError.inconsistentSplits(
        path: files.first?.deletingLastPathComponent().path ?? "",
        reason: "the label-name file lists \(classes.count) classes, this variant has \(variant.classCount)")
    }
    self.variant = variant
    self.files = files
    self.classes = classes ?? (0..<variant.classCount).map(String.init)
    self.labels = labels
    self.coarseLabels = variant == .cifar100 ? coarse : nil
    self.planes = planes
  }

  /// The variant of an extracted directory, told by its batch file names.
  static func variant(of directory: URL) throws -> Variant {
    let has = { (name: String) in DatasetFiles.isFile(directory.appendingPathComponent(name)) }
    if has("data_batch_1.bin") || has("test_batch.bin") { return .cifar10 }
    if has("train.bin") || has("test.bin") { return .cifar100 }
    throw DatasetError.unknownLayout(path: directory.path, hint: "Expected CIFAR-10's data_batch_*.bin / "
                                       + "test_batch.bin or CIFAR-100's train.bin / test.bin.")
  }

  public var count: Int { labels.count }

  /// Image `index` as a 32×32 RGB image (planes interleaved).
  public func image(at index: Int) -> Image {
    precondition(index >= 0 && index < count, "CIFAR image index \(index) is outside 0..<\(count).")
    let area = Self.imageSize * Self.imageSize
    var pixels = [UInt8](repeating: 0, count: 3 * area)
    let base = index * 3 * area
    for p in 0..<area {
      pixels[3 * p] = planes[base + p]
      pixels[3 * p + 1] = planes[base + area + p]
      pixels[3 * p + 2] = planes[base + 2 * area + p]
    }
    return Image(width: Self.imageSize, height: Self.imageSize, channels: 3, pixels: pixels)
  }
}
