// `data preview`: a grid of augmented views, so a person can look at what the network sees.
// Row r: source image r (fitted into a cell), then its views under the chosen transform.
import Foundation
import Tensors

/// Which preprocessing the preview shows.
public enum PreviewTransform: String, CaseIterable, Sendable {
  /// Two independent SimSiam views (`SimSiamAugmentation`, PROTOCOLS §1.1).
  case simsiam
  /// Two linear-probe training views (`LinearProbeAugmentation`, §4.1), before Lighting, which acts on tensors.
  case linear
  /// The two evaluation views: Resize + CenterCrop (§4.1, §4.5), then Resize + squash (the SVM's, §2.2).
  case eval
}

/// Draws and lays out preview grids. Views are 8-bit images before ToTensor; grayscale views are shown as RGB.
public struct PreviewGrid: Sendable {
  public var transform: PreviewTransform
  /// Side of every cell, and the transforms' output size (224 reproduces the protocols; the eval resize is
  /// scaled as 256 : 224).
  public var size: Int
  /// Gap between cells and around the grid, in pixels.
  public var padding: Int
  public var seed: UInt64

  /// Views per row after the source.
  public static let viewsPerSource = 2
  /// The gray level of the gaps.
  public static let gapLevel: UInt8 = 32

  public init(transform: PreviewTransform, size: Int = 224, padding: Int = 4, seed: UInt64 = 0) {
    precondition(size >= 8 && padding >= 0, "A preview needs cells of ≥ 8 px and padding ≥ 0, got \(size), \(padding).")
    self.transform = transform
    self.size = size
    self.padding = padding
    self.seed = seed
  }

  /// (width, height) of a grid of `rows` sources.
  public func gridSize(rows: Int) -> (width: Int, height: Int) {
    let columns = 1 + Self.viewsPerSource
    return (columns * size + (columns + 1) * padding, rows * size + (rows + 1) * padding)
  }

  /// The views of the source in row `row`, from the stream `SplitMix64.derived(seed, 0x9E1E3, row)`.
  public func views(of source: Image, row: Int) -> [Image] {
    var generator = SplitMix64.derived(seed, 0x9E1E3, UInt64(row))
    let rgb = source.convertedToRGB()
    switch transform {
    case .simsiam:
      let augmentation = SimSiamAugmentation(size: size)
      return (0..<Self.viewsPerSource).map { _ in augmentation.augmentedImage(rgb, using: &generator).convertedToRGB() }
    case .linear:
      let augmentation = LinearProbeAugmentation(size: size)
      return (0..<Self.viewsPerSource).map { _ in
        augmentation.augmentedImage(rgb, parameters: augmentation.parameters(for: rgb, using: &generator))
          .convertedToRGB()
      }
    case .eval:
      let resize = max(size, (size * 256 + 112) / 224)
      return [EvaluationTransform(resize: resize, size: size, mode: .centerCrop).image(rgb).convertedToRGB(),
              EvaluationTransform(resize: resize, size: size, mode: .squash).image(rgb).convertedToRGB()]
    }
  }

  /// The grid: one row per source, RGB.
  public func render(_ sources: [Image]) -> Image {
    let (width, height) = gridSize(rows: sources.count)
    var grid = Image(width: width, height: height, channels: 3, value: Self.gapLevel)
    for (row, source) in sources.enumerated() {
      let y = padding + row * (size + padding)
      let fitted = fitted(source.convertedToRGB())
      paste(fitted, into: &grid, x: padding + (size - fitted.width) / 2, y: y + (size - fitted.height) / 2)
      for (column, view) in views(of: source, row: row).enumerated() {
        paste(view, into: &grid, x: padding + (column + 1) * (size + padding), y: y)
      }
    }
    return grid
  }

  /// The source scaled (PIL bilinear) so its longer side is `size`.
  func fitted(_ image: Image) -> Image {
    let scale = Double(size) / Double(max(image.width, image.height))
    let width = max(1, min(size, Int((Double(image.width) * scale).rounded())))
    let height = max(1, min(size, Int((Double(image.height) * scale).rounded())))
    return image.width == width && image.height == height ? image : image.resized(width: width, height: height)
  }

  private func paste(_ image: Image, into grid: inout Image, x: Int, y: Int) {
    precondition(image.channels == 3 && x + image.width <= grid.width && y + image.height <= grid.height,
                 "A \(image.width)×\(image.height)×\(image.channels) view does not fit the grid at (\(x), \(y)).")
    let rowBytes = image.width * 3
    for row in 0..<image.height {
      let target = ((y + row) * grid.width + x) * 3
      grid.pixels.replaceSubrange(target..<(target + rowBytes),
                                  with: image.pixels[(row * rowBytes)..<((row + 1) * rowBytes)])
    }
  }

  /// Up to `count` images of the dataset at `data`, chosen with `seed`: an image folder (JPEG and PNG files), a
  /// VOC year directory (its trainval list, else its first Main list) or IDX files (the train split; gray).
  public static func loadSources(data: URL, count: Int, seed: UInt64) throws -> [Image] {
    precondition(count >= 1, "A preview needs at least one source image, got \(count).")
    var generator = SplitMix64.derived(seed, 0x5EC7)
    func choose(_ total: Int) -> [Int] {
      var order = Array(0..<total)
      for i in 0..<min(count, total) { order.swapAt(i, i + generator.transformIndex(below: total - i)) }
      return Array(order.prefix(count))
    }
    switch try DatasetCheck.detectFormat(of: data) {
    case .idx:
      let dataset = try IDXDataset(directory: data, split: .train)
      return choose(dataset.count).map { dataset.image(at: $0) }
    case .voc:
      let dataset = try VOCDataset(root: data)
      let splits = try dataset.mainSplits()
      guard let split = splits.contains("trainval") ? "trainval" : splits.first else {
        throw DatasetError.missingFile(path: dataset.mainSetsDirectory.appendingPathComponent("trainval.txt").path,
                                       hint: "A VOC preview needs an image list in ImageSets/Main.")
      }
      let ids = try dataset.imageIDs(split: split)
      return try choose(ids.count).map { try Image(contentsOf: dataset.imageURL(id: ids[$0]), mode: .rgb) }
    case .imagefolder:
      let files = try ImageFolderDataset(root: data).samples.map(\.url)
        .filter { ImageFormat(pathExtension: $0.pathExtension) != nil }
      guard !files.isEmpty else {
        throw DatasetError.noImages(path: data.path, hint: "data preview reads .jpg, .jpeg and .png files.")
      }
      return try choose(files.count).map { try Image(contentsOf: files[$0], mode: .rgb) }
    default:
      throw DatasetError.unknownLayout(
        path: data.path, hint: "data preview reads an image folder, a VOC year directory or IDX files (Fashion-MNIST).")
    }
  }
}
