// The unlabelled images a pretraining run draws its views from, whatever their source, with a fingerprint that
// checkpoints record so a resume on other data is noticed.
import Foundation
import Tensors
import Datasets

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

  /// Opens the dataset a config names (`split` for `fashion-mnist` and `cifar10`); fails before training if the
  /// data is missing. `synthetic` makes 64 generated 32×32 images.
  public static func open(_ data: PretrainConfig.DataSection, channels: Int,
                          split: DatasetSplit = .train) throws -> PretrainDataset {
    let url = URL(fileURLWithPath: data.path)
    switch data.kind {
    case "fashion-mnist": return PretrainDataset(source: .idx(try IDXDataset(directory: url, split: split)),
                                                 limit: data.limit)
    case "cifar10": return PretrainDataset(source: .cifar(try CIFARDataset(directory: url, split: split)),
                                           limit: data.limit)
    case "image-folder":
      // ImageNet-layout folders: `path` is the train folder; the held-out split is its sibling `val`.
      let root = split == .train ? url : url.deletingLastPathComponent().appendingPathComponent("val")
      return PretrainDataset(source: .folder(try ImageFolderDataset(root: root)), limit: data.limit)
    default:
      var rng = SplitMix64.derived(0x5917, split == .train ? 0 : 1)
      let (images, labels) = makeSyntheticImages(count: data.limit > 0 ? data.limit : 64, size: 32,
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
    if image.channels == channels { return image }
    if channels == 3 {
      return Image(width: image.width, height: image.height, channels: 3,
                   pixels: image.pixels.flatMap { [$0, $0, $0] })
    }
    let gray = rgbToGrayscale(image)
    let stride = gray.channels
    return Image(width: gray.width, height: gray.height, channels: 1,
                 pixels: (0..<(gray.width * gray.height)).map { gray.pixels[$0 * stride] })
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

/// `count` generated images in 4 classes: a bright square, disc, horizontal bar or vertical bar at a random
/// position and size on a noisy background. Small enough for tests, structured enough for SimSiam to learn.
public func makeSyntheticImages(count: Int, size: Int, channels: Int,
                                using rng: inout SplitMix64) -> (images: [Image], labels: [Int]) {
  var images: [Image] = [], labels: [Int] = []
  for index in 0..<count {
    let label = index % 4
    let radius = Float(size) * (0.15 + 0.15 * rng.nextUniform())
    let cx = Float(size) * (0.3 + 0.4 * rng.nextUniform()), cy = Float(size) * (0.3 + 0.4 * rng.nextUniform())
    let tint = (0..<channels).map { _ in 150 + 100 * rng.nextUniform() }
    var pixels = [UInt8](repeating: 0, count: size * size * channels)
    for y in 0..<size {
      for x in 0..<size {
        let dx = Float(x) + 0.5 - cx, dy = Float(y) + 0.5 - cy
        let inside: Bool = switch label {
        case 0: abs(dx) < radius && abs(dy) < radius
        case 1: dx * dx + dy * dy < radius * radius
        case 2: abs(dx) < 1.6 * radius && abs(dy) < 0.4 * radius
        default: abs(dx) < 0.4 * radius && abs(dy) < 1.6 * radius
        }
        for c in 0..<channels {
          let noise = 30 * rng.nextUniform()
          pixels[(y * size + x) * channels + c] = UInt8(min(255, (inside ? tint[c] : 20) + noise))
        }
      }
    }
    images.append(Image(width: size, height: size, channels: channels, pixels: pixels))
    labels.append(label)
  }
  return (images, labels)
}
