// Labelled image sources for the classification probes and the kNN classifier (PROTOCOLS §4): the embedded
// Fashion-MNIST and CIFAR data, ImageNet-layout folders, MMSelfSup image lists ("path label"), Places205 csv lists
// and iNaturalist 2018 (image list or the official COCO-style JSON). Every source has class names and a fingerprint.
import Support
import Foundation
import Tensors

/// Which reader a classification dataset uses. Raw values are the config's `data.kind`.
public enum ClassificationDataKind: String, Codable, Sendable, CaseIterable {
  /// IDX files (`train-images-idx3-ubyte[.gz]`, `t10k-…`) in `path`.
  case fashionMNIST = "fashion-mnist"
  /// CIFAR-10 or CIFAR-100 binary batches in `path`.
  case cifar10
  /// ImageNet layout: `path/train/<class>/*.JPEG` and `path/val/<class>/*.JPEG` (torchvision ImageFolder).
  case imageFolder = "image-folder"
  /// MMSelfSup `ImageList`: `train_list` / `val_list` with "relative/path label" lines under `train_root` /
  /// `val_root` (default: `path`).
  case imageList = "image-list"
  /// Places205's `trainvalsplit_places205/{train,val}_places205.csv` ("path label" or "path,label") under
  /// `images256` (MMSelfSup `places205` config).
  case places205
  /// iNaturalist 2018: image lists as MMSelfSup's config, or the official `train2018.json` / `val2018.json`.
  case inaturalist2018
  /// Generated patterns in 4 classes (tests and smoke runs).
  case synthetic
}

/// Where a classification dataset is and which part of it to use (`data.*` of the probe and kNN configs).
public struct ClassificationDataLocation: Sendable, Equatable {
  public var kind: ClassificationDataKind
  public var path: String
  public var trainList: String
  public var valList: String
  public var trainRoot: String
  public var valRoot: String
  /// Use only the first `limit` training / `testLimit` test images (0: all).
  public var limit: Int
  public var testLimit: Int

  public init(kind: ClassificationDataKind, path: String, trainList: String = "", valList: String = "",
              trainRoot: String = "", valRoot: String = "", limit: Int = 0, testLimit: Int = 0) {
    self.kind = kind; self.path = path; self.trainList = trainList; self.valList = valList
    self.trainRoot = trainRoot; self.valRoot = valRoot; self.limit = limit; self.testLimit = testLimit
  }
}

/// A fixed, ordered, labelled list of images.
public struct ClassificationSource: Sendable {
  enum Storage: Sendable {
    case idx(IDXDataset)
    case cifar(CIFARDataset)
    case files([URL])
    case memory([Image])
  }

  let storage: Storage
  /// Label of every image, 0 ..< `classNames.count`.
  public let labels: [Int]
  public let classNames: [String]
  public let count: Int
  public let fingerprint: String
  /// Human-readable origin, e.g. "fashion-mnist test (/usr/share/datasets/fashion-mnist)".
  public let name: String

  init(storage: Storage, labels: [Int], classNames: [String], name: String, limit: Int, fingerprintParts: [String]) {
    let available = labels.count
    let count = limit > 0 ? min(limit, available) : available
    self.storage = storage
    self.labels = Array(labels.prefix(count))
    self.classNames = classNames
    self.count = count
    self.name = name
    var hash = SHA256()
    hash.update("classification \(count)")
    for part in fingerprintParts { hash.update(part) }
    switch storage {
    case let .idx(dataset): hash.update(dataset.pixels[0..<(count * dataset.width * dataset.height)])
    case let .memory(images): for image in images.prefix(count) { hash.update(image.pixels) }
    case .cifar, .files: break  // fingerprintParts name the files and their content digests
    }
    for label in self.labels { hash.update("\(label),") }
    fingerprint = hash.finalize().map { String(format: "%02x", $0) }.joined()
  }

  /// In-memory images (tests, synthetic data).
  public init(images: [Image], labels: [Int], classNames: [String]? = nil, name: String = "memory") {
    precondition(images.count == labels.count, "\(images.count) images but \(labels.count) labels.")
    let classes = classNames ?? (0..<((labels.max() ?? -1) + 1)).map { "class \($0)" }
    self.init(storage: .memory(images), labels: labels, classNames: classes, name: name, limit: 0,
              fingerprintParts: ["memory"])
  }

  public var classCount: Int { classNames.count }

  /// Side of every image when the dataset has one fixed size (28 for Fashion-MNIST, 32 for CIFAR), else nil.
  public var nativeSize: Int? {
    switch storage {
    case let .idx(dataset): dataset.width == dataset.height ? dataset.width : nil
    case .cifar: CIFARDataset.imageSize
    case let .memory(images):
      images.first.flatMap { first in
        images.allSatisfy { $0.width == first.width && $0.height == first.width } ? first.width : nil
      }
    case .files: nil
    }
  }

  public func image(at index: Int, channels: Int) throws -> Image {
    precondition(index >= 0 && index < count, "Image index \(index) is outside 0..<\(count) of \(name).")
    let image: Image = switch storage {
    case let .idx(dataset): dataset.image(at: index)
    case let .cifar(dataset): dataset.image(at: index)
    case let .files(urls): try Image(contentsOf: urls[index], mode: .rgb)
    case let .memory(images): images[index]
    }
    return convertChannels(image, to: channels)
  }

  public func location(of index: Int) -> String {
    switch storage {
    case let .files(urls): urls[index].path
    default: "\(name)[\(index)]"
    }
  }

  // MARK: - Opening

  /// The `split` of the dataset `location` describes.
  public static func open(_ location: ClassificationDataLocation, split: DatasetSplit,
                          channels: Int = 3) throws -> ClassificationSource {
    let limit = split == .train ? location.limit : location.testLimit
    let path = URL(fileURLWithPath: location.path)
    let splitName = split == .train ? "train" : "test"
    switch location.kind {
    case .fashionMNIST:
      let dataset = try IDXDataset(directory: path, split: split)
      let classes = dataset.classCount <= IDXDataset.fashionMNISTClasses.count
        ? IDXDataset.fashionMNISTClasses : (0..<dataset.classCount).map { "class \($0)" }
      return ClassificationSource(storage: .idx(dataset), labels: dataset.labels.map(Int.init), classNames: classes,
                                  name: "fashion-mnist \(splitName) (\(path.path))", limit: limit,
                                  fingerprintParts: ["idx \(dataset.width)x\(dataset.height)"])
    case .cifar10:
      let dataset = try CIFARDataset(directory: path, split: split)
      return ClassificationSource(storage: .cifar(dataset), labels: dataset.labels.map(Int.init),
                                  classNames: dataset.classes, name: "cifar \(splitName) (\(path.path))",
                                  limit: limit,
                                  fingerprintParts: ["cifar"] + (try fileParts(dataset.files[...], root: path)))
    case .imageFolder:
      let root = path.appendingPathComponent(split == .train ? "train" : "val")
      let dataset = try ImageFolderDataset(root: root)
      let urls = dataset.samples.map(\.url)
      return ClassificationSource(storage: .files(urls), labels: dataset.samples.map(\.label),
                                  classNames: dataset.classes, name: "image folder \(root.path)", limit: limit,
                                  fingerprintParts: try fileParts(urls.prefix(limit > 0 ? limit : urls.count),
                                                              root: root))
    case .imageList, .places205, .inaturalist2018:
      let list = split == .train ? location.trainList : location.valList
      guard !list.isEmpty else {
        throw DatasetError.missingFile(
          path: "data.\(split == .train ? "train_list" : "val_list")",
          hint: "A \(location.kind.rawValue) dataset needs data.train_list and data.val_list (list files with "
            + "'relative/path label' lines); set them in the config or with --set.")
      }
      let listURL = URL(fileURLWithPath: list, relativeTo: path).standardizedFileURL
      let rootText = split == .train ? location.trainRoot : location.valRoot
      let root = rootText.isEmpty ? path : URL(fileURLWithPath: rootText, relativeTo: path).standardizedFileURL
      if location.kind == .inaturalist2018 && listURL.pathExtension.lowercased() == "json" {
        return try openINaturalistJSON(listURL, root: root, limit: limit)
      }
      let dataset = try ImageListDataset(listFile: listURL, root: root)
      guard dataset.isLabeled else {
        throw DatasetError.malformedLine(path: listURL.path, line: 1, text: dataset.samples[0].relativePath,
                                         expected: "'relative/path label': a probe needs labelled images")
      }
      let urls = dataset.samples.map(\.url)
      let labels = dataset.samples.map { $0.label! }
      return ClassificationSource(storage: .files(urls), labels: labels,
                                  classNames: (0..<dataset.classCount).map { "class \($0)" },
                                  name: "\(location.kind.rawValue) list \(listURL.path)", limit: limit,
                                  fingerprintParts: ["list \(listURL.lastPathComponent)"]
                                    + (try fileParts(urls.prefix(limit > 0 ? limit : urls.count), root: root)))
    case .synthetic:
      var rng = SplitMix64.derived(0x5917, split == .train ? 0 : 1)
      let (images, labels) = makeSyntheticImages(count: limit > 0 ? limit : 64, size: 32, channels: channels,
                                                 using: &rng)
      return ClassificationSource(storage: .memory(images), labels: labels,
                                  classNames: ["square", "disc", "horizontal bar", "vertical bar"],
                                  name: "synthetic \(splitName)", limit: 0, fingerprintParts: ["synthetic"])
    }
  }

  /// The official iNaturalist 2018 annotation file: `images[{id, file_name}]`, `annotations[{image_id,
  /// category_id}]`, `categories[{id, name}]` (categories may be absent in the test file).
  static func openINaturalistJSON(_ url: URL, root: URL, limit: Int) throws -> ClassificationSource {
    struct File: Decodable {
      struct ImageEntry: Decodable { var id: Int; var file_name: String }
      struct Annotation: Decodable { var image_id: Int; var category_id: Int }
      struct Category: Decodable { var id: Int; var name: String }
      var images: [ImageEntry]
      var annotations: [Annotation]
      var categories: [Category]?
    }
    let file: File
    do { file = try JSONDecoder().decode(File.self, from: try Data(contentsOf: url)) } catch {
      throw DatasetError.malformedJSON(path: url.path, reason: "\(error)")
    }
    var labelOf: [Int: Int] = [:]
    for annotation in file.annotations { labelOf[annotation.image_id] = annotation.category_id }
    var urls: [URL] = [], labels: [Int] = []
    for image in file.images {
      guard let label = labelOf[image.id] else {
        throw DatasetError.missingField(path: url.path, field: "annotations[image_id=\(image.id)]")
      }
      urls.append(root.appendingPathComponent(image.file_name))
      labels.append(label)
    }
    let classCount = max((labels.max() ?? -1) + 1, (file.categories?.map(\.id).max() ?? -1) + 1)
    var names = (0..<classCount).map { "class \($0)" }
    for category in file.categories ?? [] where category.id < classCount { names[category.id] = category.name }
    return ClassificationSource(storage: .files(urls), labels: labels, classNames: names,
                                name: "inaturalist2018 \(url.path)", limit: limit,
                                fingerprintParts: ["inat-json \(url.lastPathComponent)"]
                                  + (try fileParts(urls.prefix(limit > 0 ? limit : urls.count), root: root)))
  }

  /// "relative/path sha256" per file: what the fingerprint hashes for file-backed sources. The digest is of the
  /// file's bytes (FileContentDigests.swift), so a rewritten image gets new cached features.
  private static func fileParts(_ urls: ArraySlice<URL>, root: URL) throws(DatasetError) -> [String] {
    let prefix = root.path.count
    let digests = try contentDigests(of: Array(urls), missingHint: "The dataset's list names it; the folder must hold it.")
    return zip(urls, digests).map { url, digest in
      "\(url.path.dropFirst(prefix)) " + digest.map { String(format: "%02x", $0) }.joined()
    }
  }
}
