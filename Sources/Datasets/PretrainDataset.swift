// The unlabelled images a pretraining run draws its views from, whatever their source, with a fingerprint that
// checkpoints record so a resume on other data is noticed.
import Support
import Foundation
import Tensors

/// Pretraining images (labels kept for the kNN monitor). Every source is read-only and `Sendable`, so loader
/// threads can decode samples concurrently.
public struct PretrainDataset: Sendable {
  public enum Source: Sendable {
    case idx(IDXDataset)
    case cifar(CIFARDataset)
    case folder(ImageFolderDataset)
    case memory([Image], labels: [Int])
  }

  public let source: Source
  /// Samples used: the first `count` of the source.
  public let count: Int
  /// SHA-256 over the kind, the sample count and the data (pixels for in-memory sources; paths and sizes of files).
  public let fingerprint: String

  public init(source: Source, limit: Int = 0) {
    self.source = source
    let available: Int = switch source {
    case let .idx(dataset): dataset.count
    case let .cifar(dataset): dataset.count
    case let .folder(dataset): dataset.count
    case let .memory(images, _): images.count
    }
    count = limit > 0 ? min(limit, available) : available
    var hash = SHA256()
    hash.update("\(count)")
    switch source {
    case let .idx(dataset):
      hash.update("idx \(dataset.width)x\(dataset.height)")
      hash.update(dataset.pixels[0..<(count * dataset.width * dataset.height)])
    case let .cifar(dataset):
      hash.update("cifar")
      for file in dataset.files { hash.update("\(file.lastPathComponent) \(Self.fileSize(file))") }
    case let .folder(dataset):
      hash.update("folder")
      for sample in dataset.samples.prefix(count) {
        hash.update("\(sample.url.path.dropFirst(dataset.root.path.count)) \(sample.label) \(Self.fileSize(sample.url))")
      }
    case let .memory(images, _):
      hash.update("memory")
      for image in images.prefix(count) { hash.update(image.pixels) }
    }
    fingerprint = hash.finalize().map { String(format: "%02x", $0) }.joined()
  }

  /// Opens a pretraining config's `data.kind` at `path` (`split` for `fashion-mnist` and `cifar10`), the first
  /// `limit` samples (0: all); fails before training if the data is missing. Any other kind (`synthetic`) makes
  /// `limit` (default 64) generated 32×32 images.
  public static func open(kind: String, path: String, limit: Int, channels: Int,
                          split: DatasetSplit = .train) throws -> PretrainDataset {
    let url = URL(fileURLWithPath: path)
    switch kind {
    case "fashion-mnist": return PretrainDataset(source: .idx(try IDXDataset(directory: url, split: split)),
                                                 limit: limit)
    case "cifar10": return PretrainDataset(source: .cifar(try CIFARDataset(directory: url, split: split)),
                                           limit: limit)
    case "image-folder":
      // ImageNet-layout folders: `path` is the train folder; the held-out split is its sibling `val`.
      let root = split == .train ? url : url.deletingLastPathComponent().appendingPathComponent("val")
      return PretrainDataset(source: .folder(try ImageFolderDataset(root: root)), limit: limit)
    default:
      var rng = SplitMix64.derived(0x5917, split == .train ? 0 : 1)
      let (images, labels) = makeSyntheticImages(count: limit > 0 ? limit : 64, size: 32,
                                                 channels: channels, using: &rng)
      return PretrainDataset(source: .memory(images, labels: labels))
    }
  }

  /// Sample `index` as an 8-bit image with `channels` channels (gray replicated to RGB, or RGB reduced to luma);
  /// folder images are decoded here.
  public func image(at index: Int, channels: Int) throws -> Image {
    let image: Image = switch source {
    case let .idx(dataset): dataset.image(at: index)
    case let .cifar(dataset): dataset.image(at: index)
    case let .folder(dataset): try Image(contentsOf: dataset.samples[index].url, mode: .rgb)
    case let .memory(images, _): images[index]
    }
    return convertChannels(image, to: channels)
  }

  public func label(at index: Int) -> Int {
    switch source {
    case let .idx(dataset): Int(dataset.labels[index])
    case let .cifar(dataset): Int(dataset.labels[index])
    case let .folder(dataset): dataset.samples[index].label
    case let .memory(_, labels): labels[index]
    }
  }

  private static func fileSize(_ url: URL) -> Int64 {
    ((try? FileManager.default.attributesOfItem(atPath: url.path))?[.size] as? NSNumber)?.int64Value ?? -1
  }
}
