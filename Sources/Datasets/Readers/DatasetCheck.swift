// `simsiam-bench data check`: recognise a dataset layout, count images and classes, find missing or unreadable
// files, and fingerprint the file list for provenance.
import Foundation
import Support
import Tensors

/// The on-disk layouts the readers understand.
public enum DatasetFormat: String, CaseIterable, Sendable {
  case imagefolder, list, voc, coco, idx, cifar
}

/// What `data check` found in a dataset.
///
/// The fingerprint is the SHA-256 of the text made of one line `<relative path>\t<size in bytes>\n` per file of
/// the dataset (images and the metadata the reader uses: lists, annotations, IDX or CIFAR files), sorted by path in
/// code-point order; paths are relative to the checked path (its directory, for a file). Missing files are not in
/// it. It changes when a file is added, removed, renamed or changes size.
public struct DatasetCheck: Sendable {
  /// A count worth printing, such as `trainval images` or `annotations`.
  public struct Count: Sendable, Equatable {
    public var name: String
    public var value: Int
  }

  /// Per-class counts; `counts` follows `DatasetCheck.classColumns`.
  public struct ClassCounts: Sendable, Equatable {
    public var name: String
    public var counts: [Int]
  }

  /// A file that exists but cannot be used.
  public struct Problem: Sendable, Equatable {
    public var path: String
    public var reason: String
  }

  public var format: DatasetFormat
  public var path: String
  public var counts: [Count] = []
  /// What each per-class count counts, e.g. ["train", "test"] or ["objects", "difficult"].
  public var classColumns: [String] = []
  public var classes: [ClassCounts] = []
  /// Relative paths of files the dataset names but that do not exist.
  public var missing: [String] = []
  public var unreadable: [Problem] = []
  public var fileCount = 0
  public var totalBytes: Int64 = 0
  /// Lowercase hex SHA-256 of the sorted file list (see the type's documentation).
  public var fingerprint = ""

  /// Whether every file the dataset names exists and is readable.
  public var isComplete: Bool { missing.isEmpty && unreadable.isEmpty }

  // MARK: - Running a check

  /// Checks the dataset at `data`. `format` nil detects it; `root` is the image root of a list file (default: the
  /// list's directory) and `imageDirectory` the COCO image directory (default: the standard layout). With
  /// `decodesImages` every JPEG/PNG is decoded in full (on all cores), so truncated or corrupt images are reported
  /// too; without it images are checked by size and magic bytes only.
  /// Throws `DatasetError` when the layout cannot be read at all; files that are missing or unreadable are
  /// reported in the result instead.
  public static func run(data: URL, format: DatasetFormat? = nil, root: URL? = nil,
                         imageDirectory: URL? = nil, decodesImages: Bool = false) throws -> DatasetCheck {
    guard FileManager.default.fileExists(atPath: data.path) else {
      throw DatasetError.missingDirectory(path: data.path, hint: "Check --data.")
    }
    let format = try format ?? detectFormat(of: data)
    let base = DatasetFiles.isDirectory(data) ? data : data.deletingLastPathComponent()
    var check = DatasetCheck(format: format, path: data.path)
    var inventory = FileInventory(base: base)
    switch format {
    case .imagefolder: try check.checkImageFolder(data, &inventory)
    case .list: try check.checkList(data, root: root, &inventory)
    case .voc: try check.checkVOC(data, &inventory)
    case .coco: try check.checkCOCO(data, imageDirectory: imageDirectory, &inventory)
    case .idx: try check.checkIDX(data, &inventory)
    case .cifar: try check.checkCIFAR(data, &inventory)
    }
    if decodesImages { inventory.decodeImages() }
    check.missing = inventory.missing
    check.unreadable = inventory.unreadable
    check.fileCount = inventory.sizes.count
    check.totalBytes = inventory.sizes.values.reduce(0, +)
    check.fingerprint = inventory.fingerprint()
    return check
  }

  /// Recognises a layout: a `.json` file is COCO, another file an image list; a directory with ImageSets is a
  /// VOC year, with annotations/instances_*.json COCO, with *-idx3-ubyte[.gz] IDX, with CIFAR batch files CIFAR,
  /// and with subdirectories an image folder.
  public static func detectFormat(of url: URL) throws -> DatasetFormat {
    if DatasetFiles.isFile(url) { return url.pathExtension.lowercased() == "json" ? .coco : .list }
    try DatasetFiles.requireDirectory(url, hint: "Check --data.")
    let names = try DatasetFiles.contents(of: url)
    if names.contains("ImageSets") { return .voc }
    if names.contains(where: { $0.hasPrefix("VOC20") }) {
      throw DatasetError.unknownLayout(path: url.path, hint: "This looks like a VOCdevkit folder; pass one year "
                                         + "directory, e.g. --data \(url.appendingPathComponent("VOC2007").path).")
    }
    let annotations = url.appendingPathComponent("annotations")
    if DatasetFiles.isDirectory(annotations),
       try DatasetFiles.contents(of: annotations).contains(where: { $0.hasPrefix("instances_") && $0.hasSuffix(".json") }) {
      return .coco
    }
    if names.contains(where: { $0.contains("idx3-ubyte") }) { return .idx }
    if (try? CIFARDataset.variant(of: url)) != nil { return .cifar }
    if names.contains(where: { DatasetFiles.isDirectory(url.appendingPathComponent($0)) }) { return .imagefolder }
    throw DatasetError.unknownLayout(
      path: url.path, hint: "Expected an image folder (class subfolders), a VOC year directory, a COCO directory "
        + "(annotations/instances_*.json), IDX or CIFAR files, or an image-list file; or pass --format.")
  }

  // MARK: - Layouts

  private mutating func checkImageFolder(_ data: URL, _ inventory: inout FileInventory) throws {
    let dataset = try ImageFolderDataset(root: data)
    counts = [Count(name: "images", value: dataset.count), Count(name: "classes", value: dataset.classes.count)]
    var perClass = [Int](repeating: 0, count: dataset.classes.count)
    for sample in dataset.samples {
      perClass[sample.label] += 1
      inventory.addImage(sample.url)
    }
    classColumns = ["images"]
    classes = zip(dataset.classes, perClass).map { ClassCounts(name: $0, counts: [$1]) }
  }

  private mutating func checkList(_ data: URL, root: URL?, _ inventory: inout FileInventory) throws {
    let dataset = try ImageListDataset(listFile: data, root: root)
    inventory.addFile(data)
    counts = [Count(name: "images", value: dataset.count)]
    if dataset.isLabeled {
      counts.append(Count(name: "classes", value: dataset.classCount))
      var perClass = [Int](repeating: 0, count: dataset.classCount)
      for sample in dataset.samples { perClass[sample.label!] += 1 }
      classColumns = ["images"]
      classes = perClass.enumerated().map { ClassCounts(name: "\($0)", counts: [$1]) }
    }
    for sample in dataset.samples { inventory.addImage(sample.url) }
  }

  private mutating func checkVOC(_ data: URL, _ inventory: inout FileInventory) throws {
    let dataset = try VOCDataset(root: data)
    var ids = Set<String>()
    var splitIDs: [String: [String]] = [:]
    for split in try dataset.mainSplits() {
      let listed = try dataset.imageIDs(split: split)
      counts.append(Count(name: "\(split) images", value: listed.count))
      ids.formUnion(listed)
      splitIDs[split] = listed
    }
    for name in try DatasetFiles.contents(of: dataset.mainSetsDirectory) where name.hasSuffix(".txt") {
      inventory.addFile(dataset.mainSetsDirectory.appendingPathComponent(name))
    }
    // The ImageSets/Main/<class>_<split>.txt lists: each split that has some needs its image list and a list for
    // every class, and its class lists must name the images of its list. A malformed or inconsistent list is
    // reported; a devkit without class lists (segmentation only) is fine. Class names come from trainval (else
    // the first split that has class lists).
    let labelledSplits = try dataset.classListSplits()
    for split in labelledSplits where splitIDs[split] == nil {
      inventory.missing.append(inventory.relativePath(dataset.mainSetsDirectory.appendingPathComponent("\(split).txt")))
    }
    for url in try dataset.missingClassLists(splits: labelledSplits) {
      inventory.missing.append(inventory.relativePath(url))
    }
    var classLists: [String]?
    let trainvalFirst = labelledSplits.filter { $0 == "trainval" } + labelledSplits.filter { $0 != "trainval" }
    for split in trainvalFirst {
      do {
        let labels = try dataset.classificationLabels(split: split)
        if classLists == nil { classLists = labels.classes }
        if let listed = splitIDs[split], let error = dataset.membershipError(split: split, ids: listed, labels: labels) {
          throw error
        }
      } catch let error as DatasetError {
        record(error, data: data, &inventory)
      }
    }
    var objects: [String: (all: Int, difficult: Int)] = [:]
    var objectCount = 0
    var detection = DetectionLayoutCounts()
    for id in ids.sortedByCodePoint() {
      inventory.addImage(dataset.imageURL(id: id))
      let annotationURL = dataset.annotationURL(id: id)
      guard inventory.addFile(annotationURL) else { continue }
      do {
        let annotation = try dataset.annotation(id: id)
        for object in annotation.objects {
          objects[object.name, default: (0, 0)].all += 1
          objects[object.name, default: (0, 0)].difficult += object.isDifficult ? 1 : 0
          objectCount += 1
        }
        if let problem = detection.add(annotation) {
          inventory.unreadable.append(Problem(path: inventory.relativePath(annotationURL), reason: problem))
        }
      } catch {
        inventory.unreadable.append(Problem(path: inventory.relativePath(annotationURL), reason: "\(error)"))
      }
    }
    counts.append(Count(name: "annotated objects", value: objectCount))
    counts += detection.nonZeroCounts
    let segmentationSets = data.appendingPathComponent("ImageSets/Segmentation")
    var segmentationImages = 0
    for split in try dataset.segmentationSplits() {
      let pairs = try dataset.segmentationPairs(split: split)
      segmentationImages += pairs.count
      inventory.addFile(segmentationSets.appendingPathComponent("\(split).txt"))
      counts.append(Count(name: "segmentation \(split) images", value: pairs.count))
      for pair in pairs {
        inventory.addImage(pair.image)
        inventory.addImage(pair.mask)
      }
    }
    // A devkit whose lists name no image at all is not a dataset (e.g. what an interrupted writer left, issue 14
    // item 9): refused, not reported as a clean check of 0 files.
    if ids.isEmpty && segmentationImages == 0 {
      throw DatasetError.noImages(
        path: data.path, hint: "Its ImageSets lists name no images (ImageSets/Main and ImageSets/Segmentation are "
          + "empty or missing); is it a half-written devkit? Write it again (e.g. data make-scenes into a new folder).")
    }
    let names = Set(objects.keys).union(classLists ?? []).sortedByCodePoint()
    counts.append(Count(name: "classes", value: names.count))
    if let classLists { counts.append(Count(name: "classes with ImageSets/Main lists", value: classLists.count)) }
    classColumns = ["objects", "difficult"]
    classes = names.map { ClassCounts(name: $0, counts: [objects[$0]?.all ?? 0, objects[$0]?.difficult ?? 0]) }
  }

  private mutating func checkCOCO(_ data: URL, imageDirectory: URL?, _ inventory: inout FileInventory) throws {
    let files: [URL]
    if DatasetFiles.isFile(data) {
      files = [data]
    } else {
      let annotations = data.appendingPathComponent("annotations")
      files = try DatasetFiles.contents(of: annotations)
        .filter { $0.hasPrefix("instances_") && $0.hasSuffix(".json") }.sortedByCodePoint()
        .map(annotations.appendingPathComponent)
    }
    var perCategory: [String: [Int]] = [:]
    for (column, file) in files.enumerated() {
      let dataset = try COCODataset(annotationFile: file, imageDirectory: imageDirectory)
      let split = file.deletingPathExtension().lastPathComponent.replacingOccurrences(of: "instances_", with: "")
      classColumns.append(split)
      inventory.addFile(file)
      let instances = dataset.instances
      counts += [Count(name: "\(split) images", value: instances.images.count),
                 Count(name: "\(split) annotations", value: instances.annotations.count),
                 Count(name: "\(split) crowd annotations", value: instances.annotations.filter(\.isCrowd).count)]
      let names = Dictionary(instances.categories.map { ($0.id, $0.name) }, uniquingKeysWith: { first, _ in first })
      let imageIDs = Set(instances.images.map(\.id))
      var dangling = 0
      for annotation in instances.annotations {
        guard let name = names[annotation.categoryID], imageIDs.contains(annotation.imageID) else {
          dangling += 1
          continue
        }
        perCategory[name, default: [Int](repeating: 0, count: files.count)][column] += 1
      }
      for category in instances.categories where perCategory[category.name] == nil {
        perCategory[category.name] = [Int](repeating: 0, count: files.count)
      }
      if dangling > 0 {
        inventory.unreadable.append(Problem(path: inventory.relativePath(file), reason: "\(dangling) annotations "
                                              + "name an image or category id that the file does not define"))
      }
      for image in instances.images { inventory.addImage(dataset.imageURL(image)) }
    }
    counts.append(Count(name: "classes", value: perCategory.count))
    classes = perCategory.keys.sortedByCodePoint().map { ClassCounts(name: $0, counts: perCategory[$0]!) }
  }

  private mutating func checkIDX(_ data: URL, _ inventory: inout FileInventory) throws {
    var perSplit: [[Int]] = []
    for split in DatasetSplit.allCases {
      do {
        let dataset = try IDXDataset(directory: data, split: split)
        inventory.addFile(dataset.imageFile)
        inventory.addFile(dataset.labelFile)
        counts.append(Count(name: "\(split.rawValue) images", value: dataset.count))
        var perClass = [Int](repeating: 0, count: 256)
        for label in dataset.labels { perClass[Int(label)] += 1 }
        classColumns.append(split.rawValue)
        perSplit.append(perClass)
      } catch let error as DatasetError {
        record(error, data: data, &inventory)
      }
    }
    let classCount = perSplit.map { $0.lastIndex { $0 > 0 }.map { $0 + 1 } ?? 0 }.max() ?? 0
    let isFashion = data.path.lowercased().contains("fashion") && classCount <= 10
    counts.append(Count(name: "classes", value: classCount))
    classes = (0..<classCount).map { label in
      ClassCounts(name: isFashion ? "\(label) \(IDXDataset.fashionMNISTClasses[label])" : "\(label)",
                  counts: perSplit.map { $0[label] })
    }
  }

  private mutating func checkCIFAR(_ data: URL, _ inventory: inout FileInventory) throws {
    var perSplit: [[Int]] = []
    var names: [String] = []
    for split in DatasetSplit.allCases {
      do {
        let dataset = try CIFARDataset(directory: data, split: split)
        dataset.files.forEach { inventory.addFile($0) }
        counts.append(Count(name: "\(split.rawValue) images", value: dataset.count))
        var perClass = [Int](repeating: 0, count: dataset.classes.count)
        for label in dataset.labels { perClass[Int(label)] += 1 }
        classColumns.append(split.rawValue)
        perSplit.append(perClass)
        names = dataset.classes
      } catch let error as DatasetError {
        record(error, data: data, &inventory)
      }
    }
    for meta in ["batches.meta.txt", "fine_label_names.txt", "coarse_label_names.txt"] {
      let url = data.appendingPathComponent(meta)
      if DatasetFiles.isFile(url) { inventory.addFile(url) }
    }
    counts.append(Count(name: "classes", value: names.count))
    classes = names.enumerated().map { label, name in ClassCounts(name: name, counts: perSplit.map { $0[label] }) }
  }

  /// A split that could not be read is a missing or unreadable file of the report, not a failed check.
  private func record(_ error: DatasetError, data: URL, _ inventory: inout FileInventory) {
    switch error {
    case let .missingFile(path, _): inventory.missing.append(inventory.relativePath(URL(fileURLWithPath: path)))
    case let .malformedBinary(path, _), let .corruptCompressedData(path, _), let .unreadableFile(path, _),
         let .inconsistentSplits(path, _), let .decompressedSizeExceedsLimit(path, _), let .malformedLine(path, _, _, _):
      inventory.unreadable.append(Problem(path: inventory.relativePath(URL(fileURLWithPath: path)),
                                          reason: error.description))
    default:
      inventory.unreadable.append(Problem(path: inventory.relativePath(data), reason: error.description))
    }
  }

  // MARK: - Report

  /// The report `data check` prints; at most `limit` missing and unreadable files are listed.
  public func rendered(listing limit: Int = 10) -> String {
    var lines = ["format:       \(format.rawValue)", "path:         \(path)"]
    let width = counts.map(\.name.count).max() ?? 0
    for count in counts {
      lines.append("\(count.name):".padding(toLength: max(width + 2, 14), withPad: " ", startingAt: 0) + "\(count.value)")
    }
    if !classes.isEmpty {
      lines.append("")
      let columns = ["class"] + classColumns
      var rows = [columns] + classes.map { [$0.name] + $0.counts.map(String.init) }
      let widths = columns.indices.map { c in rows.map { $0[c].count }.max() ?? 0 }
      rows = rows.map { row in row.enumerated().map { c, cell in c == 0 ? cell.padding(toLength: widths[c], withPad: " ",
                                                                                            startingAt: 0)
                                           : String(repeating: " ", count: widths[c] - cell.count) + cell } }
      lines += rows.map { $0.joined(separator: "  ") }
      lines.append("")
    }
    lines.append("files:        \(fileCount) (\(Self.formatBytes(totalBytes)))")
    lines.append("missing:      \(missing.count)")
    for path in missing.prefix(limit) { lines.append("  \(path)") }
    if missing.count > limit { lines.append("  … and \(missing.count - limit) more") }
    lines.append("unreadable:   \(unreadable.count)")
    for problem in unreadable.prefix(limit) { lines.append("  \(problem.path): \(problem.reason)") }
    if unreadable.count > limit { lines.append("  … and \(unreadable.count - limit) more") }
    lines.append("fingerprint:  sha256:\(fingerprint)")
    return lines.joined(separator: "\n")
  }

  static func formatBytes(_ bytes: Int64) -> String {
    let units = ["B", "KB", "MB", "GB", "TB"]
    var value = Double(bytes)
    var unit = 0
    while value >= 1000 && unit < units.count - 1 {
      value /= 1000
      unit += 1
    }
    return unit == 0 ? "\(bytes) B" : String(format: "%.1f ", value) + units[unit]
  }
}

/// The files of a dataset with their sizes, and the missing or unreadable ones.
struct FileInventory {
  let base: URL
  var sizes: [String: Int64] = [:]  // relative path → bytes
  var missing: [String] = []
  var unreadable: [DatasetCheck.Problem] = []
  /// Images that passed the size and magic-byte checks, for `decodeImages()`.
  private(set) var images: [URL] = []
  private var seen = Set<String>()

  init(base: URL) { self.base = base.standardizedFileURL }

  /// The path relative to `base`, or the absolute path for a file outside it.
  func relativePath(_ url: URL) -> String {
    let path = url.standardizedFileURL.path
    let prefix = base.path.hasSuffix("/") ? base.path : base.path + "/"
    return path.hasPrefix(prefix) ? String(path.dropFirst(prefix.count)) : path
  }

  /// Records a file; returns whether it exists. (An empty list file is fine: VOC has empty class lists.)
  @discardableResult
  mutating func addFile(_ url: URL) -> Bool {
    let path = relativePath(url)
    guard seen.insert(path).inserted else { return sizes[path] != nil }
    guard let size = DatasetFiles.size(of: url), DatasetFiles.isFile(url) else {
      missing.append(path)
      return false
    }
    sizes[path] = size
    return true
  }

  /// Records an image file and checks that it is not empty and starts like a JPEG (FF D8) or PNG (89 50 4E 47).
  mutating func addImage(_ url: URL) {
    let isNew = !seen.contains(relativePath(url))
    guard addFile(url), isNew else { return }
    guard sizes[relativePath(url)] != 0 else {
      unreadable.append(DatasetCheck.Problem(path: relativePath(url), reason: "the file is empty"))
      return
    }
    guard let handle = FileHandle(forReadingAtPath: url.path) else {
      unreadable.append(DatasetCheck.Problem(path: relativePath(url), reason: "the file cannot be opened"))
      return
    }
    defer { try? handle.close() }
    let head = [UInt8]((try? handle.read(upToCount: 4)) ?? Data())
    let isJPEG = head.count >= 2 && head[0] == 0xFF && head[1] == 0xD8
    let isPNG = head == [0x89, 0x50, 0x4E, 0x47]
    if !isJPEG && !isPNG {
      let hex = head.map { String(format: "%02X", $0) }.joined(separator: " ")
      unreadable.append(DatasetCheck.Problem(path: relativePath(url),
                                             reason: "not a JPEG or PNG file (starts with \(hex))"))
    } else {
      images.append(url)
    }
  }

  /// Decodes every image recorded by `addImage` and reports those that fail (truncated, corrupt, unsupported).
  mutating func decodeImages() {
    let images = self.images
    var failures = [String?](repeating: nil, count: images.count)
    failures.withUnsafeMutableBufferPointer { buffer in
      let slots = buffer.baseAddress!
      parallelFor(0..<images.count, minimumChunk: 8) { range in
        for i in range {
          do { _ = try Image(contentsOf: images[i], mode: .grayOrRGB) } catch { (slots + i).pointee = "\(error)" }
        }
      }
    }
    for (url, failure) in zip(images, failures) {
      if let failure { unreadable.append(DatasetCheck.Problem(path: relativePath(url), reason: failure)) }
    }
  }

  /// SHA-256 of "path\tsize\n" lines sorted by path.
  func fingerprint() -> String {
    var hash = SHA256()
    for path in sizes.keys.sortedByCodePoint() { hash.update("\(path)\t\(sizes[path]!)\n") }
    return hash.finalize().map { String(format: "%02x", $0) }.joined()
  }
}
